"""Logging set-up for leap and leapd: stdout (journald-friendly), text or JSON, and a filter
that redacts secrets from every record, whatever code produced it.

Redaction works two ways: by pattern (anything shaped like a token or an auth header) and by
value (every secret this process has decrypted, in the raw and in the encoded forms a provider
may echo back: base64 as in HTTP Basic auth, URL-encoding, JSON escaping)."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:
    from pydantic import BaseModel, SecretStr

REDACTED = "***"

# Shorter values are not worth the false hits: redacting every "test" or "1234" in a message
# would garble it, and real secrets are long.
MIN_SECRET_LEN = 8


def _basic_value(match: re.Match[str]) -> str:
    # "Basic <base64 of id:secret>": only a token that decodes to a user:password pair is a
    # credential, so prose such as "basic settings" stays readable.
    token = match.group(2)
    padded = token + "=" * (-len(token) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            decoded = decode(padded.encode())
        except (binascii.Error, ValueError):
            continue
        if b":" in decoded:
            return match.group(1) + REDACTED
    return match.group(0)


# Values that look like credentials: auth headers, bearer tokens, key=value secrets, Fernet
# tokens, JWTs, passwords in URLs.
_PATTERNS = [
    # The header however it is quoted back: "Authorization: Basic x", {'authorization': 'x'}.
    re.compile(
        r"(?i)(\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:[A-Za-z-]+\s+)?)"
        r"[^\s\"',;}]+"
    ),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(
        r"(?i)((?:access_token|refresh_token|client_secret|api_key|apikey|password|secret|token)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
    ),
    re.compile(r"gAAAAA[A-Za-z0-9_=-]{20,}"),
    re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+"),
    # user:password@ and :password@ (Redis URLs carry a password without a user name).
    re.compile(r"(?i)(://[^:/@\s]*:)[^@\s]+(@)"),
]
_BASIC = re.compile(r"(?i)(\bbasic\s+)([A-Za-z0-9+/_-]{4,}={0,2})")
# A run of base64 (either alphabet): a secret encoded inside it hides the whole run.
_B64_RUN = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


def _b64_cores(raw: bytes) -> set[str]:
    """What base64 of any text containing `raw` must contain, whatever precedes it.

    Base64 works in 3-byte groups, so `raw` starts at one of three offsets within a group;
    for each, the characters that depend only on bytes of `raw` are fixed. This catches
    "client_id:secret" for any client id, and a secret inside a longer encoded blob.
    """
    cores: set[str] = set()
    for shift in range(3):
        full = base64.b64encode(b"\0" * shift + raw).decode()
        first = 1 if shift else 0  # a group mixing filler and secret bytes
        last = (shift + len(raw)) // 3  # a trailing partial group depends on what follows
        core = full[4 * first : 4 * last]
        if len(core) >= MIN_SECRET_LEN:
            cores |= {core, core.replace("+", "-").replace("/", "_")}
    return cores


def encoded_forms(secret: str) -> set[str]:
    """The literal forms of a secret worth hiding: raw, base64 (standard and URL-safe, with
    and without padding), URL-encoded (either hex case, '+' or '%20' for spaces), JSON-escaped."""
    forms = {secret}
    raw = secret.encode("utf-8", "surrogatepass")
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        b64 = encode(raw).decode()
        forms |= {b64, b64.rstrip("=")}
    for url in (quote(secret, safe=""), quote(secret), quote_plus(secret)):
        forms |= {url, re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), url)}
    forms.add(json.dumps(secret)[1:-1])
    forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    return {f for f in forms if len(f) >= MIN_SECRET_LEN}


class SecretRegistry:
    """Known secret values of this process and the forms to hide them in; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._forms: set[str] = set()
        self._cores: set[str] = set()
        self._literal: re.Pattern[str] | None = None

    def add(self, secret: str, *, user: str | None = None) -> None:
        """Remember `secret`; with `user`, also the "user:secret" pair of HTTP Basic auth."""
        values = [secret] + ([f"{user}:{secret}"] if user else [])
        with self._lock:
            for value in values:
                if len(value) < MIN_SECRET_LEN or value in self._secrets:
                    continue
                self._secrets.add(value)
                self._forms |= encoded_forms(value)
                self._cores |= _b64_cores(value.encode("utf-8", "surrogatepass"))
                self._literal = None

    def __len__(self) -> int:
        return len(self._secrets)

    def redact(self, text: str) -> str:
        with self._lock:
            if not self._forms:
                return text
            if self._literal is None:
                # Longest first, so a pair's form wins over the secret inside it.
                ordered = sorted(self._forms, key=len, reverse=True)
                self._literal = re.compile("|".join(re.escape(f) for f in ordered))
            literal, cores = self._literal, tuple(self._cores)
        text = literal.sub(REDACTED, text)
        if cores:
            text = _B64_RUN.sub(
                lambda m: REDACTED if any(c in m.group(0) for c in cores) else m.group(0), text
            )
        return text


