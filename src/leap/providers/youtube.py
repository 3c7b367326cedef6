"""YouTube Data API v3 (docs/platforms.md, the "YouTube:" sections): refresh-token OAuth, resumable
video upload with crash-safe resume, thumbnails, playlist items, captions, and quota-aware error
mapping."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import httpx

from leap.config import YouTubeSettings
from leap.errors import QuotaExceeded, UsageError
from leap.providers.http import (
    TRANSIENT_ERRORS,
    AccessTokenRejected,
    CredentialRejected,
    Deferred,
    PermanentError,
    ResourceNotFound,
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

PROVIDER = "youtube"
Clock = Callable[[], float]
CHUNK_ALIGN = 256 * 1024  # every chunk but the last must be a multiple of this
# The setting's default ([youtube] upload_chunk_mb, 32 MiB), one number in one place. Each
# chunk costs a round trip and a commit of the offset, so small chunks cost throughput (8 MiB:
# 0.68x curl -T on loopback, 32 MiB: 0.91x; benchmarks/bench_upload.py), while memory does not
# depend on it (chunks stream from disk) and a crash re-sends at most one.
DEFAULT_CHUNK_SIZE = YouTubeSettings.model_fields["upload_chunk_mb"].default * 1024 * 1024
THUMBNAIL_MAX_BYTES = 2 * 1024 * 1024  # the stricter of the two documented caps (§2.4)
PACIFIC = ZoneInfo("America/Los_Angeles")
REAUTH_HINT = "re-authenticate the YouTube credential"

# Quota units per call (§2.7). The docs disagree on videos.insert (1600 units, or 1 call in a
# separate 100/day bucket); pass `costs=` to override.
COSTS: dict[str, int] = {
    "videos.insert": 1600,
    "thumbnails.set": 50,
    "playlistItems.insert": 50,
    "captions.insert": 400,
    "channels.list": 1,
    "playlistItems.list": 1,
    "videos.list": 1,
    "videos.update": 50,
}
_QUOTA_REASONS = {"quotaExceeded", "dailyLimitExceeded"}
_RATE_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "uploadRateLimitExceeded"}


class QuotaDeferred(Deferred, QuotaExceeded):
    """The project's daily quota or the channel's upload cap is spent: try again at retry_at."""

    def __init__(
        self, message: str, *, status: int | None, reason: str, retry_at: datetime
    ) -> None:
        super().__init__(
            message, provider=PROVIDER, status=status, reason=reason, retry_at=retry_at
        )


class SessionGone(PermanentError):
    """The resumable session URI is unknown or expired (404/410): the upload must restart,
    after checking find_video_by_marker that the video does not already exist."""


@dataclass(frozen=True)
class ThumbnailResult:
    ok: bool
    warning: str | None = None
    response: dict[str, Any] | None = None


# The container each file extension names, as YouTube's upload declares it. YouTube takes
# `video/*` or application/octet-stream (docs/platforms.md, "YouTube: the video resource");
# anything else it is not told about (an .m4a of audio only, an unknown extension) goes as
# application/octet-stream and YouTube sniffs it, which beats naming a container the file is
# not in.
VIDEO_MIME = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mkv": "video/x-matroska",
    ".webm": "video/webm",
    ".mov": "video/quicktime",
    ".avi": "video/x-msvideo",
    ".flv": "video/x-flv",
    ".wmv": "video/x-ms-wmv",
    ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg",
    ".ts": "video/mp2t",
    ".mts": "video/mp2t",
    ".m2ts": "video/mp2t",
    ".3gp": "video/3gpp",
    ".ogv": "video/ogg",
}
FALLBACK_MIME = "application/octet-stream"


def video_mime(path: Path) -> str:
    """The MIME type to declare for uploading `path`, from its extension."""
    return VIDEO_MIME.get(path.suffix.lower(), FALLBACK_MIME)


def next_pacific_midnight(now: datetime) -> datetime:
    """When YouTube quotas reset: the next 00:00 America/Los_Angeles, returned in UTC."""
    local = now.astimezone(PACIFIC)
    tomorrow = (local + timedelta(days=1)).date()
    midnight = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=PACIFIC)
    return midnight.astimezone(UTC)


def error_reason(response: httpx.Response) -> str | None:
    """error.errors[0].reason of a Google error body, parsed tolerantly."""
    try:
        data = loads(response.read())
    except (ValueError, httpx.HTTPError):
        return None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None
    errors = error.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        reason = errors[0].get("reason")
        if isinstance(reason, str):
            return reason
    return None


def classify(response: httpx.Response, now: datetime) -> None:
    """Map a YouTube response: quota → QuotaDeferred, rate limits/5xx → RetryableError,
    401 → AccessTokenRejected, 404 → ResourceNotFound, other 4xx → PermanentError."""
    status = response.status_code
    if status < 400:
        return
    reason = error_reason(response)
    what = f"youtube: HTTP {status} on {response.request.method} {response.request.url.path}"
    message = f"{what}: {error_excerpt(response)}"
    if reason in _QUOTA_REASONS:
        raise QuotaDeferred(
            message, status=status, reason=reason or "", retry_at=next_pacific_midnight(now)
        )
    if reason == "uploadLimitExceeded":
        # A rolling per-channel 24-hour cap, not the daily project quota.
        raise QuotaDeferred(
            message, status=status, reason=reason, retry_at=now + timedelta(hours=24)
        )
    if reason in _RATE_REASONS:
        raise RetryableError(message, provider=PROVIDER, status=status)
    if status == 404:
        raise ResourceNotFound(message, provider=PROVIDER, status=status)
    classify_response(response, PROVIDER, now)


def add_marker(metadata_body: dict[str, Any], marker: str) -> dict[str, Any]:
    """A copy of the video metadata with an idempotency marker appended to snippet.tags."""
    body = json.loads(json.dumps(metadata_body))
    snippet = body.setdefault("snippet", {})
    tags = list(snippet.get("tags") or [])
    if marker not in tags:
        tags.append(marker)
    snippet["tags"] = tags
    return dict(body)


@dataclass(frozen=True)
class GoogleTokens:
    access_token: str
    refresh_token: str
    expires_at: float | None  # epoch seconds; 0 or None with no access token yet
    scope: str | None = None  # what Google granted, as its last token response said


class YouTubeAuth(RotatingAuth[GoogleTokens]):
    """Google's refresh-token grant, done with httpx directly (so the injected transport and
    our RetryPolicy apply): refreshes a minute before expiry, or after a 401, through the
    store (one refresh at a time for every holder of the credential; Google does not rotate
    the refresh token, but the access token is shared)."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        token_uri: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        access_token: str | None = None,
        expires_at: float = 0.0,
        store: TokenStore[GoogleTokens] | None = None,
        clock: Clock = time.time,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._http = http
        self._token_uri = token_uri
        self._client_id = client_id
        self._client_secret = client_secret
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self.refresh_count = 0
        tokens = GoogleTokens(access_token or "", refresh_token, expires_at)
        super().__init__(
            tokens,
            self._grant,
            store or MemoryStore(tokens, lambda _t: None, clock=clock),
            clock=clock,
        )

    @property
    def access_token(self) -> str | None:
        return self.tokens.access_token or None

    @property
    def expires_at(self) -> float | None:
        return self.tokens.expires_at

    def _classify(self, response: httpx.Response) -> None:
        if response.status_code in (400, 401, 403):
            raise CredentialRejected(
                f"youtube: the token endpoint refused the refresh token "
                f"(HTTP {response.status_code}: {error_excerpt(response)}); {REAUTH_HINT}",
                provider=PROVIDER,
                status=response.status_code,
            )
        classify_response(response, PROVIDER, datetime.fromtimestamp(self._clock(), UTC))

    def _grant(self, stored: GoogleTokens) -> GoogleTokens:
        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "refresh_token": stored.refresh_token,
        }
        data = token_grant(
            lambda: self._http.post(self._token_uri, data=form),
            self._classify,
            self._policy,
            provider=PROVIDER,
            sleep=self._sleep,
        )
        lifetime = data.get("expires_in")
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = 3599
        self.refresh_count += 1
        scope = data.get("scope")
        return GoogleTokens(
            access_token=data["access_token"],
            refresh_token=stored.refresh_token,
            expires_at=self._clock() + float(lifetime),
            scope=scope if isinstance(scope, str) else stored.scope,
        )


