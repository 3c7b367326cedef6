"""A faithful in-memory VK (docs/platforms.md, the "VK:" sections): API methods answering errors
with HTTP 200, video.save slots, a streamed multipart upload endpoint that hashes bytes as they
arrive, and VK ID OAuth 2.1 (authorize with mandatory PKCE, the code exchange and refresh with
device_id and refresh-token rotation, logout), plus fault knobs."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode

import httpx

from tests.fakes.server import DropConnection, Handler

ROUTES = ("api", "oauth", "upload", "authorize", "logout")
DEFAULT_SCOPE = "vkid.personal_info video offline"
# RFC 7636 section 4.1: 43-128 characters; VK ID takes the unreserved set without "." and "~".
_VERIFIER = re.compile(r"[A-Za-z0-9_-]{43,128}")
ERROR_MESSAGES = {
    5: "User authorization failed: invalid access_token (4).",
    6: "Too many requests per second",
    9: "Flood control",
    10: "Internal server error",
    14: "Captcha needed",
    100: "One of the parameters specified was missing or invalid",
}


@dataclass
class FakeVideo:
    video_id: int
    owner_id: int
    params: dict[str, str]
    sig: str
    access_key: str
    size: int = 0
    sha256: str = ""
    uploads: int = 0  # how many complete files arrived at its upload_url

    @property
    def uploaded(self) -> bool:
        return self.uploads > 0


@dataclass
class _Fault:
    status: int | None  # None: drop the connection; 200: an API error (code)
    code: int | None = None
    methods: tuple[str, ...] = ()


@dataclass
class _Grant:
    device_id: str
    client_id: str
    user_id: int
    scope: str = DEFAULT_SCOPE


@dataclass
class _Access:
    expires_at: float
    user_id: int
    refresh: str = ""  # the refresh token issued with it: logout ends the pair


@dataclass
class _Code:
    """An authorization code and what the consent bound it to."""

    client_id: str
    redirect_uri: str
    challenge: str
    device_id: str
    scope: str
    expires_at: float


@dataclass
class _Upload:
    digest: Any = field(default_factory=hashlib.sha256)
    size: int = 0
    fields: list[str] = field(default_factory=list)


def _json(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body)


def _page(status: int, error: str, detail: str) -> httpx.Response:
    """An error VK ID shows on its own page: nothing is redirected."""
    text = f"<!doctype html><title>VK ID</title><p>{error}</p><p>{html.escape(detail)}</p>"
    return httpx.Response(status, text=text, headers={"Content-Type": "text/html; charset=utf-8"})


def _redirect(uri: str, params: dict[str, str]) -> httpx.Response:
    sep = "" if uri.endswith(("?", "&")) else "&" if "?" in uri else "?"
    return httpx.Response(302, headers={"Location": uri + sep + urlencode(params)})


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _form(request: httpx.Request) -> dict[str, str]:
    values = {k: v[-1] for k, v in parse_qs(request.url.query.decode()).items()}
    body = request.read().decode("utf-8", "replace")
    values.update({k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()})
    return values


def parse_multipart(
    chunks: Iterable[bytes], boundary: bytes, on_data: Callable[[str, bytes], None]
) -> list[str]:
    """Stream a multipart/form-data body, calling on_data(field, bytes) piece by piece and
    holding no more than a chunk plus a boundary; returns the field names in order."""
    names: list[str] = []
    end = b"\r\n--" + boundary
    buf = b""
    state = "preamble"
    name = ""
    for chunk in chunks:
        buf += chunk
        while True:
            if state == "preamble":
                start = b"--" + boundary + b"\r\n"
                at = buf.find(start)
                if at < 0:
                    break
                buf, state = buf[at + len(start) :], "headers"
            elif state == "headers":
                at = buf.find(b"\r\n\r\n")
                if at < 0:
                    break
                head, buf = buf[:at].decode("utf-8", "replace"), buf[at + 4 :]
                name = ""
                for line in head.split("\r\n"):
                    if line.lower().startswith("content-disposition:"):
                        for part in line.split(";"):
                            key, _, value = part.strip().partition("=")
                            if key == "name":
                                name = value.strip('"')
                names.append(name)
                state = "data"
            elif state == "data":
                at = buf.find(end)
                if at < 0:
                    keep = len(end)
                    if len(buf) > keep:
                        on_data(name, buf[:-keep])
                        buf = buf[-keep:]
                    break
                on_data(name, buf[:at])
                buf, state = buf[at + len(end) :], "after"
            else:  # after a part: "--" closes the body, CRLF opens the next part
                if len(buf) < 2:
                    break
                if buf.startswith(b"--"):
                    return names
                buf, state = buf[2:], "headers"
    raise ValueError("truncated multipart body")


class StreamingTransport(httpx.BaseTransport):
    """Like tests.fakes.server.mock_transport, but the handler gets the request body unread,
    so a big upload is hashed as it streams (MockTransport reads every body into memory)."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return self._handler(request)
        except DropConnection as exc:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from exc


