"""VK (docs/platforms.md, the "VK:" sections): VK ID OAuth 2.1 refresh with device_id and token
rotation, API calls whose errors arrive with HTTP 200, video.save, a streamed multipart upload to
upload_url, and marker lookup to reconcile an upload whose outcome is unknown."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from leap.errors import UsageError
from leap.logs import register_secret
from leap.providers.http import (
    CredentialRejected,
    Deferred,
    PermanentError,
    RetryableError,
    RetryPolicy,
    Sleep,
    classify_response,
    error_excerpt,
    json_body,
    loads,
    send_with_retry,
    server_url,
    token_grant,
)
from leap.providers.oauth import MemoryStore, RotatingAuth, TokenStore

PROVIDER = "vk"
Clock = Callable[[], float]
DEFAULT_TOKEN_LIFETIME_S = 3600  # VK ID access tokens live an hour (§3.4)
DEFAULT_WEB_BASE_URL = "https://vk.com"
REAUTH_HINT = "re-authenticate the VK credential"
CAPTCHA_MESSAGE = "VK asks for a captcha: open vk.com in a browser with this account, then retry"
ERROR_AUTH = 5
ERROR_TOO_MANY_PER_SECOND = 6
ERROR_FLOOD = 9
ERROR_CAPTCHA = 14
_RETRYABLE_CODES = {ERROR_TOO_MANY_PER_SECOND}
# Flood control (9) is VK refusing more of the same action for a while, not a per-second
# limit: seconds of back-off only earn more 9s. The target waits this long instead.
FLOOD_WAIT = timedelta(minutes=30)
_READ_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class VKTokens:
    """A VK ID token set, or a pasted legacy token (refresh_token None: it cannot be renewed)."""

    access_token: str
    refresh_token: str | None = None
    device_id: str | None = None
    expires_at: float | None = None  # epoch seconds; None: unknown or non-expiring
    client_id: str | None = None


@dataclass(frozen=True)
class SavedVideo:
    upload_url: str
    video_id: int
    owner_id: int
    access_key: str | None = None


def authorize_url(
    id_base_url: str, client_id: str, redirect_uri: str, state: str, challenge: str, scope: str
) -> str:
    """VK ID's consent page (§3.4): authorization code with mandatory PKCE S256."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "scope": scope,
        }
    )
    return f"{id_base_url.rstrip('/')}/authorize?{query}"


@dataclass(frozen=True)
class VKGrant:
    tokens: VKTokens
    user_id: int | str | None
    scope: str | None


def exchange_code(
    http: httpx.Client,
    id_base_url: str,
    client_id: str,
    code: str,
    verifier: str,
    device_id: str,
    redirect_uri: str,
    *,
    clock: Clock = time.time,
) -> VKGrant:
    """Trade the redirect's code (with its device_id) for the first token set; a refusal
    raises CredentialRejected, which the caller words for its user."""
    state = secrets.token_urlsafe(16)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "client_id": client_id,
        "device_id": device_id,
        "redirect_uri": redirect_uri,
        "state": state,
    }
    for field in ("code", "code_verifier"):
        register_secret(form[field])

    def classify(response: httpx.Response) -> None:
        if response.status_code < 500 and response.status_code not in (408, 429):
            try:
                data: Any = loads(response.read())
            except ValueError:
                data = None
            if response.status_code >= 400 or (isinstance(data, dict) and "error" in data):
                raise CredentialRejected(
                    f"vk: VK ID refused the code (HTTP {response.status_code}: "
                    f"{error_excerpt(response)})",
                    provider=PROVIDER,
                    status=response.status_code,
                )
        classify_response(response, PROVIDER, datetime.fromtimestamp(clock(), UTC))

    data = token_grant(
        lambda: http.post(id_base_url.rstrip("/") + "/oauth2/auth", data=form),
        classify,
        RetryPolicy(max_attempts=3, budget_s=20),
        provider=PROVIDER,
        what="the VK ID token response",
    )
    if data.get("state") not in (None, state):
        raise PermanentError(
            "vk: the VK ID token response carries a foreign state", provider=PROVIDER
        )
    for field in ("access_token", "refresh_token"):
        value = data.get(field)
        register_secret(value if isinstance(value, str) else None)
    previous = VKTokens("", device_id=device_id, client_id=client_id)
    scope = data.get("scope")
    return VKGrant(
        tokens_from_response(data, previous, clock()),
        data.get("user_id") if isinstance(data.get("user_id"), int | str) else None,
        scope if isinstance(scope, str) else None,
    )