# Each block is read into a new bytes object and h11 joins it into another before the send:
# 1 MiB blocks kept about 1.5 MB more RSS through an upload than 256 KiB, at the same speed
# (bench_upload: both ~1300 MB/s on loopback; 64 KiB fell to ~800).
_READ_BLOCK = 256 * 1024


def _read_range(source: BinaryIO, start: int, end: int, size: int) -> Iterator[bytes]:
    source.seek(start)
    left = end - start
    while left > 0:
        block = source.read(min(left, _READ_BLOCK))
        if not block:
            raise UsageError(f"the file is shorter than the declared size {size}")
        left -= len(block)
        yield block


_RANGE = re.compile(r"bytes=0-(\d+)\s*$")


def _confirmed(response: httpx.Response) -> int:
    """The next offset a 308 asks for: last+1 of its Range, or 0 when Range is absent."""
    value = response.headers.get("Range")
    if not value:
        return 0
    match = _RANGE.match(value.strip())
    if not match:
        raise PermanentError(
            f"youtube: unparseable Range {value!r} in a 308", provider=PROVIDER, status=308
        )
    return int(match.group(1)) + 1


class YouTubeClient:
    """YouTube calls with retries, one token refresh on 401 and a tally of quota units spent."""

    def __init__(
        self,
        http: httpx.Client,
        auth: YouTubeAuth,
        *,
        api_base_url: str,
        upload_base_url: str,
        policy: RetryPolicy | None = None,
        costs: Mapping[str, int] | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.time,
    ) -> None:
        self._http = http
        self._auth = auth
        self._api = api_base_url.rstrip("/")
        self._upload = upload_base_url.rstrip("/")
        self._policy = policy or RetryPolicy()
        self.costs: dict[str, int] = {**COSTS, **(costs or {})}
        self._sleep = sleep
        self._clock = clock
        self.units_spent: Counter[str] = Counter()

    # -- plumbing ---------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _classify(self, response: httpx.Response) -> None:
        classify(response, self._now())

    def _call(
        self,
        op: str | None,
        method: str,
        url: str,
        *,
        classifier: Callable[[httpx.Response], None] | None = None,
        landed: Callable[[], httpx.Response | None] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """`landed`, for calls that are not idempotent: asked before each re-send whether an
        earlier try took effect after all (its answer lost); a response it returns is used
        instead of sending again."""
        headers: dict[str, str] = dict(kwargs.pop("headers", {}))
        tries = 0

        def send() -> httpx.Response:
            nonlocal tries
            if tries and landed is not None:
                found = landed()
                if found is not None:
                    return found
            tries += 1
            headers["Authorization"] = f"Bearer {self._auth.token()}"
            if op is not None:
                self.units_spent[op] += self.costs.get(op, 1)  # even a failed call costs
            return self._http.request(
                method, url, headers=headers, follow_redirects=False, **kwargs
            )

        check = classifier or self._classify

        def attempt() -> httpx.Response:
            return send_with_retry(send, check, self._policy, provider=PROVIDER, sleep=self._sleep)

        try:
            return attempt()
        except AccessTokenRejected:
            self._auth.invalidate()
            try:
                return attempt()
            except AccessTokenRejected as exc:
                raise CredentialRejected(
                    f"youtube: a freshly refreshed access token was refused ({exc.message}); "
                    + REAUTH_HINT,
                    provider=PROVIDER,
                    status=401,
                ) from exc

    def _json(self, op: str, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = self._call(op, method, url, **kwargs)
        data = json_body(response, PROVIDER)
        if not isinstance(data, dict):
            raise PermanentError(f"youtube: malformed {op} response", provider=PROVIDER)
        return data

    # -- resumable upload -------------------------------------------------------------------

    def start_session(self, metadata_body: dict[str, Any], *, size: int, mime: str) -> str:
        """Open a resumable videos.insert session; returns its session URI.

        The caller must persist the URI (and later each confirmed offset) BEFORE sending the
        first byte: after a crash it is the only way back to the same upload, and a new
        session would create a second video.
        """
        response = self._call(
            "videos.insert",
            "POST",
            self._upload + "/videos",
            params={"uploadType": "resumable", "part": "snippet,status"},
            headers={
                "X-Upload-Content-Length": str(size),
                "X-Upload-Content-Type": mime,
                "Content-Type": "application/json; charset=UTF-8",
            },
            content=json.dumps(metadata_body).encode(),
        )
        location = response.headers.get("Location")
        if response.status_code != 200 or not location:
            raise PermanentError(
                f"youtube: starting an upload answered HTTP {response.status_code} "
                "without a session Location",
                provider=PROVIDER,
                status=response.status_code,
            )
        return server_url(urljoin(str(response.url), location), "the session Location", PROVIDER)

    def _session_classifier(self, response: httpx.Response) -> None:
        if response.status_code in (404, 410):
            raise SessionGone(
                f"youtube: the upload session is gone (HTTP {response.status_code})",
                provider=PROVIDER,
                status=response.status_code,
            )
        self._classify(response)

    def _session_result(self, response: httpx.Response) -> int | dict[str, Any]:
        if response.status_code == 308:
            return _confirmed(response)
        if response.status_code in (200, 201):
            data = json_body(response, PROVIDER)
            if not isinstance(data, dict) or not isinstance(data.get("id"), str):
                raise PermanentError(
                    "youtube: the finished upload returned no video id", provider=PROVIDER
                )
            return data
        raise PermanentError(
            f"youtube: unexpected HTTP {response.status_code} from the upload session",
            provider=PROVIDER,
            status=response.status_code,
        )

    def query_offset(self, session_uri: str, size: int) -> int | dict[str, Any]:
        """Ask the session how far it got: the next offset to send, or the finished video
        resource. Raises SessionGone on 404/410."""
        response = self._call(
            None,
            "PUT",
            session_uri,
            classifier=self._session_classifier,
            headers={"Content-Range": f"bytes */{size}"},
            content=b"",
        )
        try:
            return self._session_result(response)
        finally:
            response.close()

    def upload(
        self,
        session_uri: str,
        path: str | os.PathLike[str],
        *,
        size: int,
        offset: int = 0,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        on_progress: Callable[[int], None] = lambda _: None,
    ) -> dict[str, Any]:
        """Send `path` from `offset` in chunks; returns the video resource.

        Memory stays at about one chunk. After every chunk, `on_progress(confirmed)` gets the
        offset the server confirmed (possibly less than was sent); persist it together with
        the session URI, which must have been persisted before the first byte. Transport
        errors, 5xx, 429 and rate limits are retried within the policy, each followed by a
        status query so the upload resumes from what the server really holds.
        """
        if chunk_size <= 0 or chunk_size % CHUNK_ALIGN:
            raise ValueError(f"chunk_size must be a positive multiple of {CHUNK_ALIGN}")
        pos = offset
        attempt, slept, stalls = 0, 0.0, 0
        with Path(path).open("rb") as source:
            while True:
                try:
                    if pos >= size:
                        result = self.query_offset(session_uri, size)
                    else:
                        result = self._send_chunk(session_uri, source, pos, size, chunk_size)
                except (RetryableError, httpx.TransportError) as exc:
                    if isinstance(exc, httpx.TransportError) and not isinstance(
                        exc, TRANSIENT_ERRORS
                    ):
                        raise
                    attempt += 1
                    retry_after = exc.retry_after if isinstance(exc, RetryableError) else None
                    pause = self._policy.next_delay(attempt, retry_after, slept)
                    if pause is None:
                        raise RetryableError(
                            f"youtube: upload stalled at byte {pos} of {size} ({exc}); "
                            "retries exhausted",
                            provider=PROVIDER,
                        ) from exc
                    self._sleep(pause)
                    slept += pause
                    result = self.query_offset(session_uri, size)
                if isinstance(result, dict):
                    on_progress(size)
                    return result
                if result >= size:
                    raise PermanentError(
                        "youtube: the session holds every byte but returned no video",
                        provider=PROVIDER,
                    )
                if result > pos:
                    attempt, slept, stalls = 0, 0.0, 0  # progress resets the retry budget
                else:
                    stalls += 1
                    if stalls > self._policy.max_attempts:
                        raise RetryableError(
                            f"youtube: upload makes no progress at byte {result} of {size}",
                            provider=PROVIDER,
                        )
                pos = result
                on_progress(pos)

    def _send_chunk(
        self, session_uri: str, source: BinaryIO, pos: int, size: int, chunk_size: int
    ) -> int | dict[str, Any]:
        end = min(pos + chunk_size, size)
        headers = {
            "Authorization": f"Bearer {self._auth.token()}",
            "Content-Length": str(end - pos),
            "Content-Range": f"bytes {pos}-{end - 1}/{size}",
            "Content-Type": "application/octet-stream",
        }
        # Stream the chunk from disk: httpx keeps each response (and its request) alive in a
        # reference cycle until the cyclic GC runs, so a bytes body would pile up chunks.
        response = self._http.put(
            session_uri,
            headers=headers,
            content=_read_range(source, pos, end, size),
            follow_redirects=False,
        )
        try:
            if response.status_code == 401:
                self._auth.invalidate()
                raise RetryableError("youtube: access token expired mid-upload", provider=PROVIDER)
            self._session_classifier(response)
            return self._session_result(response)
        finally:
            response.close()

    # -- other calls ------------------------------------------------------------------------

    def set_thumbnail(self, video_id: str, path: str | os.PathLike[str]) -> ThumbnailResult:
        """Upload a custom thumbnail; an unverified channel's 403 is a warning, not an error."""
        file = Path(path)
        data = file.read_bytes()
        if len(data) > THUMBNAIL_MAX_BYTES:
            raise UsageError(f"thumbnail {file.name} is larger than 2 MB")
        mime = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
        try:
            body = self._json(
                "thumbnails.set",
                "POST",
                self._upload + "/thumbnails/set",
                params={"videoId": video_id, "uploadType": "media"},
                headers={"Content-Type": mime},
                content=data,
            )
        except PermanentError as exc:
            if exc.status == 403:
                return ThumbnailResult(
                    ok=False,
                    warning="youtube refused the custom thumbnail (HTTP 403): custom thumbnails "
                    f"need a verified channel ({exc.message})",
                )
            raise
        return ThumbnailResult(ok=True, response=body)

    def add_to_playlist(self, playlist_id: str, video_id: str) -> dict[str, Any]:
        body = {
            "snippet": {
                "playlistId": playlist_id,
                "resourceId": {"kind": "youtube#video", "videoId": video_id},
            }
        }

        def landed() -> httpx.Response | None:
            if not self.playlist_has(playlist_id, video_id):
                return None
            return httpx.Response(200, json={"kind": "youtube#playlistItem", **body})

        return self._json(
            "playlistItems.insert",
            "POST",
            self._api + "/playlistItems",
            params={"part": "snippet"},
            json=body,
            landed=landed,
        )

    def playlist_has(self, playlist_id: str, video_id: str) -> bool:
        """Whether the playlist already holds the video (playlistItems.list filtered by
        videoId, 1 unit): asked before adding again when an earlier attempt's outcome is
        unknown."""
        data = self._json(
            "playlistItems.list",
            "GET",
            self._api + "/playlistItems",
            params={"part": "id", "playlistId": playlist_id, "videoId": video_id},
        )
        return bool(data.get("items"))

    def insert_caption(
        self,
        video_id: str,
        path: str | os.PathLike[str],
        *,
        language: str,
        name: str,
        is_draft: bool = False,
    ) -> dict[str, Any]:
        """captions.insert as a multipart/related upload: JSON snippet, then the SRT/VTT file."""
        metadata = {
            "snippet": {
                "videoId": video_id,
                "language": language,
                "name": name,
                "isDraft": is_draft,
            }
        }
        boundary = "leap-" + secrets.token_hex(12)
        body = b"".join(
            [
                f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n".encode(),
                json.dumps(metadata).encode(),
                f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode(),
                Path(path).read_bytes(),
                f"\r\n--{boundary}--\r\n".encode(),
            ]
        )
        return self._json(
            "captions.insert",
            "POST",
            self._upload + "/captions",
            params={"uploadType": "multipart", "part": "snippet"},
            headers={"Content-Type": f"multipart/related; boundary={boundary}"},
            content=body,
        )

    def update_status(self, video_id: str, status: Mapping[str, Any]) -> dict[str, Any]:
        """videos.update with part=status (50 units): the video's status becomes `status`.

        The update replaces every mutable field of the part, so `status` must be whole (a
        field left out reverts to YouTube's default), and sending the same body twice leaves
        the video as one send does: a retry after a lost answer is harmless."""
        return self._json(
            "videos.update",
            "PUT",
            self._api + "/videos",
            params={"part": "status"},
            json={"id": video_id, "status": dict(status)},
        )

    def my_channel(self) -> tuple[str, str] | None:
        """The (id, title) of the channel the token acts for, or None if the account has
        none (channels.list mine=true, 1 unit)."""
        data = self._json(
            "channels.list",
            "GET",
            self._api + "/channels",
            params={"part": "snippet", "mine": "true"},
        )
        items = _items(data)
        if not items or not isinstance(items[0], dict) or not items[0].get("id"):
            return None
        snippet = items[0].get("snippet")
        title = snippet.get("title") if isinstance(snippet, dict) else None
        return str(items[0]["id"]), str(title or items[0]["id"])

    def find_video_by_marker(self, marker: str, *, recent: int = 50) -> str | None:
        """The id of a recent upload whose description or tags hold `marker`, or None.

        Costs about 3 units (uploads playlist, not search.list at 100). Use it only when a
        session is gone, before starting a new one.
        """
        channels = self._json(
            "channels.list",
            "GET",
            self._api + "/channels",
            params={"part": "contentDetails", "mine": "true"},
        )
        items = _items(channels)
        try:
            uploads = items[0]["contentDetails"]["relatedPlaylists"]["uploads"]
        except (IndexError, KeyError, TypeError):
            return None
        if not isinstance(uploads, str) or not uploads:
            return None
        listing = self._json(
            "playlistItems.list",
            "GET",
            self._api + "/playlistItems",
            params={
                "part": "contentDetails",
                "playlistId": uploads,
                "maxResults": str(min(recent, 50)),
            },
        )
        ids = [
            item["contentDetails"]["videoId"]
            for item in _items(listing)
            if isinstance(item, dict)
            and isinstance(item.get("contentDetails"), dict)
            and isinstance(item["contentDetails"].get("videoId"), str)
        ]
        if not ids:
            return None
        videos = self._json(
            "videos.list",
            "GET",
            self._api + "/videos",
            params={"part": "snippet", "id": ",".join(ids)},
        )
        for video in _items(videos):
            snippet = video.get("snippet") if isinstance(video, dict) else None
            if not isinstance(snippet, dict):
                continue
            tags = snippet.get("tags")
            tagged = isinstance(tags, list) and marker in tags
            if marker in str(snippet.get("description") or "") or tagged:
                video_id = video.get("id")
                return video_id if isinstance(video_id, str) else None
        return None


def _items(data: Mapping[str, Any]) -> list[Any]:
    """A list response's `items`: empty unless it is the list the API documents."""
    items = data.get("items")
    return items if isinstance(items, list) else []
