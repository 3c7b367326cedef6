"""A faithful in-memory Zoom (docs/platforms.md, the "Zoom:" sections): OAuth (authorize with
PKCE, the token endpoint, revoke), users, the recordings listing with month limits and page
tokens, single-meeting lookups with UUID double-decoding, downloads that redirect to a
pre-signed CDN, and fault knobs for every failure we handle."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlencode

import httpx

from tests.fakes.server import DropConnection
from tests.fakes.zoom_data import FakeFile, FakeMeeting, add_month, generate

RetryAfterForm = Literal["seconds", "iso", "http-date"] | None
ROUTES = (
    "oauth_token",
    "get_user",
    "list_recordings",
    "get_meeting_recordings",
    "delete_recordings",
    "download",
    "cdn",
    "authorize",
    "revoke",
)
_BLOCK = 64 * 1024


@dataclass
class Fault:
    """One injected answer: a status with headers and a JSON body, or a dropped connection."""

    status: int | None  # None: drop the connection
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Token:
    user_id: str | None  # None: an S2S (account) token
    expires_at: float
    refresh: str | None = None  # the refresh token issued with it: revoking one ends the pair


@dataclass
class _Code:
    """An authorization code (5 minutes, single use) and what the consent bound it to."""

    user_id: str
    redirect_uri: str
    challenge: str | None
    method: str  # "S256" or "plain"
    expires_at: float


@dataclass
class _PageCursor:
    key: tuple[str, str, str, int]
    remaining: list[str]
    total: int
    issued_at: float


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    out = {
        "x-zm-trackingid": "v=2.0;clid=fake;rid=" + secrets.token_hex(6),
        "Content-Type": "application/json",
        **(headers or {}),
    }
    # ASCII escapes (httpx's json= writes raw UTF-8), so a hostile meeting can carry a lone
    # surrogate the way a JSON server would send it: as a \ud800 escape.
    return httpx.Response(status, content=json.dumps(body).encode(), headers=out)


def _err(status: int, code: int, message: str) -> httpx.Response:
    return _json(status, {"code": code, "message": message})


def _oauth_err(status: int, error: str, reason: str) -> httpx.Response:
    return _json(status, {"reason": reason, "error": error})


class FakeZoom:
    """In-memory Zoom; `handler` serves it through MockTransport or tests.fakes.server.serve.

    Serve it at a base URL B and point LEAP at oauth_base_url=B, api_base_url=B + "/v2"
    (authorize = B + "/oauth/authorize", token = B + "/oauth/token", revoke = B + "/oauth/revoke").
    Routes (names for knobs and counters): oauth_token, get_user, list_recordings,
    get_meeting_recordings, delete_recordings, download (/rec/download/KEY), cdn (/cdn/KEY),
    authorize (GET /oauth/authorize: an unknown client_id is a 400 "Invalid client_id (4702)"
    page, a missing redirect_uri a 400 "Invalid redirect" page, a bad response_type or
    code_challenge_method a 400 page; otherwise 302 to redirect_uri with code and state, or
    error=access_denied; PKCE (S256 or plain) is optional, as at Zoom), revoke (POST
    /oauth/revoke?token=..., Basic client auth: {"status": "success"} and that token and its
    pair (the access and refresh token issued together) die; bad client 401 invalid_client,
    unknown token 400 {"reason": "Invalid Token!", "error": "invalid_request"}).
    The token endpoint's authorization_code grant pops the code on the first attempt (single
    use) and checks PKCE (a missing or wrong code_verifier is 400 invalid_grant); refresh
    rotates the refresh token.
    State: users, meetings (uuid -> FakeMeeting; mutate freely), trashed (uuid -> meeting in
    Zoom's trash), add_user, add_meeting, delete_meeting, trash_meeting, generate_meetings,
    set_file_content, file_bytes,
    issue_authorization_code(redirect_uri, user_email=, code_challenge=, code_challenge_method=),
    last_authorize (the query of the last authorize request).

    The trash (delete_recordings, DELETE /v2/meetings/{uuid}/recordings?action=trash|delete):
    204 and the meeting moves to `trashed` (trash) or is gone for good (delete); listings
    leave trashed meetings out unless asked with trash=true, and lookups answer 3301 for
    them; an unknown (or already trashed) meeting is 404 code 3301; an action other than
    trash or delete is 400 code 300. Every call naming a meeting is counted in
    trash_calls[uuid] (refused and failed ones too) and logged in trash_actions (uuid,
    action).

    Fault knobs:
      inject_429(route, n, retry_after=, form="seconds"|"iso"|"http-date"|None,
                 rate_limit_type="QPS"|"Daily-limit")   the next n requests of a route get 429
      inject_5xx(route, n, status=503)                  ... get a 5xx
      inject_drop(route, n)                             ... lose the connection, no response
      inject(route, Fault(...), n)                      any other answer
      storm(every, routes=("list_recordings",), retry_after=1.0, form="seconds")
                                                        every k-th request of those routes is
                                                        a 429 (storm(0) ends the storm)
      expire_all_tokens()                               every issued access token dies (401 124)
      inject_download_drop(after_bytes, n)              the next n CDN bodies stop after N bytes
      host_only_html = True                             downloads answer 200 text/html
      consent = "allow" | "deny"                        what the user answers on the consent page
      token_delay                                       seconds before each oauth_token answer
                                                    (outside the lock: concurrent refreshes race)
      token_lifetime, page_token_ttl, date_slack_days (widen listings by N days, as an
      inclusive/timezone-sloppy Zoom might), cdn_base_url (default: 127.0.0.1 <-> localhost,
      otherwise cdn.<host>, so httpx drops Authorization on the redirect), clock,
      mutate_listing (a function that may corrupt each listing body in place, to test
      tolerant parsing).
      user_scope = False                                the token lacks the user scope (an app
                                                    granted only recordings): /users/{id}
                                                    answers 400 code 4711
      endless_pages = True | "TOKEN"                    the listing never ends: every answer
                                                    is an empty page with a fresh page token
                                                    (or always the same TOKEN)
      refuse_trash(uuid, status=403, code=200, message="No permission.")
                                                        every trash call for that meeting is
                                                        refused with that status and body
      fail_trash(uuid, status=503)                      ... fails with that 5xx (no Retry-After)
      trash_hook                                        called with the uuid at the start of
                                                    each trash call, outside the lock (a test
                                                    may block it to hold a call in flight)
      echo_authorization = 400|401|None             the token endpoint refuses every request
                                                    and quotes its Authorization header back
                                                    (raw, bare base64, decoded, URL-encoded),
                                                    as careless servers do
    Counters: requests[route], tokens_issued, refreshes (successful refresh_token grants),
    revoked (tokens revoked, as presented), api_tokens_seen (access tokens used on API
    calls, in order), cdn_authorization (Authorization header seen by each CDN request),
    log (method, path?query) of every request.
    """

    def __init__(
        self,
        *,
        client_id: str = "zoom-client-id",
        client_secret: str = "zoom-client-secret",
        account_id: str = "zoom-account-id",
        user_email: str = "host@example.com",
        token_lifetime: int = 3600,
        page_token_ttl: float | None = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.account_id = account_id
        self.token_lifetime = token_lifetime
        self.page_token_ttl = page_token_ttl
        self.clock = clock
        self.host_only_html = False
        self.date_slack_days = 0
        self.cdn_base_url: str | None = None
        self.mutate_listing: Callable[[dict[str, Any]], None] | None = None
        self.user_scope = True
        self.endless_pages: bool | str = False
        self.echo_authorization: int | None = None
        self.consent: Literal["allow", "deny"] = "allow"
        self.token_delay = 0.0  # seconds each oauth_token request takes to answer
        self.last_authorize: dict[str, str] = {}
        self.requests: Counter[str] = Counter()
        self.tokens_issued = 0
        self.refreshes = 0
        self.revoked: list[str] = []
        self.api_tokens_seen: list[str] = []
        self.cdn_authorization: list[str | None] = []
        self.log: list[tuple[str, str]] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.meetings: dict[str, FakeMeeting] = {}
        self.trashed: dict[str, FakeMeeting] = {}
        self.trash_calls: Counter[str] = Counter()
        self.trash_actions: list[tuple[str, str]] = []
        self.trash_hook: Callable[[str], None] | None = None
        self._trash_refusals: dict[str, Fault] = {}
        self._lock = threading.RLock()
        self._faults: dict[str, deque[Fault]] = {r: deque() for r in ROUTES}
        self._storm_every = 0
        self._storm_routes: tuple[str, ...] = ()
        self._storm_args: tuple[float | None, RetryAfterForm] = (1.0, "seconds")
        self._storm_count = 0
        self._download_drops: deque[int] = deque()
        self._tokens: dict[str, _Token] = {}
        self._refresh_tokens: dict[str, str] = {}  # refresh token -> user id
        self._codes: dict[str, _Code] = {}
        self._cursors: dict[str, _PageCursor] = {}
        self._content: dict[str, bytes] = {}
        self._blocks: dict[str, bytes] = {}
        self.default_user_id = self.add_user(user_email)["id"]

    # -- state -------------------------------------------------------------------------------

    def add_user(self, email: str, user_id: str | None = None) -> dict[str, Any]:
        with self._lock:
            for user in self.users.values():
                if user["email"].lower() == email.lower():
                    return user
            uid = user_id or "u" + hashlib.sha256(email.encode()).hexdigest()[:21]
            user = {
                "id": uid,
                "first_name": email.split("@")[0].title(),
                "last_name": "Host",
                "email": email,
                "type": 2,
                "account_id": self.account_id,
                "status": "active",
                "timezone": "Europe/Moscow",
            }
            self.users[uid] = user
            return user

    def add_meeting(self, meeting: FakeMeeting) -> None:
        with self._lock:
            self.meetings[meeting.uuid] = meeting

    def delete_meeting(self, uuid: str) -> None:
        """The recording disappears (trashed or deleted): listings skip it, lookups get 3301."""
        with self._lock:
            self.meetings.pop(uuid, None)

    def trash_meeting(self, uuid: str) -> None:
        """What `action=trash` does: the meeting leaves the listing and lookups (3301) and
        waits in `trashed`, as in Zoom's trash."""
        with self._lock:
            meeting = self.meetings.pop(uuid, None)
            if meeting is not None:
                self.trashed[uuid] = meeting

    def generate_meetings(
        self, n: int, start: datetime, end: datetime, seed: int, user_email: str
    ) -> list[FakeMeeting]:
        """Add n realistic meetings hosted by `user_email` in [start, end); returns them."""
        user = self.add_user(user_email)
        meetings = generate(n, start, end, seed, host_id=user["id"])
        for meeting in meetings:
            meeting.account_id = self.account_id
            self.add_meeting(meeting)
        return meetings

    def set_file_content(self, key: str, data: bytes) -> None:
        """Serve real bytes (e.g. a generated MP4) for a file; its file_size follows."""
        with self._lock:
            self._content[key] = data
            self._file(key)[1].file_size = len(data)

    def file_bytes(self, key: str, start: int = 0, end: int | None = None) -> bytes:
        """The exact bytes /cdn serves for a file, from `start` up to `end` (exclusive)."""
        size = self._file(key)[1].file_size or 0
        return b"".join(self._iter_bytes(key, start, size if end is None else min(end, size)))

    def _file(self, key: str) -> tuple[FakeMeeting, FakeFile]:
        with self._lock:
            for meeting in self.meetings.values():
                for f in meeting.files:
                    if f.key == key:
                        return meeting, f
        raise KeyError(key)

    # -- knobs -------------------------------------------------------------------------------

    def inject(self, route: str, fault: Fault, n: int = 1) -> None:
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; one of {ROUTES}")
        with self._lock:
            self._faults[route].extend([fault] * n)

    def rate_limit_fault(
        self,
        retry_after: float | None = 1.0,
        form: RetryAfterForm = "seconds",
        rate_limit_type: str = "QPS",
    ) -> Fault:
        headers = {
            "X-RateLimit-Category": "Medium",
            "X-RateLimit-Type": rate_limit_type,
            "X-RateLimit-Limit": "20",
            "X-RateLimit-Remaining": "0",
        }
        if retry_after is not None and form is not None:
            headers["Retry-After"] = self._retry_after(retry_after, form)
        message = (
            "You have reached the maximum daily rate limit for this API. Refer to the "
            "response header for details on when you can make another request."
            if rate_limit_type == "Daily-limit"
            else "You have reached the maximum per-second rate limit for this API. Try again later."
        )
        return Fault(429, headers, {"code": 429, "message": message})

    def _retry_after(self, seconds: float, form: Literal["seconds", "iso", "http-date"]) -> str:
        if form == "seconds":
            return f"{seconds:g}"
        # Whole seconds, rounded up, so the wait never comes out shorter than asked.
        when = datetime.fromtimestamp(math.ceil(self.clock() + seconds), UTC)
        if form == "iso":
            return when.strftime("%Y-%m-%dT%H:%M:%SZ")
        return format_datetime(when, usegmt=True)

    def inject_429(
        self,
        route: str,
        n: int = 1,
        *,
        retry_after: float | None = 1.0,
        form: RetryAfterForm = "seconds",
        rate_limit_type: str = "QPS",
    ) -> None:
        # Built now, so an ISO/HTTP-date Retry-After is relative to the injection time.
        self.inject(route, self.rate_limit_fault(retry_after, form, rate_limit_type), n)

    def inject_5xx(self, route: str, n: int = 1, *, status: int = 503) -> None:
        self.inject(route, Fault(status, {}, {"code": status, "message": "Service unavailable"}), n)

    def inject_drop(self, route: str, n: int = 1) -> None:
        self.inject(route, Fault(None), n)

    def storm(
        self,
        every: int,
        routes: tuple[str, ...] = ("list_recordings",),
        *,
        retry_after: float | None = 1.0,
        form: RetryAfterForm = "seconds",
    ) -> None:
        with self._lock:
            self._storm_every, self._storm_routes, self._storm_count = every, routes, 0
            self._storm_args = (retry_after, form)

    def refuse_trash(
        self, uuid: str, *, status: int = 403, code: int = 200, message: str = "No permission."
    ) -> None:
        with self._lock:
            self._trash_refusals[uuid] = Fault(status, {}, {"code": code, "message": message})

    def fail_trash(self, uuid: str, *, status: int = 503) -> None:
        with self._lock:
            self._trash_refusals[uuid] = Fault(
                status, {}, {"code": status, "message": "Service unavailable"}
            )

    def expire_all_tokens(self) -> None:
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = -math.inf

    def inject_download_drop(self, after_bytes: int, n: int = 1) -> None:
        with self._lock:
            self._download_drops.extend([after_bytes] * n)

    def issue_authorization_code(
        self,
        redirect_uri: str,
        *,
        user_email: str | None = None,
        code_challenge: str | None = None,
        code_challenge_method: str = "S256",
    ) -> str:
        """What the browser would bring back from /oauth/authorize: a one-time code (5 min)."""
        user = self.add_user(user_email) if user_email else self.users[self.default_user_id]
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = _Code(
                user["id"], redirect_uri, code_challenge, code_challenge_method, self.clock() + 300
            )
        return code

    def issue_user_tokens(self) -> dict[str, Any]:
        """A user-level token response for the default user, as a finished code flow would
        return it (for tests that store a zoom-oauth credential from a file)."""
        with self._lock:
            return self._issue(self.default_user_id, refresh=True)

    # -- dispatch ----------------------------------------------------------------------------

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode("ascii")
        route, arg = self._route(request.method, request.url.path, path.split("?", 1)[0])
        if route == "oauth_token" and self.token_delay > 0:
            time.sleep(self.token_delay)  # outside the lock: concurrent exchanges overlap
        trashing = self._uuid_of(arg) if route == "delete_recordings" and arg else None
        if trashing is not None and self.trash_hook is not None:
            self.trash_hook(trashing)  # outside the lock: the test may hold this call
        with self._lock:
            self.log.append((request.method, path))
            if route is None:
                return _err(404, 404, "Not found")
            self.requests[route] += 1
            if trashing is not None:
                self.trash_calls[trashing] += 1
                self.trash_actions.append((trashing, request.url.params.get("action", "")))
            fault = self._faults[route].popleft() if self._faults[route] else None
            if fault is None and self._storm_every and route in self._storm_routes:
                self._storm_count += 1
                if self._storm_count % self._storm_every == 0:
                    fault = self.rate_limit_fault(*self._storm_args)
        if fault is not None:
            if fault.status is None:
                raise DropConnection(route)
            return _json(fault.status, fault.body, fault.headers)
        method: Callable[[httpx.Request, str], httpx.Response] = getattr(self, "_" + route)
        return method(request, arg)

    @staticmethod
    def _route(method: str, path: str, raw: str) -> tuple[str | None, str]:
        if path == "/oauth/token" and method == "POST":
            return "oauth_token", ""
        if path == "/oauth/authorize" and method == "GET":
            return "authorize", ""
        if path == "/oauth/revoke" and method == "POST":
            return "revoke", ""
        if m := re.fullmatch(r"/v2/users/([^/]+)/recordings", raw):
            return ("list_recordings", unquote(m[1])) if method == "GET" else (None, "")
        if m := re.fullmatch(r"/v2/users/([^/]+)", raw):
            return ("get_user", unquote(m[1])) if method == "GET" else (None, "")
        if raw.startswith("/v2/meetings/") and raw.endswith("/recordings"):
            m = re.fullmatch(r"/v2/meetings/([^/]+)/recordings", raw)
            # An unencoded "/" in a uuid splits the path: Zoom routes it nowhere (3301).
            segment = m[1] if m else ""
            if method == "DELETE":
                return "delete_recordings", segment
            return ("get_meeting_recordings", segment) if method == "GET" else (None, "")
        if m := re.fullmatch(r"/rec/download/([^/]+)", raw):
            return ("download", unquote(m[1])) if method in ("GET", "HEAD") else (None, "")
        if m := re.fullmatch(r"/cdn/([^/]+)", raw):
            return ("cdn", unquote(m[1])) if method in ("GET", "HEAD") else (None, "")
        return None, ""

    # -- OAuth -------------------------------------------------------------------------------

    def _issue(self, user_id: str | None, *, refresh: bool) -> dict[str, Any]:
        access = "fz." + secrets.token_urlsafe(24)
        token_state = _Token(user_id, self.clock() + self.token_lifetime)
        self._tokens[access] = token_state
        self.tokens_issued += 1
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.token_lifetime,
            "scope": "cloud_recording:read:list_user_recordings:admin user:read:user:admin",
        }
        if refresh and user_id is not None:
            token = "fzr." + secrets.token_urlsafe(24)
            self._refresh_tokens[token] = user_id
            token_state.refresh = token
            body["refresh_token"] = token
        else:
            body["api_url"] = "https://api.zoom.us"
        return body

    def _oauth_token(self, request: httpx.Request, _: str) -> httpx.Response:
        if self.echo_authorization is not None:
            return self._echo_authorization(request, self.echo_authorization)
        if "grant_type" in request.url.params:
            return _oauth_err(400, "invalid_request", "grant_type must be in the request body")
        if not self._basic_ok(request.headers.get("authorization", "")):
            return _oauth_err(401, "invalid_client", "Invalid client_id or client_secret")
        form = {k: v[0] for k, v in parse_qs(request.content.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        with self._lock:
            if grant == "account_credentials":
                if form.get("account_id") != self.account_id:
                    return _oauth_err(400, "invalid_request", "Invalid account_id")
                return _json(200, self._issue(None, refresh=False))
            if grant == "authorization_code":
                # Popped on the first attempt: a code is single use whether or not it works.
                entry = self._codes.pop(form.get("code", ""), None)
                if entry is None or self.clock() > entry.expires_at:
                    return _oauth_err(400, "invalid_grant", "Invalid authorization code")
                if form.get("redirect_uri") != entry.redirect_uri:
                    return _oauth_err(400, "invalid_request", "Redirect URI mismatch.")
                if entry.challenge is not None:
                    verifier = form.get("code_verifier", "")
                    if not verifier:
                        return _oauth_err(400, "invalid_grant", "Missing code_verifier")
                    expected = _s256(verifier) if entry.method == "S256" else verifier
                    if expected != entry.challenge:
                        return _oauth_err(400, "invalid_grant", "Invalid code_verifier")
                return _json(200, self._issue(entry.user_id, refresh=True))
            if grant == "refresh_token":
                # Rotation: the presented refresh token dies the moment it is used.
                user_id = self._refresh_tokens.pop(form.get("refresh_token", ""), "")
                if not user_id:
                    return _oauth_err(400, "invalid_grant", "Invalid Token!")
                self.refreshes += 1
                return _json(200, self._issue(user_id, refresh=True))
        return _oauth_err(400, "unsupported_grant_type", "Unsupported grant type")

    def _authorize(self, request: httpx.Request, _: str) -> httpx.Response:
        params = dict(request.url.params.multi_items())
        with self._lock:
            self.last_authorize = params
        if params.get("client_id") != self.client_id:
            return _page(400, "Invalid client_id (4702)")
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri:
            return _page(400, "Invalid redirect: redirect_uri is missing")
        if params.get("response_type") != "code":
            return _page(400, "Unsupported response_type")
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method", "plain")
        if challenge is not None and method not in ("S256", "plain"):
            return _page(400, "Invalid code_challenge_method")
        state = {"state": params["state"]} if "state" in params else {}
        if self.consent == "deny":
            return _redirect(redirect_uri, {"error": "access_denied", **state})
        code = self.issue_authorization_code(
            redirect_uri, code_challenge=challenge, code_challenge_method=method
        )
        return _redirect(redirect_uri, {"code": code, **state})

    def _revoke(self, request: httpx.Request, _: str) -> httpx.Response:
        if not self._basic_ok(request.headers.get("authorization", "")):
            return _oauth_err(401, "invalid_client", "Invalid client_id or client_secret")
        body = parse_qs(request.content.decode("utf-8", "replace"))
        token = request.url.params.get("token") or body.get("token", [""])[0]
        with self._lock:
            if token in self._refresh_tokens:
                del self._refresh_tokens[token]
                for access in [a for a, t in self._tokens.items() if t.refresh == token]:
                    del self._tokens[access]
            elif token in self._tokens and self.clock() < self._tokens[token].expires_at:
                pair = self._tokens.pop(token).refresh
                if pair is not None:
                    self._refresh_tokens.pop(pair, None)
            else:
                return _oauth_err(400, "invalid_request", "Invalid Token!")
            self.revoked.append(token)
        return _json(200, {"status": "success"})

    @staticmethod
    def _echo_authorization(request: httpx.Request, status: int) -> httpx.Response:
        from urllib.parse import quote  # local: keeps this knob a self-contained addition

        header = request.headers.get("authorization", "")
        token = header.split(" ", 1)[-1]
        decoded = base64.b64decode(token + "==").decode("utf-8", "replace")
        reason = (
            f"Invalid client {token} (Authorization: {header}; decoded {decoded}; "
            f"form client={quote(decoded, safe='')})"
        )
        return _oauth_err(status, "invalid_client", reason)

    def _basic_ok(self, header: str) -> bool:
        if not header.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except ValueError:
            return False
        return decoded == f"{self.client_id}:{self.client_secret}"

    def _bearer(self, request: httpx.Request, *, allow_query: bool = False) -> _Token | None:
        header = request.headers.get("authorization", "")
        value = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not value and allow_query:
            value = request.url.params.get("access_token", "")
        with self._lock:
            token = self._tokens.get(value)
            if token is None or self.clock() >= token.expires_at:
                return None
            self.api_tokens_seen.append(value)
            return token

    def _api_auth(self, request: httpx.Request) -> _Token | httpx.Response:
        token = self._bearer(request)
        return token if token is not None else _err(401, 124, "Invalid access token.")

    def _user(self, token: _Token, user_id: str) -> dict[str, Any] | None:
        if user_id == "me":
            return self.users[token.user_id or self.default_user_id]
        for user in self.users.values():
            if user_id in (user["id"], user["email"]) or user_id.lower() == user["email"].lower():
                return user
        return None

    # -- API ---------------------------------------------------------------------------------

    def _get_user(self, request: httpx.Request, user_id: str) -> httpx.Response:
        token = self._api_auth(request)
        if isinstance(token, httpx.Response):
            return token
        if not self.user_scope:
            return _err(
                400,
                4711,
                "Invalid access token, does not contain scopes:[user:read:user, "
                "user:read:user:admin].",
            )
        user = self._user(token, user_id)
        if user is None:
            return _err(404, 1001, f"User does not exist: {user_id}.")
        return _json(200, user, {"X-RateLimit-Category": "Light"})

    def _list_recordings(self, request: httpx.Request, user_id: str) -> httpx.Response:
        token = self._api_auth(request)
        if isinstance(token, httpx.Response):
            return token
        user = self._user(token, user_id)
        if user is None:
            return _err(404, 1001, f"User does not exist: {user_id}.")
        params = request.url.params
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        try:
            first = date.fromisoformat(params["from"]) if "from" in params else today
            last = date.fromisoformat(params["to"]) if "to" in params else today
            page_size = int(params.get("page_size", "30"))
        except ValueError:
            return _err(400, 300, "Invalid field.")
        if last < first or last > add_month(first):
            return _err(400, 300, "The date range must be within one month.")
        if not 1 <= page_size <= 300:
            return _err(400, 300, "page_size must be between 1 and 300.")
        if self.endless_pages:
            return _json(
                200,
                {
                    "from": first.isoformat(),
                    "to": last.isoformat(),
                    "page_count": 1,
                    "page_size": page_size,
                    "total_records": 0,
                    "next_page_token": self.endless_pages
                    if isinstance(self.endless_pages, str)
                    else secrets.token_urlsafe(24),
                    "meetings": [],
                },
            )
        key = (user["id"], first.isoformat(), last.isoformat(), page_size)
        page_token = params.get("next_page_token", "")
        origin = _origin(request.url)
        with self._lock:
            if page_token:
                cursor = self._cursors.get(page_token)
                ttl = self.page_token_ttl
                if (
                    cursor is None
                    or cursor.key != key
                    or (ttl is not None and self.clock() - cursor.issued_at > ttl)
                ):
                    return _err(400, 300, "The next page token is invalid or expired.")
            else:
                slack = timedelta(days=self.date_slack_days)
                # trash=true lists what is in the trash instead (Zoom's default is false).
                pool = self.trashed if params.get("trash") == "true" else self.meetings
                found = sorted(
                    (
                        m
                        for m in pool.values()
                        if m.host_id == user["id"]
                        and first - slack <= m.start_time.astimezone(UTC).date() <= last + slack
                    ),
                    key=lambda m: m.start_time,
                    reverse=True,
                )
                cursor = _PageCursor(key, [m.uuid for m in found], len(found), self.clock())
            # A snapshot: later pages are stable even if meetings appear meanwhile.
            uuids, rest = cursor.remaining[:page_size], cursor.remaining[page_size:]
            pool = self.trashed if params.get("trash") == "true" else self.meetings
            page = [pool[u] for u in uuids if u in pool]
            next_token = ""
            if rest:
                next_token = secrets.token_urlsafe(24)
                self._cursors[next_token] = _PageCursor(key, rest, cursor.total, self.clock())
            body = {
                "from": first.isoformat(),
                "to": last.isoformat(),
                "page_count": max(1, math.ceil(cursor.total / page_size)),
                "page_size": page_size,
                "total_records": cursor.total,
                "next_page_token": next_token,
                "meetings": [m.to_json(origin) for m in page],
            }
            if self.mutate_listing is not None:
                self.mutate_listing(body)
        return _json(200, body, {"X-RateLimit-Category": "Medium"})

    @staticmethod
    def _uuid_of(segment: str) -> str | None:
        """§1.5: decode once; decode again if still percent-encoded; a single-encoded uuid
        that starts with "/" or holds "//" is mis-routed by Zoom and names nothing."""
        once = unquote(segment)
        if re.search(r"%[0-9A-Fa-f]{2}", once):
            return unquote(once)
        if once.startswith("/") or "//" in once:
            return None
        return once

    def _lookup(self, segment: str) -> FakeMeeting | None:
        uuid = self._uuid_of(segment)
        with self._lock:
            return self.meetings.get(uuid) if uuid is not None else None

    def _get_meeting_recordings(self, request: httpx.Request, segment: str) -> httpx.Response:
        token = self._api_auth(request)
        if isinstance(token, httpx.Response):
            return token
        meeting = self._lookup(segment) if segment else None
        if meeting is None:
            return _err(404, 3301, "This recording does not exist.")
        return _json(200, meeting.to_json(_origin(request.url)), {"X-RateLimit-Category": "Light"})

    def _delete_recordings(self, request: httpx.Request, segment: str) -> httpx.Response:
        token = self._api_auth(request)
        if isinstance(token, httpx.Response):
            return token
        action = request.url.params.get("action", "trash")
        if action not in ("trash", "delete"):
            return _err(400, 300, "Invalid field.")
        uuid = self._uuid_of(segment) if segment else None
        with self._lock:
            refusal = self._trash_refusals.get(uuid) if uuid is not None else None
            if refusal is not None:
                return _json(refusal.status or 500, refusal.body, refusal.headers)
            live = uuid is not None and uuid in self.meetings
            # Deleting for good also empties the trash; trashing a trashed meeting finds
            # nothing (it is no longer among the cloud recordings).
            if not live and not (action == "delete" and uuid in self.trashed):
                return _err(404, 3301, "This recording does not exist.")
            assert uuid is not None
            if action == "trash":
                self.trash_meeting(uuid)
            else:
                self.meetings.pop(uuid, None)
                self.trashed.pop(uuid, None)
        return httpx.Response(204)

    # -- downloads ---------------------------------------------------------------------------

    def _download(self, request: httpx.Request, key: str) -> httpx.Response:
        if self._bearer(request, allow_query=True) is None:
            return _err(401, 124, "Invalid access token.")
        if self.host_only_html:
            html = "<html><body>Only the host can download this recording.</body></html>"
            return httpx.Response(200, text=html, headers={"Content-Type": "text/html"})
        try:
            self._file(key)
        except KeyError:
            return _err(404, 3301, "This recording does not exist.")
        cdn = self.cdn_base_url or _cdn_origin(request.url)
        return httpx.Response(302, headers={"Location": f"{cdn}/cdn/{key}?sig={_sig(key)}"})

    def _cdn(self, request: httpx.Request, key: str) -> httpx.Response:
        with self._lock:
            self.cdn_authorization.append(request.headers.get("authorization"))
        if request.url.params.get("sig") != _sig(key):
            return httpx.Response(403, text="AccessDenied: bad signature")
        try:
            _meeting, f = self._file(key)
        except KeyError:
            return httpx.Response(404, text="NoSuchKey")
        size = f.file_size or 0
        etag = f'"{key}-{size}"'
        last_modified = format_datetime(f.recording_end.astimezone(UTC), usegmt=True)
        headers = {
            "Content-Type": f.content_type,
            "Accept-Ranges": "bytes",
            "ETag": etag,
            "Last-Modified": last_modified,
        }
        start, status = 0, 200
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("range", "").strip())
        if_range = request.headers.get("if-range")
        if match and (if_range is None or if_range in (etag, last_modified)):
            start = int(match[1])
            end = min(int(match[2]) + 1, size) if match[2] else size
            if start >= size or end <= start:
                return httpx.Response(416, headers={"Content-Range": f"bytes */{size}"})
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        else:
            end = size
        headers["Content-Length"] = str(end - start)
        if request.method == "HEAD":
            return httpx.Response(status, headers=headers, stream=httpx.ByteStream(b""))
        with self._lock:
            drop_after = self._download_drops.popleft() if self._download_drops else None
        return httpx.Response(
            status, headers=headers, content=self._iter_bytes(key, start, end, drop_after)
        )

    def _iter_bytes(
        self, key: str, start: int, end: int, drop_after: int | None = None
    ) -> Iterator[bytes]:
        content = self._content.get(key)
        sent = 0
        pos = start
        while pos < end:
            if content is not None:
                chunk = content[pos : min(end, pos + _BLOCK)]
            else:
                block = self._block(key)
                offset = pos % _BLOCK
                chunk = block[offset : offset + min(_BLOCK - offset, end - pos)]
            if drop_after is not None and sent + len(chunk) > drop_after:
                yield chunk[: drop_after - sent]
                raise DropConnection(f"download of {key} cut after {drop_after} bytes")
            yield chunk
            sent += len(chunk)
            pos += len(chunk)

    def _block(self, key: str) -> bytes:
        with self._lock:
            block = self._blocks.get(key)
            if block is None:
                seed = hashlib.sha256(key.encode()).digest()
                block = b"".join(
                    hashlib.sha256(seed + i.to_bytes(4, "big")).digest()
                    for i in range(_BLOCK // 32)
                )
                self._blocks[key] = block
            return block


def _page(status: int, message: str) -> httpx.Response:
    """An error Zoom shows on its own page (no redirect), e.g. "Invalid client_id (4702)"."""
    return httpx.Response(
        status,
        text=f"<!doctype html><title>Zoom</title><p>{message}</p>",
        headers={"Content-Type": "text/html; charset=utf-8"},
    )


def _redirect(uri: str, params: dict[str, str]) -> httpx.Response:
    sep = "" if uri.endswith(("?", "&")) else "&" if "?" in uri else "?"
    return httpx.Response(302, headers={"Location": uri + sep + urlencode(params)})


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _sig(key: str) -> str:
    return hashlib.sha256(b"fake-cdn:" + key.encode()).hexdigest()[:20]


def _origin(url: httpx.URL) -> str:
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"


def _cdn_origin(url: httpx.URL) -> str:
    # Another host on the same server: a different origin, so httpx drops Authorization.
    swap = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}
    host = swap.get(url.host, "cdn." + url.host)
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{host}{port}"


__all__ = ["ROUTES", "FakeFile", "FakeMeeting", "FakeZoom", "Fault"]
