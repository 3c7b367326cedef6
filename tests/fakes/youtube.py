"""A faithful in-memory YouTube (docs/platforms.md, the "YouTube:" sections): refresh-token
endpoint, resumable uploads that hash bytes as they arrive (never holding the file), thumbnails,
playlist items, captions, the uploads listing used for marker search, and fault knobs for every
failure we handle."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

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
)
UPLOADS_PLAYLIST = "UUfake-uploads"


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


class FakeYouTube:
    """In-memory YouTube; `handler` serves it through MockTransport or tests.fakes.server.serve.

    Serve it at a base URL B: token_uri = B + "/token", api_base_url = B + "/youtube/v3",
    upload_base_url = B + "/upload/youtube/v3". Route names: see ROUTES.

    Knobs: invalid_grant (the token endpoint answers 400 invalid_grant), expire_all_tokens(),
    unverified_channel (thumbnails.set answers 403 forbidden), accept_partial (accept at most N
    bytes of each chunk), drop_mid_body(after_bytes, n) (store the first N bytes of the next n
    chunks, then cut the connection), inject(route, Fault, n), inject_error(route, status,
    reason, n), inject_drop(route, n), expire_session(uri), add_video(...) (a pre-existing
    upload), token_lifetime, clock.
    upload_put delay: put_delay (seconds before each PUT is answered).
    Counters: requests[route], tokens_issued, chunk_sizes (bytes of every chunk PUT),
    chunk_ranges ((upload_id, first, last) of every chunk PUT),
    video_count, videos, playlist_items, units (naive per-route quota tally).
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
        self.accept_partial: int | None = None
        self.requests: Counter[str] = Counter()
        self.tokens_issued = 0
        self.chunk_sizes: list[int] = []
        self.chunk_ranges: list[tuple[str, int, int]] = []  # (upload_id, first, last) per PUT
        self.put_delay = 0.0  # seconds each chunk PUT takes to answer (slows a big upload)
        self.videos: dict[str, Video] = {}
        self.playlist_items: list[tuple[str, str]] = []
        self.sessions: dict[str, Session] = {}
        self._lock = threading.RLock()
        self._tokens: dict[str, float] = {}
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

    def expire_session(self, session_uri: str) -> None:
        with self._lock:
            self.sessions[self._upload_id(session_uri)].gone = True

    # -- HTTP --------------------------------------------------------------------------------

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.put_delay > 0 and request.method == "PUT":
            time.sleep(self.put_delay)  # outside the lock: other clients go on meanwhile
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
            if route == "token":
                return self._token(request)
            if not self._authorized(request):
                return google_error(401, "authError", "Invalid Credentials")
            return getattr(self, "_" + route)(request)  # type: ignore[no-any-return]

    def _route(self, request: httpx.Request) -> str | None:
        path, method = request.url.path, request.method
        if path == "/token" and method == "POST":
            return "token"
        table = {
            ("POST", "/upload/youtube/v3/videos"): "upload_start",
            ("PUT", "/upload/youtube/v3/videos"): "upload_put",
            ("POST", "/upload/youtube/v3/thumbnails/set"): "thumbnails_set",
            ("POST", "/youtube/v3/playlistItems"): "playlist_items_insert",
            ("POST", "/upload/youtube/v3/captions"): "captions_insert",
            ("GET", "/youtube/v3/channels"): "channels_list",
            ("GET", "/youtube/v3/playlistItems"): "playlist_items_list",
            ("GET", "/youtube/v3/videos"): "videos_list",
        }
        return table.get((method, path))

    def _authorized(self, request: httpx.Request) -> bool:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ")
        expires = self._tokens.get(token)
        return expires is not None and self.clock() < expires

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return httpx.Response(401, json={"error": "invalid_client"})
        if form.get("grant_type") != "refresh_token":
            return httpx.Response(400, json={"error": "unsupported_grant_type"})
        if self.invalid_grant or form.get("refresh_token") != self.refresh_token:
            return httpx.Response(
                400,
                json={
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                },
            )
        token = "ya29." + secrets.token_urlsafe(16)
        self._tokens[token] = self.clock() + self.token_lifetime
        self.tokens_issued += 1
        body = {
            "access_token": token,
            "expires_in": self.token_lifetime,
            "scope": "https://www.googleapis.com/auth/youtube.force-ssl",
            "token_type": "Bearer",
        }
        return httpx.Response(200, json=body)

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
        if drop is not None:
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
                video_id, resource, session.sha256.hexdigest(), session.size
            )
            session.video_id = video_id
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
