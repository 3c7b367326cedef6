"""A faithful in-memory YouTube (docs/platforms.md, the "YouTube:" sections): Google's OAuth
(authorization code with PKCE and a loopback redirect, the device flow, refresh, revocation,
"Testing"-mode refresh-token death), resumable uploads that hash bytes as they arrive (never
holding the file), thumbnails, playlist items, captions, the uploads listing used for marker
search, and fault knobs for every failure we handle."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx

from tests.fakes.server import DropConnection

ALIGN = 256 * 1024
ROUTES = (
    "token",
    "upload_start",
    "upload_put",
    "thumbnails_set",
    "playlist_items_insert",
    "captions_insert",
    "channels_list",
    "playlist_items_list",
    "videos_list",
    "videos_update",
    "authorize",
    "device_code",
    "revoke",
)
# Routes that take no bearer token (the OAuth endpoints).
_OAUTH_ROUTES = frozenset({"token", "authorize", "device_code", "revoke"})
UPLOADS_PLAYLIST = "UUfake-uploads"
SCOPE_PREFIX = "https://www.googleapis.com/auth/"
FORCE_SSL = SCOPE_PREFIX + "youtube.force-ssl"
SIGN_IN_SCOPES = frozenset({"openid", "email", "profile"})
# Google's device grant ("OAuth 2.0 for TV and Limited-Input Device Applications") allows only
# these scopes; YouTube upload scopes are not among them.
DEVICE_SCOPES = frozenset(
    {
        "openid",
        "email",
        "profile",
        SCOPE_PREFIX + "drive.appdata",
        SCOPE_PREFIX + "drive.file",
        SCOPE_PREFIX + "youtube",
        SCOPE_PREFIX + "youtube.readonly",
    }
)
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# The scopes each API method accepts (the "Authorization" section of each method's reference
# page), so a token from a narrowed (granular) consent fails where Google's would: 403.
_WRITE = frozenset(SCOPE_PREFIX + s for s in ("youtube", "youtube.force-ssl", "youtubepartner"))
_READ = _WRITE | {SCOPE_PREFIX + "youtube.readonly"}
_UPLOAD = _WRITE | {SCOPE_PREFIX + "youtube.upload"}
ROUTE_SCOPES: dict[str, frozenset[str]] = {
    "upload_start": _UPLOAD,
    "upload_put": _UPLOAD,
    "thumbnails_set": _UPLOAD,
    "playlist_items_insert": _WRITE,
    "captions_insert": frozenset(SCOPE_PREFIX + s for s in ("youtube.force-ssl", "youtubepartner")),
    "channels_list": _READ,
    "playlist_items_list": _READ,
    "videos_list": _READ,
    # videos.update: not youtube.upload (an upload-only token can add videos, not edit them).
    "videos_update": _WRITE,
}
# The status fields videos.update may set; an update with part=status replaces them all, and
# one the body leaves out goes back to its default (or away).
MUTABLE_STATUS = (
    "privacyStatus",
    "publishAt",
    "embeddable",
    "license",
    "publicStatsViewable",
    "selfDeclaredMadeForKids",
    "containsSyntheticMedia",
)
STATUS_DEFAULTS = {"embeddable": True, "license": "youtube", "publicStatsViewable": True}


@dataclass
class Fault:
    """One injected answer: a status with a Google error reason, or a dropped connection."""

    status: int | None  # None: drop the connection before answering
    reason: str = "backendError"
    retry_after: float | None = None  # sent as a Retry-After header


@dataclass
class Session:
    size: int
    mime: str
    metadata: dict[str, Any]
    offset: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)
    video_id: str | None = None
    gone: bool = False


@dataclass
class Video:
    id: str
    resource: dict[str, Any]
    sha256: str
    size: int
    thumbnails: int = 0
    captions: list[dict[str, Any]] = field(default_factory=list)
    ever_public: bool = False  # publishAt may be set only on a video never published


@dataclass
class _Code:
    """An authorization code and what the consent bound it to."""

    client_id: str
    redirect_uri: str
    challenge: str
    method: str  # "S256" or "plain"
    scope: str  # granted, space separated
    access_type: str  # "offline" gets a refresh token
    expires_at: float


@dataclass
class _Refresh:
    scope: str
    issued_at: float  # what "Testing" publishing status measures its 7 days from


@dataclass
class _Device:
    client_id: str
    scope: str  # requested; narrowed by grant_only on approval
    user_code: str
    expires_at: float
    interval: float  # grows by 5 s on every slow_down (RFC 8628 section 3.5)
    status: Literal["pending", "approved", "denied"] = "pending"
    pending_polls: int = 0
    last_poll: float | None = None


def google_error(status: int, reason: str, message: str | None = None) -> httpx.Response:
    text = message or reason
    body = {
        "error": {
            "code": status,
            "message": text,
            "errors": [{"message": text, "domain": "youtube", "reason": reason}],
        }
    }
    return httpx.Response(status, json=body)


def oauth_error(status: int, error: str, description: str | None = None) -> httpx.Response:
    """The token, device and revoke endpoints' error shape (RFC 6749), not the API's."""
    body = {"error": error}
    if description is not None:
        body["error_description"] = description
    return httpx.Response(status, json=body)


def _page(status: int, error: str, detail: str) -> httpx.Response:
    """An error Google shows on its own page: the browser stays there, nothing is redirected."""
    text = (
        "<!doctype html><title>Error</title><h1>Access blocked: authorization error</h1>"
        f"<p>Error {status}: {error}</p><p>{html.escape(detail)}</p>"
    )
    return httpx.Response(status, text=text, headers={"Content-Type": "text/html; charset=utf-8"})


def redirect_to(uri: str, params: dict[str, str]) -> httpx.Response:
    """302 to `uri` with `params` appended to any query it already has. Like Google, spaces
    are %20 and ':' and '/' stay literal (a code looks like 4/0A...)."""
    query = urlencode(params, quote_via=quote, safe="/:")
    sep = "" if uri.endswith(("?", "&")) else "&" if "?" in uri else "?"
    return httpx.Response(302, headers={"Location": uri + sep + query})


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier: base64url(sha256(verifier)), no padding."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _loopback(uri: str) -> bool:
    """Google accepts only an http loopback redirect with a port for installed apps."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return False
    return (
        parts.scheme == "http"
        and parts.hostname in ("127.0.0.1", "localhost", "::1")
        and (port is not None)
    )


