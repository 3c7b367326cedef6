"""How a notification leaves LEAP: a JSON (or plain-text) POST to a webhook, or an e-mail over
SMTP. One attempt per call; retries and their back-off belong to the caller (the row in the
database, services.notify).

Webhook URLs are secrets: Slack and Discord put the token in the path, ntfy topics are
guessable names. No error or log line made here shows more of a URL than its scheme and host
(docs/notifications.md, "Styles")."""

from __future__ import annotations

import base64
import json
import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any
from urllib.parse import urlsplit

import httpx

from leap.errors import LeapError
from leap.providers.http import DeadlineExceeded, one_line

STYLES = ("json", "slack", "discord", "ntfy")
# What each receiver takes in one message: Discord refuses content over 2000 characters, ntfy
# turns a body over 4096 bytes into an attachment, Slack truncates very long text.
_LIMITS = {"slack": 3500, "discord": 2000, "ntfy": 3500}
_EXCERPT = 120  # characters of a refusing receiver's answer kept in the error


class NotifyFailed(LeapError):
    """A notification was not delivered; the message is one redacted line naming the target
    by scheme and host (webhook) or server (e-mail), never a URL's path or token."""


def safe_url(url: str) -> str:
    """What of a webhook URL may be shown: `https://hooks.slack.com/…`."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an unparsable URL)"
    tail = "/…" if (parts.path not in ("", "/") or parts.query) else ""
    return f"{parts.scheme}://{host}{port}{tail}"


def secret_parts(url: str) -> list[str]:
    """The pieces of `url` that may hold a token, longest first: the URL itself, the path
    with its query, the path, the query, and each path segment of 8 characters or more."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    pieces = [url, url.split("://", 1)[-1], parts.path + ("?" + parts.query if parts.query else "")]
    pieces += [parts.path, parts.query]
    pieces += [seg for seg in parts.path.split("/") if len(seg) >= 8]
    return sorted({p for p in pieces if p and p != "/"}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` without any piece of `url` but its scheme and host, then redacted, one line."""
    for piece in secret_parts(url):
        text = text.replace(piece, "…")
    return one_line(text, 300)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _header_text(text: str) -> str:
    """A header value: one line; non-ASCII as an RFC 2047 encoded word (ntfy decodes it;
    httpx would refuse the raw characters)."""
    flat = " ".join(text.split())[:250]
    if flat.isascii():
        return flat
    return "=?utf-8?b?" + base64.b64encode(flat.encode()).decode() + "?="


def webhook_request(
    style: str, title: str, text: str, data: dict[str, Any]
) -> tuple[bytes, dict[str, str]]:
    """The body and headers each style's receiver expects (docs/notifications.md, "Styles")."""
    body: dict[str, Any]
    if style == "slack":
        # Slack reads &, < and > as markup (links, mentions): escaped, as its docs ask.
        said = _clip(f"*{title}*\n{text}", _LIMITS["slack"])
        body = {"text": said.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")}
    elif style == "discord":
        # Titles come from meeting names: an "@everyone" in one must not ping a server.
        said = _clip(f"**{title}**\n{text}", _LIMITS["discord"])
        body = {"content": said, "allowed_mentions": {"parse": []}}
    elif style == "ntfy":
        headers = {"Title": _header_text(title), "Content-Type": "text/plain; charset=utf-8"}
        return _clip(text, _LIMITS["ntfy"]).encode(), headers
    elif style == "json":
        body = {"title": title, "text": text, **data}
    else:
        raise NotifyFailed(f"unknown webhook style '{style}' (one of: {', '.join(STYLES)})")
    content = json.dumps(body, ensure_ascii=False, default=str).encode()
    return content, {"Content-Type": "application/json; charset=utf-8"}


def post_webhook(
    http: httpx.Client, url: str, style: str, title: str, text: str, data: dict[str, Any]
) -> None:
    """POST one message; any 2xx is delivered. The client's timeout bounds the attempt.
    Raises NotifyFailed with a short reason naming only the scheme and host."""
    where = safe_url(url)
    content, headers = webhook_request(style, title, text, data)
    try:
        response = http.post(url, content=content, headers=headers)
    except DeadlineExceeded:
        raise NotifyFailed(f"webhook {where}: no complete answer in time") from None
    except httpx.TimeoutException:
        raise NotifyFailed(f"webhook {where}: no answer in time (timed out)") from None
    except httpx.HTTPError as exc:
        reason = scrub(str(exc) or type(exc).__name__, url)
        raise NotifyFailed(f"webhook {where}: {reason}") from None
    if 200 <= response.status_code < 300:
        return
    excerpt = scrub(response.text[: _EXCERPT * 4], url)[:_EXCERPT]
    said = f": {excerpt}" if excerpt else ""
    raise NotifyFailed(f"webhook {where} answered HTTP {response.status_code}{said}")


_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ADDRESS = re.compile(r"[^@\s<>(),;:\"\[\]\\]+@" + _LABEL + r"(?:\." + _LABEL + r")+")


def valid_address(address: str) -> bool:
    """Looks like a single plain address (local@domain.tld): no display name, no list, no
    line breaks that could add headers."""
    return len(address) <= 254 and bool(_ADDRESS.fullmatch(address))


def _smtp_reply(exc: smtplib.SMTPResponseException) -> str:
    said = exc.smtp_error
    text = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
    return f"{exc.smtp_code} {' '.join(text.split())}".strip()


def send_email(
    *,
    host: str,
    port: int,
    user: str,
    password: str,
    sender: str,
    starttls: bool,
    timeout: float,
    to: str,
    subject: str,
    body: str,
) -> None:
    """Send one plain-text message. Port 465 is TLS from the first byte; otherwise STARTTLS
    when `starttls` (refused if the server does not offer it: the password never goes out in
    the clear), then LOGIN when `user` is set. Raises NotifyFailed with one line."""
    where = f"SMTP {host}:{port}"
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = " ".join(subject.split())[:200]
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(body)
    tls = ssl.create_default_context()
    try:
        if port == 465:
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            client.ehlo()
            if starttls and port != 465:
                client.starttls(context=tls)
                client.ehlo()
            if user:
                client.login(user, password)
            client.send_message(msg, from_addr=sender, to_addrs=[to])
    except smtplib.SMTPRecipientsRefused as exc:
        refused = "; ".join(
            f"{addr}: {code} {_decode(text)}" for addr, (code, text) in exc.recipients.items()
        )
        raise NotifyFailed(one_line(f"{where} refused the recipient {refused}")) from None
    except smtplib.SMTPSenderRefused as exc:
        raise NotifyFailed(
            one_line(f"{where} refused the sender {sender}: {_smtp_reply(exc)}")
        ) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise NotifyFailed(one_line(f"{where} refused the login: {_smtp_reply(exc)}")) from None
    except smtplib.SMTPNotSupportedError as exc:
        hint = " (set notify.smtp_starttls = false only for a server on a trusted network)"
        said = f"{exc}{hint if 'STARTTLS' in str(exc) else ''}"
        raise NotifyFailed(one_line(f"{where}: {said}")) from None
    except smtplib.SMTPResponseException as exc:
        raise NotifyFailed(one_line(f"{where} refused: {_smtp_reply(exc)}")) from None
    except TimeoutError:
        raise NotifyFailed(f"{where}: no answer within {timeout:g} s") from None
    except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
        raise NotifyFailed(one_line(f"{where}: {exc or type(exc).__name__}")) from None


def _decode(text: bytes | str) -> str:
    value = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return " ".join(value.split())