def logout(http: httpx.Client, id_base_url: str, client_id: str, access_token: str) -> None:
    """End the VK ID session of a token set (its access and refresh tokens stop working);
    VK ID answers refusals in the body, so they raise PermanentError here."""
    register_secret(access_token)
    response = http.post(
        id_base_url.rstrip("/") + "/oauth2/logout",
        data={"client_id": client_id, "access_token": access_token},
    )
    try:
        data: Any = loads(response.read())
    except ValueError:
        data = None
    if response.status_code != 200 or not isinstance(data, dict) or "error" in data:
        raise PermanentError(
            f"vk: VK ID did not log the token out (HTTP {response.status_code}: "
            f"{error_excerpt(response)})",
            provider=PROVIDER,
            status=response.status_code,
        )


def parse_implicit_redirect(url: str, *, clock: Clock = time.time) -> VKTokens:
    """Tokens from the legacy implicit flow's blank.html#access_token=… URL (§3.5), the manual
    "paste a token" fallback; expires_in=0 (offline scope) means the token does not expire."""
    fragment = urlsplit(url.strip()).fragment or url.strip()
    values = {k: v[0] for k, v in parse_qs(fragment).items()}
    if "error" in values:
        raise UsageError(f"vk: the authorisation failed: {values.get('error_description', '')}")
    token = values.get("access_token")
    if not token:
        raise UsageError("vk: no access_token in the pasted URL")
    try:
        lifetime = int(values.get("expires_in", "0"))
    except ValueError:
        lifetime = 0
    return VKTokens(token, expires_at=clock() + lifetime if lifetime > 0 else None)


class _AuthFailed(PermanentError):
    """VK error 5 on an API call: the access token is dead; refresh once and retry."""