class FakeVK:
    """In-memory VK; `handler` serves it through MockTransport, StreamingTransport or
    tests.fakes.server.serve.

    Serve it at a base URL B and point LEAP at api_base_url=B + "/method", id_base_url=B
    (authorize = B + "/authorize", token = B + "/oauth2/auth", logout = B + "/oauth2/logout").
    Routes: api (/method/NAME: video.save, video.get, video.search, users.get), oauth
    (/oauth2/auth, parameters from the query and the form merged: grant_type=authorization_code
    with code, code_verifier, client_id, device_id, redirect_uri, state; grant_type=refresh_token
    with client_id and device_id, rotating the refresh token; both echo state; refusals are HTTP
    400 {"error", "error_description", "state"}), upload (/upload.do?sig=..., multipart field
    video_file, hashed incrementally), authorize (GET /authorize: PKCE S256 mandatory, else a
    400 "invalid_request" page; an unknown client_id a 400 "invalid_client" page; otherwise 302
    to redirect_uri with code, state, device_id (new per consent), type=code_v2, expires_in - or
    error=access_denied; a code is single use, dying on its first exchange attempt, and bound to
    its client_id, redirect_uri, challenge, device_id and scope), logout (POST /oauth2/logout
    with client_id and access_token: {"response": 1} and that access token and the refresh
    token issued with it die; errors come as HTTP 200 {"error", "error_description"}).
    State: videos (id -> FakeVideo), issue_tokens(), video_count (videos holding a file),
    last_authorize (the query of the last authorize request).

    Fault knobs:
      inject_api_error(code, n=1, methods=())  the next n API calls (of those methods) answer
                                               HTTP 200 {"error": {"error_code": code, ...}}
      inject_5xx(route, n, status=503)         the next n requests of a route get a 5xx
      inject_drop(route, n)                    ... lose the connection, no response
      drop_after_upload(n)                     the next n uploads are stored, then the
                                               connection drops ("outcome unknown")
      expire_access_tokens()                   every issued access token dies (error 5)
      revoke_refresh_tokens()                  every refresh token dies (invalid_grant)
      consent = "allow" | "deny"               what the user answers on the consent page
      code_ttl                                 seconds an authorization code lives (600)
      token_delay                              seconds before each /oauth2/auth answer
                                               (outside the lock: concurrent refreshes race)
      token_lifetime, clock, list_empty_slots (video.get also lists slots without a file)
    Counters: requests[route], refreshes (successful refresh grants), logouts (successful
    logouts), api_calls (method names, in order), tokens_seen (access tokens used on API
    calls), saved_params (each video.save's params).
    """

    def __init__(
        self,
        *,
        owner_id: int = 743784474,
        client_id: str = "vk-app-id",
        token_lifetime: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.owner_id = owner_id
        self.client_id = client_id
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.list_empty_slots = False
        self.consent: Literal["allow", "deny"] = "allow"
        self.code_ttl = 600
        self.token_delay = 0.0  # seconds each /oauth2/auth request takes to answer
        self.last_authorize: dict[str, str] = {}
        self.logouts = 0
        self.videos: dict[int, FakeVideo] = {}
        self.requests: Counter[str] = Counter()
        self.refreshes = 0
        self.api_calls: list[str] = []
        self.tokens_seen: list[str] = []
        self.saved_params: list[dict[str, str]] = []
        self._lock = threading.RLock()
        self._faults: dict[str, deque[_Fault]] = {r: deque() for r in ROUTES}
        self._drop_after_upload = 0
        self._access: dict[str, _Access] = {}
        self._refresh: dict[str, _Grant] = {}
        self._codes: dict[str, _Code] = {}
        self._next_video_id = 456239017

    # -- state and knobs ----------------------------------------------------------------------

    def issue_tokens(
        self, device_id: str = "device-1", lifetime: int | None = None
    ) -> dict[str, Any]:
        """A fresh VK ID token set as the code exchange would return it (plus device_id)."""
        with self._lock:
            return self._issue(_Grant(device_id, self.client_id, self.owner_id), lifetime)

    def _issue(self, grant: _Grant, lifetime: int | None = None) -> dict[str, Any]:
        access = "vk1.a." + secrets.token_urlsafe(24)
        refresh = "vk1.r." + secrets.token_urlsafe(24)
        life = self.token_lifetime if lifetime is None else lifetime
        self._access[access] = _Access(self.clock() + life, grant.user_id, refresh)
        self._refresh[refresh] = grant
        return {
            "access_token": access,
            "refresh_token": refresh,
            "id_token": "fake-id-token",
            "token_type": "Bearer",
            "expires_in": life,
            "user_id": grant.user_id,
            "device_id": grant.device_id,
            "scope": grant.scope,
        }

    @property
    def video_count(self) -> int:
        with self._lock:
            return sum(1 for v in self.videos.values() if v.uploaded)

    def inject_api_error(self, code: int, n: int = 1, methods: tuple[str, ...] = ()) -> None:
        with self._lock:
            self._faults["api"].extend(_Fault(200, code, methods) for _ in range(n))

    def inject_5xx(self, route: str, n: int = 1, status: int = 503) -> None:
        with self._lock:
            self._faults[route].extend(_Fault(status) for _ in range(n))

    def inject_drop(self, route: str, n: int = 1) -> None:
        with self._lock:
            self._faults[route].extend(_Fault(None) for _ in range(n))

    def drop_after_upload(self, n: int = 1) -> None:
        with self._lock:
            self._drop_after_upload += n

    def expire_upload_urls(self) -> None:
        """Every upload_url handed out so far stops working (their signatures change), as
        VK's signed URLs do after their `expires`."""
        with self._lock:
            for video in self.videos.values():
                video.sig = secrets.token_hex(8)

    def expire_access_tokens(self) -> None:
        with self._lock:
            self._access.clear()

    def expire_access_tokens_older_than(self, seconds: float) -> None:
        """Access tokens issued more than `seconds` ago die now (error 5, as a lifetime ending
        would), those issued since keep working."""
        with self._lock:
            now = self.clock()
            for token, access in list(self._access.items()):
                if access.expires_at - self.token_lifetime < now - seconds:
                    del self._access[token]

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self._refresh.clear()

    # -- dispatch -----------------------------------------------------------------------------

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.startswith("/method/"):
            route = "api"
        elif path == "/oauth2/auth":
            route = "oauth"
        elif path == "/upload.do":
            route = "upload"
        elif path == "/authorize" and request.method == "GET":
            route = "authorize"
        elif path == "/oauth2/logout" and request.method == "POST":
            route = "logout"
        else:
            return _json({"error": "not found"}, 404)
        method = path.removeprefix("/method/")
        if route == "oauth" and self.token_delay > 0:
            time.sleep(self.token_delay)  # outside the lock: concurrent exchanges overlap
        with self._lock:
            self.requests[route] += 1
            if route == "api":
                self.api_calls.append(method)
            fault = self._take_fault(route, method)
        if fault is not None:
            if fault.status is None:
                raise DropConnection
            if fault.code is None:
                return _json({"error": "fake outage"}, fault.status)
            return self._api_error(fault.code, method)
        if route == "api":
            origin = f"{request.url.scheme}://{request.url.netloc.decode()}"
            return self._api(method, _form(request), origin)
        if route == "oauth":
            return self._oauth(_form(request))
        if route == "authorize":
            return self._authorize(request)
        if route == "logout":
            return self._logout(_form(request))
        return self._upload(request)

    def _take_fault(self, route: str, method: str) -> _Fault | None:
        queue = self._faults[route]
        for i, fault in enumerate(queue):
            if not fault.methods or method in fault.methods:
                del queue[i]
                return fault
        return None

    def _api_error(self, code: int, method: str) -> httpx.Response:
        error: dict[str, Any] = {
            "error_code": code,
            "error_msg": ERROR_MESSAGES.get(code, f"Error {code}"),
            "request_params": [{"key": "method", "value": method}],
        }
        if code == 14:
            error["captcha_sid"] = "123456"
            error["captcha_img"] = "https://api.vk.com/captcha.php?sid=123456"
        return _json({"error": error})

    # -- API methods --------------------------------------------------------------------------

    def _api(self, method: str, form: dict[str, str], origin: str) -> httpx.Response:
        token = form.get("access_token", "")
        with self._lock:
            self.tokens_seen.append(token)
            access = self._access.get(token)
            if access is None or access.expires_at <= self.clock():
                return self._api_error(5, method)
            if not form.get("v"):
                return self._api_error(100, method)
            if method == "video.save":
                # §3.2: name at most 128 characters, description at most 5000.
                if len(form.get("name", "")) > 128 or len(form.get("description", "")) > 5000:
                    return self._api_error(100, method)
                return _json({"response": self._save(form, origin)})
            if method in ("video.get", "video.search"):
                return _json({"response": self._list(method, form)})
            if method == "users.get":
                # The cheapest call that proves a token works: the token's own user.
                user = {
                    "id": access.user_id,
                    "first_name": "Fake",
                    "last_name": "User",
                    "can_access_closed": True,
                    "is_closed": False,
                }
                return _json({"response": [user]})
        return self._api_error(3, method)

    def _save(self, form: dict[str, str], origin: str) -> dict[str, Any]:
        params = {k: v for k, v in form.items() if k not in ("access_token", "v")}
        self.saved_params.append(params)
        owner = -int(params["group_id"]) if params.get("group_id") else self.owner_id
        video_id = self._next_video_id
        self._next_video_id += 1
        video = FakeVideo(video_id, owner, params, secrets.token_hex(8), secrets.token_hex(9))
        self.videos[video_id] = video
        return {
            "upload_url": f"{origin}/upload.do?sig={video.sig}&vkVideoId={video_id}",
            "video_id": video_id,
            "owner_id": owner,
            "title": params.get("name", ""),
            "description": params.get("description", ""),
            "access_key": video.access_key,
        }

    def _list(self, method: str, form: dict[str, str]) -> dict[str, Any]:
        count = int(form.get("count") or 100)
        videos = sorted(self.videos.values(), key=lambda v: -v.video_id)
        if method == "video.get":
            owner = int(form.get("owner_id") or self.owner_id)
            videos = [v for v in videos if v.owner_id == owner]
        else:
            query = form.get("q", "")
            videos = [
                v
                for v in videos
                if query in v.params.get("name", "") or query in v.params.get("description", "")
            ]
        if not self.list_empty_slots:
            videos = [v for v in videos if v.uploaded]
        items = [
            {
                "id": v.video_id,
                "owner_id": v.owner_id,
                "title": v.params.get("name", ""),
                "description": v.params.get("description", ""),
                "processing": 0 if v.uploaded else 1,
            }
            for v in videos[:count]
        ]
        return {"count": len(videos), "items": items}

    # -- VK ID --------------------------------------------------------------------------------

    def _authorize(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params.multi_items())
        with self._lock:
            self.last_authorize = params
        if params.get("client_id") != self.client_id:
            return _page(400, "invalid_client", "Unknown application")
        redirect_uri = params.get("redirect_uri", "")
        if (
            params.get("response_type") != "code"
            or not redirect_uri
            or not params.get("code_challenge")
            or params.get("code_challenge_method") != "S256"
        ):
            # OAuth 2.1: PKCE with S256 is mandatory; VK ID takes no plain challenge.
            return _page(400, "invalid_request", "code_challenge with S256 is required")
        state = params.get("state", "")
        if self.consent == "deny":
            return _redirect(
                redirect_uri,
                {
                    "error": "access_denied",
                    "error_description": "User denied access",
                    "state": state,
                },
            )
        code = "vk2.a." + secrets.token_urlsafe(32)
        device_id = "dev-" + secrets.token_hex(16)
        with self._lock:
            self._codes[code] = _Code(
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                challenge=params["code_challenge"],
                device_id=device_id,
                scope=params.get("scope") or "vkid.personal_info",  # VK ID's default scope
                expires_at=self.clock() + self.code_ttl,
            )
        return _redirect(
            redirect_uri,
            {
                "code": code,
                "state": state,
                "device_id": device_id,
                "type": "code_v2",
                "expires_in": str(int(self.code_ttl)),
            },
        )

    def _oauth(self, form: dict[str, str]) -> httpx.Response:
        state = form.get("state", "")

        def refuse(error: str, description: str) -> httpx.Response:
            return _json({"error": error, "error_description": description, "state": state}, 400)

        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._code_grant(form, refuse)
        if grant_type != "refresh_token":
            return refuse("unsupported_grant_type", "grant_type is not supported")
        with self._lock:
            grant = self._refresh.get(form.get("refresh_token", ""))
            if grant is None:
                return refuse("invalid_grant", "refresh token is invalid or expired")
            if form.get("client_id") != grant.client_id:
                return refuse("invalid_client", "client_id mismatch")
            if form.get("device_id") != grant.device_id:
                return refuse("invalid_request", "device_id is missing or wrong")
            del self._refresh[form["refresh_token"]]  # rotation: the old one dies
            self.refreshes += 1
            body = self._issue(grant)
        body["state"] = state
        return _json(body)

    def _code_grant(
        self, form: dict[str, str], refuse: Callable[[str, str], httpx.Response]
    ) -> httpx.Response:
        with self._lock:
            # Popped on the first attempt: a code is single use whether or not the exchange works.
            code = self._codes.pop(form.get("code", ""), None)
            if code is None or self.clock() >= code.expires_at:
                return refuse("invalid_grant", "code is invalid or expired")
            if form.get("client_id") != code.client_id:
                return refuse("invalid_client", "client_id mismatch")
            verifier = form.get("code_verifier", "")
            if not _VERIFIER.fullmatch(verifier) or _s256(verifier) != code.challenge:
                return refuse("invalid_grant", "code_verifier is invalid")
            if form.get("device_id") != code.device_id:
                return refuse("invalid_request", "device_id is missing or wrong")
            if form.get("redirect_uri") != code.redirect_uri:
                return refuse("invalid_request", "redirect_uri is missing or wrong")
            body = self._issue(_Grant(code.device_id, code.client_id, self.owner_id, code.scope))
        body["state"] = form.get("state", "")
        return _json(body)

    def _logout(self, form: dict[str, str]) -> httpx.Response:
        token = form.get("access_token", "")
        with self._lock:
            if form.get("client_id") != self.client_id:
                return _json({"error": "invalid_client", "error_description": "unknown client"})
            access = self._access.get(token)
            if access is None or access.expires_at <= self.clock():
                return _json(
                    {"error": "invalid_token", "error_description": "access_token is invalid"}
                )
            del self._access[token]
            self._refresh.pop(access.refresh, None)  # the pair ends together
            self.logouts += 1
        return _json({"response": 1})

    # -- upload -------------------------------------------------------------------------------

    def _upload(self, request: httpx.Request) -> httpx.Response:
        params = {k: v[-1] for k, v in parse_qs(request.url.query.decode()).items()}
        with self._lock:
            video = self.videos.get(int(params.get("vkVideoId") or 0))
        if video is None or params.get("sig") != video.sig:
            return _json({"error": "invalid signature"}, 403)
        content_type = request.headers.get("Content-Type", "")
        _, _, boundary = content_type.partition("boundary=")
        if not content_type.startswith("multipart/form-data") or not boundary:
            return _json({"error": "multipart/form-data expected"}, 400)
        upload = _Upload()

        def on_data(name: str, data: bytes) -> None:
            if name == "video_file":
                upload.digest.update(data)
                upload.size += len(data)

        try:
            names = parse_multipart(_body(request), boundary.strip('"').encode(), on_data)
        except ValueError as exc:
            return _json({"error": str(exc)}, 400)
        if names != ["video_file"]:
            return _json({"error": f"expected one video_file field, got {names}"}, 400)
        with self._lock:
            video.size = upload.size
            video.sha256 = upload.digest.hexdigest()
            video.uploads += 1
            if self._drop_after_upload:
                self._drop_after_upload -= 1
                raise DropConnection
        return _json(
            {
                "video_hash": secrets.token_hex(8),
                "size": upload.size,
                "owner_id": video.owner_id,
                "video_id": video.video_id,
            }
        )


def _body(request: httpx.Request) -> Iterator[bytes]:
    stream: Any = request.stream
    yield from stream
