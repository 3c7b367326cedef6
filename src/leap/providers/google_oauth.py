"""Google OAuth for installed apps (docs/platforms.md, "YouTube: connecting an account"): the
client-secrets file and the authorisation URL come from google-auth-oauthlib's
InstalledAppFlow (PKCE S256, offline access); the code exchange, the device flow, refresh and
revoke are plain token-endpoint calls made with the injected httpx client, so retries,
timeouts and redaction are LEAP's own."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from leap.errors import AuthorizationFailed, UsageError
from leap.logs import register_secret
from leap.providers.http import (
    CredentialRejected,
    PermanentError,
    RetryPolicy,
    Sleep,
    classify_response,
    error_excerpt,
    json_body,
    loads,
    send_with_retry,
)

PROVIDER = "youtube"
UPLOAD = "https://www.googleapis.com/auth/youtube.upload"
YOUTUBE = "https://www.googleapis.com/auth/youtube"
FORCE_SSL = "https://www.googleapis.com/auth/youtube.force-ssl"
PARTNER = "https://www.googleapis.com/auth/youtubepartner"
# Google's device grant accepts only these scopes ("Allowed scopes" of its limited-input
# device guide): `youtube` is there, `youtube.upload` and `youtube.force-ssl` are not.
DEVICE_SCOPES = frozenset(
    {
        "openid",
        "email",
        "profile",
        "https://www.googleapis.com/auth/drive.appdata",
        "https://www.googleapis.com/auth/drive.file",
        YOUTUBE,
        "https://www.googleapis.com/auth/youtube.readonly",
    }
)
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def scopes_for(*, captions: bool, device: bool = False) -> list[str]:
    """What to ask for: upload and playlists; captions.insert takes only force-ssl (or the
    partner scope), which also covers the rest. The device grant allows `youtube` alone,
    which covers uploads, thumbnails and playlists but not captions."""
    if device:
        return [YOUTUBE]
    return [FORCE_SSL] if captions else [UPLOAD, YOUTUBE]


def missing_scopes(granted: set[str], *, captions: bool, playlists: bool) -> list[str]:
    """The scopes a credential lacks for what its presets do (empty: it can do all of it)."""
    missing = []
    if not granted & {UPLOAD, YOUTUBE, FORCE_SSL, PARTNER}:
        missing.append(UPLOAD)
    if playlists and not granted & {YOUTUBE, FORCE_SSL, PARTNER}:
        missing.append(YOUTUBE)
    if captions and not granted & {FORCE_SSL, PARTNER}:
        missing.append(FORCE_SSL)
    return missing


@dataclass(frozen=True)
class ClientSecrets:
    """An OAuth client of type Desktop app (or TVs and Limited Input devices), as Google's
    console downloads it."""

    config: dict[str, Any]  # the file's {"installed": {...}}, as google-auth-oauthlib takes it

    @property
    def client_id(self) -> str:
        return str(self.config["installed"]["client_id"])

    @property
    def client_secret(self) -> str:
        return str(self.config["installed"]["client_secret"])

    @property
    def token_uri(self) -> str:
        return str(self.config["installed"]["token_uri"])


def load_client_secrets(path: Path, *, token_uri: str, auth_uri: str) -> ClientSecrets:
    """Read and check a client_secret_*.json; the endpoints missing from it come from
    settings (youtube.token_uri, youtube.auth_uri)."""
    try:
        data = loads(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"--client-secrets {path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"--client-secrets {path}: {exc.strerror}") from None
    except ValueError:
        raise UsageError(f"--client-secrets {path}: not JSON") from None
    if not isinstance(data, dict):
        raise UsageError(f"--client-secrets {path}: not a Google client-secrets file")
    if "web" in data:
        raise UsageError(
            f"--client-secrets {path}: this is a Web application client; LEAP needs an OAuth "
            'client of type "Desktop app" (or "TVs and Limited Input devices" for --device)'
        )
    app = data.get("installed")
    if not isinstance(app, dict):
        raise UsageError(
            f'--client-secrets {path}: not a Google client-secrets file (no "installed" key)'
        )
    for key in ("client_id", "client_secret"):
        if not isinstance(app.get(key), str) or not app[key]:
            raise UsageError(f"--client-secrets {path}: installed.{key} is missing")
    register_secret(app["client_secret"], user=app["client_id"])
    installed = {
        **app,
        "token_uri": app.get("token_uri") or token_uri,
        "auth_uri": app.get("auth_uri") or auth_uri,
    }
    return ClientSecrets({"installed": installed})


def authorization_url(
    client: ClientSecrets, scopes: list[str], redirect_uri: str, state: str
) -> tuple[str, str]:
    """The consent URL and its PKCE verifier, from google-auth-oauthlib's InstalledAppFlow:
    offline access (a refresh token) and prompt=consent (Google issues a new refresh token
    only on a fresh consent, and a re-authentication must get one)."""
    from google_auth_oauthlib.flow import InstalledAppFlow  # pulls requests: only here

    auth_uri = str(client.config["installed"]["auth_uri"])
    parts = urlsplit(auth_uri)
    if parts.scheme != "https" and not (
        parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")
    ):
        raise UsageError(f"auth_uri {auth_uri}: Google's consent page must be https")
    flow = InstalledAppFlow.from_client_config(client.config, scopes, redirect_uri=redirect_uri)
    # oauthlib refuses http outright; a consent page on this machine's loopback (a test
    # double, or a local proxy) carries nothing a network could see.
    saved = os.environ.get("OAUTHLIB_INSECURE_TRANSPORT")
    if parts.scheme == "http":
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    try:
        url, _ = flow.authorization_url(
            access_type="offline", prompt="consent", state=state, include_granted_scopes="false"
        )
    finally:
        if saved is None:
            os.environ.pop("OAUTHLIB_INSECURE_TRANSPORT", None)
        else:
            os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = saved
    verifier = str(flow.code_verifier)
    register_secret(verifier)
    return str(url), verifier


def _token_call(
    http: httpx.Client, url: str, form: dict[str, str], on_refusal: Callable[[httpx.Response], None]
) -> dict[str, Any]:
    for field in ("client_secret", "code", "code_verifier", "refresh_token", "device_code"):
        register_secret(form.get(field))

    def classify(response: httpx.Response) -> None:
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            on_refusal(response)
        classify_response(response, PROVIDER, datetime.now(UTC))

    # A short budget: a refresh runs while every other holder of the credential waits for
    # it (docs/internals.md, "One refresh at a time").
    policy = RetryPolicy(max_attempts=3, budget_s=20)
    response = send_with_retry(
        lambda: http.post(url, data=form), classify, policy, provider=PROVIDER
    )
    data = json_body(response, PROVIDER)
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise PermanentError(
            f"{PROVIDER}: the token response has no access_token", provider=PROVIDER
        )
    for field in ("access_token", "refresh_token"):
        value = data.get(field)
        register_secret(value if isinstance(value, str) else None)
    return data


def _oauth_error(response: httpx.Response) -> tuple[str, str]:
    try:
        body = loads(response.read())
    except ValueError:
        body = None
    if isinstance(body, dict):
        return str(body.get("error", "")), str(body.get("error_description", ""))
    return "", ""


def exchange_code(
    http: httpx.Client, client: ClientSecrets, code: str, redirect_uri: str, verifier: str
) -> dict[str, Any]:
    """Trade the consent's code for the first token pair."""

    def refused(response: httpx.Response) -> None:
        error, detail = _oauth_error(response)
        if error == "invalid_grant":
            raise AuthorizationFailed(
                "google refused the code: it was used already, expired, or belongs to another "
                "request; run the command again"
            )
        raise AuthorizationFailed(
            f"google refused the code exchange (HTTP {response.status_code}: "
            f"{error or error_excerpt(response)}{': ' + detail if detail else ''})"
        )

    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "code_verifier": verifier,
    }
    data = _token_call(http, client.token_uri, form, refused)
    if not isinstance(data.get("refresh_token"), str):
        raise AuthorizationFailed(
            "google issued no refresh token (was access_type=offline dropped?); nothing saved"
        )
    return data