class VKAuth(RotatingAuth[VKTokens]):
    """VK ID OAuth 2.1 tokens. Refreshes a minute before expiry or after error 5, with
    grant_type=refresh_token and the device_id (§3.4), through the store: every refresh
    rotates the refresh token, so the store saves the new set before it is used, and
    serialises refreshes so that no two holders spend the same refresh token."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        id_base_url: str,
        tokens: VKTokens,
        on_refresh: Callable[[VKTokens], None] | None = None,
        store: TokenStore[VKTokens] | None = None,
        clock: Clock = time.time,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._http = http
        self._url = id_base_url.rstrip("/") + "/oauth2/auth"
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self.refresh_count = 0
        if store is None:
            store = MemoryStore(tokens, on_refresh or (lambda _t: None), clock=clock)
        super().__init__(tokens, self._grant, store, clock=clock)

    @property
    def can_refresh(self) -> bool:
        t = self.tokens
        return bool(t.refresh_token and t.device_id and t.client_id)

    def token(self) -> str:
        if not self.can_refresh and self.tokens.access_token:
            # A pasted token cannot be renewed: use it until VK refuses it (error 5).
            return self.tokens.access_token
        return super().token()

    def _grant(self, t: VKTokens) -> VKTokens:
        """Trade the refresh token for a new set; CredentialRejected when that is impossible."""
        if not (t.refresh_token and t.device_id and t.client_id):
            raise CredentialRejected(
                "vk: the access token was refused and there is no refresh token, device_id "
                f"and client_id to renew it; {REAUTH_HINT}",
                provider=PROVIDER,
            )
        state = secrets.token_urlsafe(16)
        form = {
            "grant_type": "refresh_token",
            "refresh_token": t.refresh_token,
            "client_id": t.client_id,
            "device_id": t.device_id,
            "state": state,
        }
        data = token_grant(
            lambda: self._http.post(self._url, data=form),
            self._classify,
            self._policy,
            provider=PROVIDER,
            sleep=self._sleep,
            what="the VK ID token response",
        )
        if data.get("state") not in (None, state):
            raise PermanentError(
                "vk: the VK ID token response carries a foreign state", provider=PROVIDER
            )
        self.refresh_count += 1
        return tokens_from_response(data, t, self._clock())

    def _classify(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 500 and status not in (408, 429):
            try:
                data: Any = loads(response.read())
            except ValueError:
                data = None
            if status >= 400 or (isinstance(data, dict) and "error" in data):
                raise CredentialRejected(
                    f"vk: VK ID refused the refresh token "
                    f"(HTTP {status}: {error_excerpt(response)}); {REAUTH_HINT}",
                    provider=PROVIDER,
                    status=status,
                )
        classify_response(response, PROVIDER, datetime.fromtimestamp(self._clock(), UTC))


def tokens_from_response(data: Mapping[str, Any], previous: VKTokens, now: float) -> VKTokens:
    """The token set of a VK ID token response; what it omits is kept from `previous`."""
    lifetime = data.get("expires_in")
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME_S
    new_refresh = data.get("refresh_token")
    new_device = data.get("device_id")
    return VKTokens(
        access_token=str(data["access_token"]),
        refresh_token=new_refresh if isinstance(new_refresh, str) else previous.refresh_token,
        device_id=new_device if isinstance(new_device, str) else previous.device_id,
        expires_at=now + float(lifetime),
        client_id=previous.client_id,
    )


def _multipart(
    source: BinaryIO,
    size: int,
    head: bytes,
    tail: bytes,
    on_progress: Callable[[int], None] | None,
) -> Iterator[bytes]:
    yield head
    sent = 0
    if on_progress is not None:
        on_progress(0)
    while sent < size:
        block = source.read(min(_READ_BLOCK, size - sent))
        if not block:
            raise UsageError(f"vk: the file shrank while uploading ({sent} of {size} bytes)")
        sent += len(block)
        yield block
        if on_progress is not None:
            on_progress(sent)
    yield tail


class VKClient:
    """VK API calls with retries on 6/9/5xx/timeouts and one token refresh on error 5."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        api_base_url: str,
        api_version: str,
        auth: VKAuth,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        web_base_url: str = DEFAULT_WEB_BASE_URL,
        clock: Clock = time.time,
    ) -> None:
        self._http = http
        self._api = api_base_url.rstrip("/")
        self._version = api_version
        self._auth = auth
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._web = web_base_url.rstrip("/")
        self._clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # -- API calls ----------------------------------------------------------------------------

    def call(self, method: str, params: Mapping[str, str | int]) -> Any:
        """POST {api_base_url}/{method}; returns the `response` member.

        Error 5 refreshes the token once (CredentialRejected if that fails or is impossible);
        6 and 9 are retried with backoff, like HTTP 5xx and timeouts; 14 (captcha) and every
        other code are a PermanentError carrying VK's message.
        """
        try:
            return self._call_once(method, params)
        except _AuthFailed as exc:
            if not self._auth.can_refresh:
                raise CredentialRejected(
                    f"{exc.message}; {REAUTH_HINT}", provider=PROVIDER
                ) from exc
            self._auth.invalidate()
        try:
            return self._call_once(method, params)
        except _AuthFailed as exc:
            raise CredentialRejected(
                f"{exc.message} even after a token refresh; {REAUTH_HINT}", provider=PROVIDER
            ) from exc

    def _call_once(self, method: str, params: Mapping[str, str | int]) -> Any:
        url = f"{self._api}/{method}"
        parsed: dict[str, Any] = {}

        def send() -> httpx.Response:
            form = {k: str(v) for k, v in params.items()}
            form["access_token"] = self._auth.token()
            form["v"] = self._version
            return self._http.post(url, data=form)

        def classify(response: httpx.Response) -> None:
            classify_response(response, PROVIDER, self._now())
            data = json_body(response, PROVIDER)
            if not isinstance(data, dict):
                raise PermanentError(f"vk: malformed {method} response", provider=PROVIDER)
            error = data.get("error")
            if isinstance(error, dict):
                _raise_api_error(method, error)
            if "response" not in data:
                raise PermanentError(f"vk: {method} returned no response", provider=PROVIDER)
            parsed["response"] = data["response"]

        response = send_with_retry(
            send, classify, self._policy, provider=PROVIDER, sleep=self._sleep
        )
        response.close()
        return parsed["response"]

    def save_video(self, params: Mapping[str, str]) -> SavedVideo:
        """video.save (§3.2) with params from metadata.vk_save_params; returns the upload slot.

        Not idempotent: a retry after a timeout may leave an empty slot behind. Put an
        idempotency marker in the description so find_video_by_marker can reconcile.
        """
        data = self.call("video.save", params)
        try:
            saved = SavedVideo(
                upload_url=server_url(data["upload_url"], "video.save's upload_url", PROVIDER),
                video_id=int(data["video_id"]),
                owner_id=int(data["owner_id"]),
                access_key=str(data["access_key"]) if data.get("access_key") else None,
            )
        # OverflowError: an id of Infinity (JSON as Python reads it); AttributeError: a list.
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as exc:
            raise PermanentError("vk: malformed video.save response", provider=PROVIDER) from exc
        return saved

    # -- upload -------------------------------------------------------------------------------

    def upload_file(
        self,
        upload_url: str,
        path: str | os.PathLike[str],
        *,
        on_progress: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """POST `path` as multipart field video_file to the signed upload_url (§3.3).

        The body is streamed from disk with a known Content-Length, so memory stays at one
        read block. VK documents no resume: after a 5xx or a dropped connection the whole file
        is sent again to the same upload_url (one video slot) within the retry policy, and
        `on_progress` restarts from 0. If the process dies, or retries run out after the bytes
        may have arrived, the outcome is unknown: call find_video_by_marker before calling
        video.save again, so a re-send never makes a second video.
        """
        file = Path(path)
        size = file.stat().st_size
        boundary = "leap-" + secrets.token_hex(16)
        suffix = "".join(c for c in file.suffix if c.isalnum() or c == ".")[:10]
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="video_file"; filename="video{suffix}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(head) + size + len(tail)),
        }

        def send() -> httpx.Response:
            with file.open("rb") as source:
                return self._http.post(
                    upload_url,
                    headers=headers,
                    content=_multipart(source, size, head, tail, on_progress),
                )

        parsed: dict[str, Any] = {}

        def classify(response: httpx.Response) -> None:
            if response.status_code in (401, 403):
                raise PermanentError(
                    f"vk: the upload URL was refused (HTTP {response.status_code}: "
                    f"{error_excerpt(response)}); it may have expired, call video.save again",
                    provider=PROVIDER,
                    status=response.status_code,
                )
            classify_response(response, PROVIDER, self._now())
            data = json_body(response, PROVIDER)
            if isinstance(data, dict) and isinstance(data.get("response"), dict):
                data = data["response"]  # some upload hosts wrap the answer (vk-io unwraps)
            if not isinstance(data, dict):
                raise PermanentError("vk: malformed upload response", provider=PROVIDER)
            if "error" in data:
                raise PermanentError(
                    f"vk: the upload failed: {error_excerpt(response)}", provider=PROVIDER
                )
            parsed.update(data)

        response = send_with_retry(
            send, classify, self._policy, provider=PROVIDER, sleep=self._sleep
        )
        response.close()
        return parsed

    # -- lookups ------------------------------------------------------------------------------

    def find_video_by_marker(self, owner_id: int, marker: str, *, recent: int = 50) -> int | None:
        """The id of one of the owner's recent, processed videos whose description holds
        `marker`.

        Looks through video.get (the newest `recent` videos), then video.search over the
        account's own videos. A video still `processing` is passed over: VK lists a video.save
        slot whose file never arrived that way too, and taking it for a published video would
        lose the upload. The caller re-sends to the saved slot instead, which is safe either
        way (a file sent to a slot replaces, never adds).
        """
        listing = self.call("video.get", {"owner_id": owner_id, "count": min(recent, 200)})
        found = _match(listing, owner_id, marker)
        if found is not None:
            return found
        search = self.call(
            "video.search", {"q": marker, "search_own": 1, "count": min(recent, 200)}
        )
        return _match(search, owner_id, marker)

    def video_url(self, owner_id: int, video_id: int) -> str:
        return f"{self._web}/video{owner_id}_{video_id}"