SECRETS = SecretRegistry()


def register_secret(value: str | SecretStr | None, *, user: str | None = None) -> None:
    """Remember a secret this process holds so that no message ever shows it, in any form."""
    if not isinstance(value, str) and value is not None:
        value = value.get_secret_value()
    if isinstance(value, str) and value:
        SECRETS.add(value, user=user)


def register_model_secrets(model: BaseModel) -> None:
    """Register every SecretStr field of a settings model, its sub-models included."""
    from pydantic import (
        BaseModel,
        SecretStr,
    )  # only where settings exist: keeps `leap --help` light

    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            register_secret(value)
        elif isinstance(value, BaseModel):
            register_model_secrets(value)
        elif isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
            for item in value:
                if isinstance(item, BaseModel):
                    register_model_secrets(item)


def redact(text: str, registry: SecretRegistry | None = None) -> str:
    """`text` without anything that is, or looks like, a secret."""
    text = (registry or SECRETS).redact(text)
    for pat in _PATTERNS:
        if pat.groups >= 2:
            text = pat.sub(lambda m: m.group(1) + REDACTED + m.group(2), text)
        elif pat.groups == 1:
            text = pat.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pat.sub(REDACTED, text)
    return _BASIC.sub(_basic_value, text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


# What the current thread works on (recording=12, stage="trim"), set at a task's edge so that
# every line logged below it says so without each call site repeating it.
_CONTEXT: ContextVar[tuple[tuple[str, object], ...]] = ContextVar("leap_log_context", default=())


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add `fields` to every record logged in this thread (or task) until the block ends."""
    token = _CONTEXT.set((*_CONTEXT.get(), *fields.items()))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


class ContextFilter(logging.Filter):
    """Puts the log context on each record: `record.context` (" [recording=12 stage=trim]")
    for text, `record.fields` for JSON."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = dict(_CONTEXT.get())
        record.fields = fields
        record.context = (
            " [" + " ".join(f"{k}={v}" for k, v in fields.items()) + "]" if fields else ""
        )
        return True


class Demote(logging.Filter):
    """Routine records of a library logger (those naming one of `needles`, at most at
    `up_to`) become DEBUG: a queue consumer's "Executing leap.heartbeat" every few seconds
    buries what matters."""

    def __init__(self, needles: Iterable[str], up_to: int = logging.INFO) -> None:
        super().__init__()
        self._needles = tuple(needles)
        self._up_to = up_to

    def filter(self, record: logging.LogRecord) -> bool:
        if not logging.DEBUG < record.levelno <= self._up_to:
            return True
        msg = record.getMessage()
        if not any(n in msg for n in self._needles):
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        # The logger's own level check has passed already; the root level decides now.
        return logging.getLogger().isEnabledFor(logging.DEBUG)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if k not in out})
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


class RedactingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _LiveStream:
    """Writes to whatever sys.stdout/sys.stderr is *now* (tests swap them)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def write(self, text: str) -> int:
        return int(getattr(sys, self.name).write(text))

    def flush(self) -> None:
        getattr(sys, self.name).flush()


def setup_logging(level: str = "INFO", fmt: str = "text", *, stderr: bool = False) -> None:
    handler = logging.StreamHandler(_LiveStream("stderr" if stderr else "stdout"))
    handler.addFilter(RedactingFilter())
    handler.addFilter(ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            RedactingTextFormatter("%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO; URLs may carry signed download tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Per-tick chatter that buries what matters in journald.
    for noisy in ("alembic", "apscheduler.executors", "apscheduler.scheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