def _known_scope(scope: str) -> bool:
    return scope.startswith(SCOPE_PREFIX) or scope in SIGN_IN_SCOPES


def _params(request: httpx.Request) -> dict[str, str]:
    """Query and form body together (the body wins), as Google reads /revoke."""
    values = {k: v[-1] for k, v in parse_qs(request.url.query.decode()).items()}
    values.update({k: v[-1] for k, v in parse_qs(request.content.decode()).items()})
    return values


class FakeYouTube:
    """In-memory YouTube; `handler` serves it through MockTransport or tests.fakes.server.serve.

    Serve it at a base URL B: token_uri = B + "/token", api_base_url = B + "/youtube/v3",
    upload_base_url = B + "/upload/youtube/v3", authorize = B + "/o/oauth2/auth",
    device = B + "/device/code" (verification_url B + "/device"), revoke = B + "/revoke".
    Route names: see ROUTES (authorize, device_code, revoke and token need no bearer token).

    OAuth, as Google does it for an installed app:
      authorize (GET): a bad client_id is a 401 "invalid_client" page, a redirect_uri that is
        not http://127.0.0.1|localhost|[::1]:PORT/... a 400 "redirect_uri_mismatch" page, a
        missing response_type/code_challenge/scope a 400 "invalid_request" page; otherwise 302
        to redirect_uri with code, scope (granted), state - or error=invalid_scope (a scope
        outside https://www.googleapis.com/auth/ and openid/email/profile) or
        error=access_denied. A code is single use (it dies on its first exchange attempt) and
        lives code_ttl seconds.
      token (POST): grant_type authorization_code (PKCE S256 or plain; a refresh token only for
        access_type=offline, a new one per authorization), refresh_token (Google does not
        rotate them) and the device_code grant.
      device_code (POST): RFC 8628 limited to DEVICE_SCOPES; polls answer 428
        authorization_pending, 403 slow_down, 403 access_denied, 400 expired_token or tokens.
      revoke (POST, token in form or query): kills the grant - a refresh token with every
        access token issued from it; an access token with its refresh token (Google's word),
        or alone when it has none.
    API routes check the bearer token (401 authError) and its scopes against ROUTE_SCOPES
    (403 insufficientPermissions), so a token from a narrowed consent fails as it would.
    The constructor's refresh_token is valid from the start with scope FORCE_SSL.

    Knobs: invalid_grant (the token endpoint answers 400 invalid_grant to every refresh),
    expire_all_tokens(), unverified_channel (thumbnails.set answers 403 forbidden),
    accept_partial (accept at most N bytes of each chunk), drop_mid_body(after_bytes, n) (store
    the first N bytes of the next n chunks, then cut the connection), inject(route, Fault, n),
    inject_error(route, status, reason, n), inject_drop(route, n), expire_session(uri),
    add_video(...) (a pre-existing upload), token_lifetime, clock, channel_title
    (channels.list's snippet.title), default_privacy (what a video's privacy reverts to when a
    videos.update leaves privacyStatus out).
    videos.update (PUT /youtube/v3/videos?part=status, body {"id", "status"}): replaces every
    mutable status field (MUTABLE_STATUS; one left out reverts to STATUS_DEFAULTS or goes);
    privacyStatus must be public, unlisted or private (400 invalidVideoMetadata); publishAt
    must be ISO 8601 with an offset, needs privacyStatus private and a video never published
    (400 invalidPublishAt otherwise); a publishAt in the past publishes at once (public, no
    publishAt). Unknown video: 404 videoNotFound; a part other than status: 400
    unexpectedPart (the fake edits only the status). Faults through inject(...,
    "videos_update") as on any route (401 authError, 403 forbidden, 5xx).
    OAuth knobs: consent ("allow" | "deny"), grant_only (None, or the set of scopes the user
    leaves ticked: granted = requested & grant_only, also on device approval), code_ttl,
    testing_mode_days (None, or a refresh token dies that many days after issue, per clock,
    like an app in "Testing" status), device_ttl, device_interval, enforce_interval (polling
    faster than the interval gets slow_down; off so tests need not sleep),
    auto_approve_after_polls (None, or approve a device code after N pending polls),
    approve_device(user_code), deny_device(user_code), issue_refresh_token(scope) (a valid
    refresh token as an earlier consent would have left), enforce_scopes (False: any valid
    token may call any API route).
    Delays: put_delay (seconds before each upload PUT is answered), token_delay (seconds before
    each /token request is answered; outside the lock, so concurrent requests overlap).
    State: last_authorize (the query of the last authorize request).
    Counters: requests[route], tokens_issued (access tokens, any grant), refreshes (refresh
    grants that succeeded), revoked (tokens revoked, as presented), chunk_sizes (bytes of every
    chunk PUT), chunk_ranges ((upload_id, first, last) of every chunk PUT),
    video_count, videos, playlist_items, units (naive per-route quota tally), updates
    (videos.update calls per video id, accepted or not).
    """

    def __init__(
        self,
        *,
        client_id: str = "yt-client-id",
        client_secret: str = "yt-client-secret",
        refresh_token: str = "yt-refresh-token",
        token_lifetime: int = 3599,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.invalid_grant = False
        self.unverified_channel = False
        self.channel_title = "Fake Channel"
        self.consent: Literal["allow", "deny"] = "allow"
        self.grant_only: set[str] | None = None
        self.code_ttl = 600.0
        self.testing_mode_days: float | None = None
        self.device_ttl = 1800
        self.device_interval = 5
        self.enforce_interval = False
        self.auto_approve_after_polls: int | None = None
        self.enforce_scopes = True
        self.token_delay = 0.0  # seconds each /token request takes to answer
        self.last_authorize: dict[str, str] = {}
        self.refreshes = 0
        self.revoked: list[str] = []
        self.accept_partial: int | None = None
        self.requests: Counter[str] = Counter()
        self.tokens_issued = 0
        self.chunk_sizes: list[int] = []
        self.chunk_ranges: list[tuple[str, int, int]] = []  # (upload_id, first, last) per PUT
        self.put_delay = 0.0  # seconds each chunk PUT takes to answer (slows a big upload)
        self.videos: dict[str, Video] = {}
        self.playlist_items: list[tuple[str, str]] = []
        self.updates: Counter[str] = Counter()
        self.default_privacy = "public"
        self.sessions: dict[str, Session] = {}
        self._lock = threading.RLock()
        self._tokens: dict[str, float] = {}  # access token -> expiry
        self._token_scopes: dict[str, frozenset[str]] = {}  # access token -> granted scopes
        self._token_parent: dict[str, str] = {}  # access token -> the refresh token behind it
        self._refresh_tokens: dict[str, _Refresh] = {refresh_token: _Refresh(FORCE_SSL, clock())}
        self._codes: dict[str, _Code] = {}
        self._devices: dict[str, _Device] = {}  # device_code -> state
        self._faults: dict[str, deque[Fault]] = {r: deque() for r in ROUTES}
        self._mid_body_drops: deque[int] = deque()

    # -- state and knobs ---------------------------------------------------------------------

    @property
    def video_count(self) -> int:
        return len(self.videos)

    def add_video(self, snippet: dict[str, Any], sha256: str = "", size: int = 0) -> str:
        with self._lock:
            video_id = "v" + secrets.token_hex(5)
            resource = {"kind": "youtube#video", "id": video_id, "snippet": snippet}
            self.videos[video_id] = Video(video_id, resource, sha256, size)
            return video_id

    def inject(self, route: str, fault: Fault, n: int = 1) -> None:
        with self._lock:
            self._faults[route].extend([fault] * n)

    def inject_error(self, route: str, status: int, reason: str, n: int = 1) -> None:
        self.inject(route, Fault(status, reason), n)

    def inject_drop(self, route: str, n: int = 1) -> None:
        self.inject(route, Fault(None), n)

    def drop_mid_body(self, after_bytes: int, n: int = 1) -> None:
        with self._lock:
            self._mid_body_drops.extend([after_bytes] * n)

    def expire_all_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def expire_tokens_older_than(self, seconds: float) -> None:
        """Access tokens issued more than `seconds` ago expire now (as a lifetime ending
        would), those issued since keep working: a token is never dead on arrival."""
        with self._lock:
            now = self.clock()
            for token, expires in list(self._tokens.items()):
                if expires - self.token_lifetime < now - seconds:
                    self._tokens[token] = now - 1

    def expire_session(self, session_uri: str) -> None:
        with self._lock:
            self.sessions[self._upload_id(session_uri)].gone = True

    def issue_refresh_token(self, scope: str = FORCE_SSL) -> str:
        """A valid refresh token for `scope` (space separated), issued now."""
        with self._lock:
            return self._new_refresh(scope)

    def approve_device(self, user_code: str) -> None:
        """The user enters `user_code` at verification_url and consents (KeyError if unknown)."""
        with self._lock:
            self._approve(self._device(user_code))

    def deny_device(self, user_code: str) -> None:
        """The user enters `user_code` and refuses (KeyError if unknown)."""
        with self._lock:
            self._device(user_code).status = "denied"

    def _device(self, user_code: str) -> _Device:
        for device in self._devices.values():
            if device.user_code == user_code:
                return device
        raise KeyError(user_code)

    def _approve(self, device: _Device) -> None:
        device.scope = self._granted(device.scope.split())
        device.status = "approved"

    def _granted(self, requested: list[str]) -> str:
        """What survives granular consent: the requested scopes the user left ticked."""
        keep = [s for s in requested if self.grant_only is None or s in self.grant_only]
        return " ".join(keep)

    # -- HTTP --------------------------------------------------------------------------------

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.put_delay > 0 and request.method == "PUT":
            time.sleep(self.put_delay)  # outside the lock: other clients go on meanwhile
        if self.token_delay > 0 and request.method == "POST" and request.url.path == "/token":
            time.sleep(self.token_delay)  # outside the lock: concurrent exchanges overlap
        with self._lock:
            route = self._route(request)
            if route is None:
                return google_error(404, "notFound", f"no route {request.url.path}")
            self.requests[route] += 1
            if self._faults[route]:
                fault = self._faults[route].popleft()
                if fault.status is None:
                    raise DropConnection
                response = google_error(fault.status, fault.reason)
                if fault.retry_after is not None:
                    response.headers["Retry-After"] = f"{fault.retry_after:g}"
                return response
            if route not in _OAUTH_ROUTES:
                scopes = self._authorized(request)
                if scopes is None:
                    return google_error(401, "authError", "Invalid Credentials")
                if self.enforce_scopes and not scopes & ROUTE_SCOPES[route]:
                    return google_error(
                        403,
                        "insufficientPermissions",
                        "Request had insufficient authentication scopes.",
                    )
            return getattr(self, "_" + route)(request)  # type: ignore[no-any-return]

    def _route(self, request: httpx.Request) -> str | None:
        path, method = request.url.path, request.method
        if path == "/token" and method == "POST":
            return "token"
        table = {
            ("GET", "/o/oauth2/auth"): "authorize",
            ("POST", "/device/code"): "device_code",
            ("POST", "/revoke"): "revoke",
            ("POST", "/upload/youtube/v3/videos"): "upload_start",
            ("PUT", "/upload/youtube/v3/videos"): "upload_put",
            ("POST", "/upload/youtube/v3/thumbnails/set"): "thumbnails_set",
            ("POST", "/youtube/v3/playlistItems"): "playlist_items_insert",
            ("POST", "/upload/youtube/v3/captions"): "captions_insert",
            ("GET", "/youtube/v3/channels"): "channels_list",
            ("GET", "/youtube/v3/playlistItems"): "playlist_items_list",
            ("GET", "/youtube/v3/videos"): "videos_list",
            ("PUT", "/youtube/v3/videos"): "videos_update",
        }
        return table.get((method, path))

    def _authorized(self, request: httpx.Request) -> frozenset[str] | None:
        """The scopes of a live bearer token, or None when it is missing, expired or revoked."""
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ")
        expires = self._tokens.get(token)
        if expires is None or self.clock() >= expires:
            return None
        return self._token_scopes.get(token, frozenset({FORCE_SSL}))

    # -- OAuth -------------------------------------------------------------------------------

    def _new_refresh(self, scope: str) -> str:
        token = "1//0" + secrets.token_urlsafe(32)
        self._refresh_tokens[token] = _Refresh(scope, self.clock())
        return token

    def _token_body(self, scope: str, parent: str | None, *, with_refresh: bool) -> dict[str, Any]:
        """A fresh access token for `scope`, tied to the refresh token `parent` (if any) so a
        revocation of either reaches the other."""
        token = "ya29." + secrets.token_urlsafe(16)
        self._tokens[token] = self.clock() + self.token_lifetime
        self._token_scopes[token] = frozenset(scope.split())
        if parent is not None:
            self._token_parent[token] = parent
        self.tokens_issued += 1
        body: dict[str, Any] = {
            "access_token": token,
            "expires_in": self.token_lifetime,
            "scope": scope,
            "token_type": "Bearer",
        }
        if with_refresh and parent is not None:
            body["refresh_token"] = parent
        return body

    def _authorize(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params.multi_items())
        self.last_authorize = params
        if params.get("client_id") != self.client_id:
            return _page(401, "invalid_client", "The OAuth client was not found.")
        redirect_uri = params.get("redirect_uri", "")
        if not _loopback(redirect_uri):
            return _page(
                400,
                "redirect_uri_mismatch",
                "You can't sign in to this app because it doesn't comply with Google's OAuth "
                "2.0 policy for a loopback redirect: " + redirect_uri,
            )
        method = params.get("code_challenge_method", "plain")
        if (
            params.get("response_type") != "code"
            or not params.get("code_challenge")
            or method not in ("S256", "plain")
            or not params.get("scope")
        ):
            return _page(400, "invalid_request", "Required parameter is missing or invalid.")
        state = {"state": params["state"]} if "state" in params else {}
        requested = params["scope"].split()
        if not all(_known_scope(s) for s in requested):
            return redirect_to(redirect_uri, {"error": "invalid_scope", **state})
        if self.consent == "deny":
            return redirect_to(redirect_uri, {"error": "access_denied", **state})
        granted = self._granted(requested)
        code = "4/0A" + secrets.token_urlsafe(32)
        self._codes[code] = _Code(
            client_id=self.client_id,
            redirect_uri=redirect_uri,
            challenge=params["code_challenge"],
            method=method,
            scope=granted,
            access_type=params.get("access_type", "online"),
            expires_at=self.clock() + self.code_ttl,
        )
        return redirect_to(redirect_uri, {"code": code, "scope": granted, **state})

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return httpx.Response(401, json={"error": "invalid_client"})
        grant = form.get("grant_type")
        if grant == "refresh_token":
            return self._refresh_grant(form)
        if grant == "authorization_code":
            return self._code_grant(form)
        if grant == DEVICE_GRANT:
            return self._device_grant(form)
        return httpx.Response(400, json={"error": "unsupported_grant_type"})

    def _refresh_grant(self, form: dict[str, str]) -> httpx.Response:
        token = form.get("refresh_token", "")
        grant = self._refresh_tokens.get(token)
        days = self.testing_mode_days
        if (
            grant is not None
            and days is not None
            and self.clock() - grant.issued_at >= days * 86400
        ):
            # Dead for good, even if the knob is lifted; its access tokens live out their hour.
            del self._refresh_tokens[token]
            grant = None
        if self.invalid_grant or grant is None:
            return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        self.refreshes += 1
        return httpx.Response(200, json=self._token_body(grant.scope, token, with_refresh=False))

    def _code_grant(self, form: dict[str, str]) -> httpx.Response:
        # Popped on the first attempt: a code is single use whether or not the exchange works.
        code = self._codes.pop(form.get("code", ""), None)
        if code is None or self.clock() >= code.expires_at:
            return oauth_error(400, "invalid_grant", "Bad Request")
        if code.client_id != form.get("client_id"):
            return oauth_error(401, "invalid_client")
        if form.get("redirect_uri") != code.redirect_uri:
            return oauth_error(400, "redirect_uri_mismatch", "Bad Request")
        verifier = form.get("code_verifier")
        if not verifier:
            return oauth_error(400, "invalid_grant", "Missing code verifier.")
        if (s256(verifier) if code.method == "S256" else verifier) != code.challenge:
            return oauth_error(400, "invalid_grant", "Invalid code verifier.")
        refresh = self._new_refresh(code.scope) if code.access_type == "offline" else None
        return httpx.Response(200, json=self._token_body(code.scope, refresh, with_refresh=True))

    def _device_code(self, request: httpx.Request) -> httpx.Response:
        form = _params(request)
        if form.get("client_id") != self.client_id:
            return oauth_error(401, "invalid_client")
        requested = form.get("scope", "").split()
        if not requested:
            return oauth_error(400, "invalid_scope", "Missing required parameter: scope")
        for scope in requested:
            if scope not in DEVICE_SCOPES:
                return oauth_error(400, "invalid_scope", f"Invalid device flow scope: {scope}")
        device_code = "AH-1Ng" + secrets.token_urlsafe(32)
        letters = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels: no words by accident, as Google does
        while True:
            raw = "".join(secrets.choice(letters) for _ in range(8))
            user_code = raw[:4] + "-" + raw[4:]
            if all(d.user_code != user_code for d in self._devices.values()):
                break
        self._devices[device_code] = _Device(
            client_id=self.client_id,
            scope=" ".join(requested),
            user_code=user_code,
            expires_at=self.clock() + self.device_ttl,
            interval=self.device_interval,
        )
        origin = f"{request.url.scheme}://{request.url.netloc.decode()}"
        return httpx.Response(
            200,
            json={
                "device_code": device_code,
                "user_code": user_code,
                "verification_url": origin + "/device",
                "expires_in": self.device_ttl,
                "interval": self.device_interval,
            },
        )

    def _device_grant(self, form: dict[str, str]) -> httpx.Response:
        device_code = form.get("device_code", "")
        device = self._devices.get(device_code)
        if device is None or device.client_id != form.get("client_id"):
            return oauth_error(400, "invalid_grant", "Bad Request")
        now = self.clock()
        if now >= device.expires_at:
            return oauth_error(400, "expired_token", "Bad Request")
        too_soon = device.last_poll is not None and now - device.last_poll < device.interval
        device.last_poll = now
        if self.enforce_interval and too_soon:
            device.interval += 5  # RFC 8628 section 3.5: the client must slow down for good
            return oauth_error(403, "slow_down", "Forbidden")
        auto = self.auto_approve_after_polls
        if device.status == "pending" and auto is not None and device.pending_polls >= auto:
            self._approve(device)
        if device.status == "denied":
            return oauth_error(403, "access_denied", "Forbidden")
        if device.status == "pending":
            device.pending_polls += 1
            return oauth_error(428, "authorization_pending", "Precondition Required")
        del self._devices[device_code]  # single use once it has yielded tokens
        refresh = self._new_refresh(device.scope)
        return httpx.Response(200, json=self._token_body(device.scope, refresh, with_refresh=True))

    def _kill_grant(self, refresh: str) -> None:
        """A refresh token dies, and with it every access token issued from it."""
        self._refresh_tokens.pop(refresh, None)
        for access in [a for a, p in self._token_parent.items() if p == refresh]:
            self._tokens.pop(access, None)
            del self._token_parent[access]

    def _revoke(self, request: httpx.Request) -> httpx.Response:
        token = _params(request).get("token", "")
        if token in self._refresh_tokens:
            self._kill_grant(token)
        elif self.clock() < self._tokens.get(token, -1.0):
            parent = self._token_parent.get(token)
            if parent is not None and parent in self._refresh_tokens:
                self._kill_grant(parent)  # Google: an access token takes its refresh token along
            else:
                self._tokens.pop(token, None)
        else:
            return oauth_error(400, "invalid_token", "Token expired or revoked")
        self.revoked.append(token)
        return httpx.Response(200, json={})

    def _upload_start(self, request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.url.query.decode())
        if query.get("uploadType") != ["resumable"]:
            return google_error(400, "invalidUploadType")
        length = request.headers.get("X-Upload-Content-Length")
        mime = request.headers.get("X-Upload-Content-Type")
        if not length or not mime:
            return google_error(400, "badRequest", "X-Upload-Content-* headers are required")
        # What YouTube takes (docs/platforms.md, "YouTube: the video resource"); sessions[...].mime
        # records what was declared.
        if not (mime.startswith("video/") or mime == "application/octet-stream"):
            return google_error(400, "badRequest", f"Media type '{mime}' is not supported")
        metadata = json.loads(request.content or b"{}")
        snippet = metadata.get("snippet", {})
        title = str(snippet.get("title") or "")
        description = str(snippet.get("description") or "")
        tags = [str(t) for t in snippet.get("tags") or []]
        # YouTube's documented limits (docs/platforms.md, "YouTube: the video resource"): a request
        # past them is refused.
        if not title.strip() or len(title) > 100 or "<" in title or ">" in title:
            return google_error(400, "invalidTitle")
        if len(description.encode()) > 5000 or "<" in description or ">" in description:
            return google_error(400, "invalidDescription")
        tag_chars = sum(len(t) + (2 if " " in t else 0) for t in tags) + max(0, len(tags) - 1)
        if tag_chars > 500:
            return google_error(400, "invalidTags")
        upload_id = secrets.token_urlsafe(12)
        self.sessions[upload_id] = Session(int(length), mime, metadata)
        location = request.url.copy_with(
            query=f"uploadType=resumable&upload_id={upload_id}".encode()
        )
        return httpx.Response(200, headers={"Location": str(location)})

    @staticmethod
    def _upload_id(uri: str) -> str:
        return parse_qs(httpx.URL(uri).query.decode()).get("upload_id", [""])[0]

    def _progress(self, session: Session) -> httpx.Response:
        if session.video_id is not None:
            return httpx.Response(201, json=self.videos[session.video_id].resource)
        if session.offset == 0:
            return httpx.Response(308)
        return httpx.Response(308, headers={"Range": f"bytes=0-{session.offset - 1}"})

    def _upload_put(self, request: httpx.Request) -> httpx.Response:
        session = self.sessions.get(self._upload_id(str(request.url)))
        if session is None or session.gone:
            return google_error(404, "notFound", "upload session not found")
        content_range = request.headers.get("Content-Range", "")
        body = request.content
        if re.fullmatch(r"bytes \*/(\d+|\*)", content_range):
            return self._progress(session)
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", content_range)
        if not match or int(match.group(3)) != session.size:
            return google_error(400, "badContentRange", content_range)
        first, last = int(match.group(1)), int(match.group(2))
        if last - first + 1 != len(body):
            return google_error(400, "badContentRange", "length does not match")
        self.chunk_sizes.append(len(body))
        self.chunk_ranges.append((self._upload_id(str(request.url)), first, last))
        if session.video_id is not None or first != session.offset:
            return self._progress(session)  # lets a confused client self-heal
        if last + 1 < session.size and len(body) % ALIGN:
            return google_error(400, "badRequest", "chunk is not a multiple of 256 KiB")
        keep = len(body)
        if self.accept_partial is not None:
            keep = min(keep, self.accept_partial)
        drop = self._mid_body_drops.popleft() if self._mid_body_drops else None
        if drop is not None:
            keep = min(keep, drop)
        session.sha256.update(body[:keep])
        session.offset += keep
        # A drop that kept the last byte still completes the upload (YouTube finishes a
        # session once it holds every byte; only the answer is lost): the video exists and a
        # status query returns it.
        if drop is not None and session.offset < session.size:
            raise DropConnection
        if session.offset == session.size:
            video_id = "v" + secrets.token_hex(5)
            resource = {
                "kind": "youtube#video",
                "id": video_id,
                "snippet": session.metadata.get("snippet", {}),
                "status": {**session.metadata.get("status", {}), "uploadStatus": "uploaded"},
            }
            self.videos[video_id] = Video(
                video_id,
                resource,
                session.sha256.hexdigest(),
                session.size,
                ever_public=resource["status"].get("privacyStatus") == "public",
            )
            session.video_id = video_id
        if drop is not None:
            raise DropConnection
        return self._progress(session)

    def _thumbnails_set(self, request: httpx.Request) -> httpx.Response:
        video_id = request.url.params.get("videoId", "")
        if video_id not in self.videos:
            return google_error(404, "videoNotFound")
        if not request.content:
            return google_error(400, "mediaBodyRequired")
        if self.unverified_channel:
            return google_error(403, "forbidden", "custom thumbnails need a verified channel")
        self.videos[video_id].thumbnails += 1
        url = f"https://i.ytimg.test/vi/{video_id}/default.jpg"
        return httpx.Response(
            200,
            json={
                "kind": "youtube#thumbnailSetResponse",
                "items": [{"default": {"url": url, "width": 120, "height": 90}}],
            },
        )

    def _playlist_items_insert(self, request: httpx.Request) -> httpx.Response:
        snippet = json.loads(request.content).get("snippet", {})
        playlist_id = snippet.get("playlistId")
        video_id = snippet.get("resourceId", {}).get("videoId")
        if not playlist_id:
            return google_error(404, "playlistNotFound")
        if video_id not in self.videos:
            return google_error(404, "videoNotFound")
        self.playlist_items.append((playlist_id, video_id))
        item_id = "PLI" + secrets.token_hex(5)
        return httpx.Response(
            200, json={"kind": "youtube#playlistItem", "id": item_id, "snippet": snippet}
        )

    def _captions_insert(self, request: httpx.Request) -> httpx.Response:
        ctype = request.headers.get("Content-Type", "")
        match = re.search(r"boundary=([^;]+)", ctype)
        if not ctype.startswith("multipart/related") or not match:
            return google_error(400, "mediaBodyRequired")
        delimiter = b"--" + match.group(1).encode()
        parts = [
            p.split(b"\r\n\r\n", 1)[1].removesuffix(b"\r\n")
            for p in request.content.split(delimiter)[1:-1]
        ]
        if len(parts) != 2:
            return google_error(400, "mediaBodyRequired")
        snippet = json.loads(parts[0]).get("snippet", {})
        video_id = snippet.get("videoId")
        if video_id not in self.videos:
            return google_error(404, "videoNotFound")
        caption = {"kind": "youtube#caption", "id": "cap" + secrets.token_hex(5)}
        caption["snippet"] = snippet
        self.videos[video_id].captions.append({**caption, "body": parts[1].decode()})
        return httpx.Response(200, json=caption)

    def _channels_list(self, request: httpx.Request) -> httpx.Response:
        item = {
            "id": "UCfake",
            "snippet": {"title": self.channel_title},
            "contentDetails": {"relatedPlaylists": {"uploads": UPLOADS_PLAYLIST}},
        }
        return httpx.Response(200, json={"items": [item]})

    def _playlist_items_list(self, request: httpx.Request) -> httpx.Response:
        playlist = request.url.params.get("playlistId")
        if playlist != UPLOADS_PLAYLIST:
            if not playlist:
                return google_error(404, "playlistNotFound")
            video = request.url.params.get("videoId")
            found = [
                {"id": f"PLI-{p}-{v}", "snippet": {"playlistId": p, "resourceId": {"videoId": v}}}
                for p, v in self.playlist_items
                if p == playlist and (video is None or v == video)
            ]
            return httpx.Response(200, json={"items": found})
        limit = int(request.url.params.get("maxResults", "5"))
        newest = list(self.videos)[::-1][:limit]
        items = [{"contentDetails": {"videoId": v}} for v in newest]
        return httpx.Response(200, json={"items": items})

    def _videos_list(self, request: httpx.Request) -> httpx.Response:
        ids = request.url.params.get("id", "").split(",")
        items = [self.videos[v].resource for v in ids if v in self.videos]
        return httpx.Response(200, json={"items": items})

    def _videos_update(self, request: httpx.Request) -> httpx.Response:
        parts = {p.strip() for p in request.url.params.get("part", "").split(",") if p.strip()}
        if not parts:
            return google_error(400, "missingRequiredParameter", "No filter selected: part")
        if parts != {"status"}:
            return google_error(400, "unexpectedPart", f"the fake edits status only: {parts}")
        try:
            body = json.loads(request.content or b"{}")
        except ValueError:
            return google_error(400, "parseError", "This API does not support parsing form data")
        video = self.videos.get(str(body.get("id") or "")) if isinstance(body, dict) else None
        if video is None:
            return google_error(404, "videoNotFound", "The video that you are trying to update")
        self.updates[video.id] += 1
        new = body.get("status") or {}
        if not isinstance(new, dict):
            return google_error(400, "invalidVideoMetadata", "status is not an object")
        privacy = new.get("privacyStatus", self.default_privacy)
        if privacy not in ("public", "unlisted", "private"):
            return google_error(400, "invalidVideoMetadata", f"privacyStatus {privacy!r}")
        changed = {k: new[k] for k in MUTABLE_STATUS if k in new}
        changed["privacyStatus"] = privacy
        if "publishAt" in changed:
            text = changed["publishAt"]
            try:
                when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
            except ValueError:
                when = None
            if when is None or when.tzinfo is None:
                return google_error(400, "invalidPublishAt", f"not an ISO 8601 time: {text!r}")
            if privacy != "private":
                return google_error(400, "invalidPublishAt", "publishAt needs a private video")
            if video.ever_public:
                return google_error(400, "invalidPublishAt", "the video was published before")
            if when.timestamp() <= self.clock():  # a time past publishes the video right away
                del changed["publishAt"]
                changed["privacyStatus"] = "public"
        old = video.resource.get("status") or {}
        kept = {k: v for k, v in old.items() if k not in MUTABLE_STATUS}  # uploadStatus, ...
        video.resource["status"] = {**kept, **STATUS_DEFAULTS, **changed}
        video.ever_public = video.ever_public or changed["privacyStatus"] == "public"
        return httpx.Response(
            200,
            json={"kind": "youtube#video", "id": video.id, "status": video.resource["status"]},
        )