def _match(listing: Any, owner_id: int, marker: str) -> int | None:
    items = listing.get("items") if isinstance(listing, dict) else None
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or marker not in str(item.get("description") or ""):
            continue
        if item.get("owner_id") not in (None, owner_id) or item.get("processing"):
            continue
        video_id = item.get("id")
        if isinstance(video_id, int) and not isinstance(video_id, bool):
            return video_id
    return None


def _raise_api_error(method: str, error: dict[str, Any]) -> None:
    code = error.get("error_code")
    if not isinstance(code, int | str):  # compared below, and looked up in a set
        code = None
    text = str(error.get("error_msg") or "no message")
    what = f"vk: {method} failed with error {code}: {text}"
    if code == ERROR_AUTH:
        raise _AuthFailed(what, provider=PROVIDER, status=200)
    if code == ERROR_FLOOD:
        raise Deferred(
            f"{what}; trying again in {FLOOD_WAIT.seconds // 60} minutes",
            provider=PROVIDER,
            status=200,
            reason="flood control",
            retry_at=datetime.now(UTC) + FLOOD_WAIT,
        )
    if code in _RETRYABLE_CODES:
        raise RetryableError(what, provider=PROVIDER, status=200)
    if code == ERROR_CAPTCHA:
        raise PermanentError(f"vk: {CAPTCHA_MESSAGE}", provider=PROVIDER, status=200)
    raise PermanentError(what, provider=PROVIDER, status=200)