def refresh_grant(
    http: httpx.Client, token_uri: str, client_id: str, client_secret: str, refresh_token: str
) -> dict[str, Any]:
    """A new access token for the refresh token (Google does not rotate it)."""

    def refused(response: httpx.Response) -> None:
        raise CredentialRejected(
            f"youtube: the token endpoint refused the refresh token "
            f"(HTTP {response.status_code}: {error_excerpt(response)}); re-authenticate it "
            "with leap oauth youtube",
            provider=PROVIDER,
            status=response.status_code,
        )

    form = {
        "grant_type": "refresh_token",
        "client_id": client_id,
        "client_secret": client_secret,
        "refresh_token": refresh_token,
    }
    return _token_call(http, token_uri, form, refused)


@dataclass(frozen=True)
class DeviceCode:
    device_code: str
    user_code: str
    verification_url: str
    expires_in: float
    interval: float


def device_flow(
    http: httpx.Client,
    device_uri: str,
    client: ClientSecrets,
    scopes: list[str],
    show: Callable[[DeviceCode], None],
    *,
    clock: Callable[[], float] = time.time,
    sleep: Sleep = time.sleep,
) -> dict[str, Any]:
    """Google's device grant (RFC 8628): show a code to type on another device, then poll
    until the user allows or denies it, or the code lapses."""
    outside = [s for s in scopes if s not in DEVICE_SCOPES]
    if outside:
        raise UsageError(
            f"--device: Google's device flow does not allow {', '.join(outside)}; captions "
            "need youtube.force-ssl, so use --no-browser (paste the redirect) instead"
        )
    response = http.post(
        device_uri, data={"client_id": client.client_id, "scope": " ".join(scopes)}
    )
    if response.status_code != 200:
        error, detail = _oauth_error(response)
        raise AuthorizationFailed(
            f"google refused the device request (HTTP {response.status_code}: "
            f"{error or error_excerpt(response)}{': ' + detail if detail else ''}); a device "
            'code needs an OAuth client of type "TVs and Limited Input devices"'
        )
    body = json_body(response, PROVIDER)
    try:
        code = DeviceCode(
            str(body["device_code"]),
            str(body["user_code"]),
            str(body.get("verification_url") or body.get("verification_uri")),
            float(body.get("expires_in", 1800)),
            float(body.get("interval", 5)),
        )
    except (KeyError, TypeError, ValueError):
        raise PermanentError("google: malformed device-code response", provider=PROVIDER) from None
    register_secret(code.device_code)
    show(code)
    deadline = clock() + code.expires_in
    interval = code.interval
    form = {
        "grant_type": DEVICE_GRANT,
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "device_code": code.device_code,
    }
    while clock() < deadline:
        sleep(interval)
        response = http.post(client.token_uri, data=form)
        if response.status_code == 200:
            data = json_body(response, PROVIDER)
            if isinstance(data, dict) and isinstance(data.get("refresh_token"), str):
                for field in ("access_token", "refresh_token"):
                    register_secret(data.get(field))
                return data
            raise AuthorizationFailed("google issued no refresh token; nothing saved")
        error, _ = _oauth_error(response)
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5  # RFC 8628 section 3.5
            continue
        if error == "access_denied":
            raise AuthorizationFailed("google: access was denied on the device page; nothing saved")
        if error == "expired_token":
            break
        raise AuthorizationFailed(
            f"google refused the device code (HTTP {response.status_code}: "
            f"{error or error_excerpt(response)})"
        )
    raise AuthorizationFailed("google: the device code expired before it was used; nothing saved")


def revoke(http: httpx.Client, revoke_uri: str, token: str) -> None:
    """Revoke a refresh token (and the access tokens it gave) at Google; a refusal raises."""
    register_secret(token)
    response = http.post(revoke_uri, data={"token": token})
    if response.status_code != 200:
        raise PermanentError(
            f"google did not revoke the token (HTTP {response.status_code}: "
            f"{error_excerpt(response)})",
            provider=PROVIDER,
            status=response.status_code,
        )
