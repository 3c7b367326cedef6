"""Zoom's REST API: the cloud-recording listing (month windows, paging, de-duplication) and
single-meeting lookups, parsed tolerantly into frozen dataclasses. Auth lives in zoom_auth."""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from leap.providers.http import (
    AccessTokenRejected,
    CredentialRejected,
    PermanentError,
    ResourceNotFound,
    RetryPolicy,
    Sleep,
    classify_response,
    json_body,
    send_with_retry,
)
from leap.providers.zoom_auth import (
    PROVIDER,
    REAUTH_HINT,
    Clock,
    OAuthTokens,
    S2SAuth,
    UserOAuth,
    ZoomAuth,
    exchange_authorization_code,
    utcnow,
)

__all__ = [
    "OAuthTokens",
    "S2SAuth",
    "UserOAuth",
    "ZoomAuth",
    "ZoomClient",
    "ZoomFile",
    "ZoomMeeting",
    "ZoomRecordingGone",
    "ZoomUserNotFound",
    "exchange_authorization_code",
    "month_windows",
    "parse_meeting",
    "parse_meetings",
]

log = logging.getLogger(__name__)

PAGE_SIZE_MAX = 300


class ZoomRecordingGone(ResourceNotFound):
    """404 code 3301: the meeting's recordings no longer exist on Zoom (deleted or trashed)."""


class ZoomUserNotFound(ResourceNotFound):
    """404 code 1001: no such Zoom user on this account."""


# ---------------------------------------------------------------------------------------------
# Models and tolerant parsing


@dataclass(frozen=True)
class ZoomFile:
    id: str | None
    file_type: str
    file_extension: str | None
    recording_type: str | None
    status: str | None
    file_size: int | None
    download_url: str | None
    recording_start: datetime | None
    recording_end: datetime | None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("recording_start", "recording_end"):
            out[key] = _iso(out[key])
        return out


@dataclass(frozen=True)
class ZoomMeeting:
    uuid: str
    meeting_id: str
    topic: str
    host_id: str | None
    host_email: str | None
    start_time: datetime
    duration_min: int
    total_size: int
    timezone: str | None
    files: tuple[ZoomFile, ...]
    meeting_type: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "files"}
        out["start_time"] = _iso(self.start_time)
        out["files"] = [f.to_dict() for f in self.files]
        return out


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def normalize_recording_type(value: str | None) -> str | None:
    # Zoom reports the same view with and without "(CC)" depending on the caption setting.
    if value is None:
        return None
    text = value.strip()
    if text.upper().endswith("(CC)"):
        text = text[:-4].rstrip()
    return text or None


def parse_file(raw: Any) -> ZoomFile | None:
    """A recording file, or None when it is not a usable, finished file."""
    if not isinstance(raw, dict):
        return None
    file_type = _str(raw.get("file_type"))
    status = _str(raw.get("status"))
    download_url = _str(raw.get("download_url"))
    if file_type is None:
        return None
    # CC/TIMELINE files carry no status at all; they are usable when they can be downloaded.
    if status is None and download_url is None:
        return None
    if status is not None and status.lower() != "completed":
        return None
    return ZoomFile(
        id=_str(raw.get("id")),
        file_type=file_type.upper(),
        file_extension=_str(raw.get("file_extension")),
        recording_type=normalize_recording_type(_str(raw.get("recording_type"))),
        status=status,
        file_size=_int(raw.get("file_size")),
        download_url=download_url,
        recording_start=_time(raw.get("recording_start")),
        recording_end=_time(raw.get("recording_end")),
    )


def parse_meeting(raw: Any) -> ZoomMeeting:
    """One meeting of a listing or lookup; ValueError when uuid or start_time is unusable."""
    if not isinstance(raw, dict):
        raise ValueError("meeting entry is not an object")
    uuid = raw.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise ValueError(f"meeting {raw.get('id')!r} has no uuid")
    start_time = _time(raw.get("start_time"))
    if start_time is None:
        raise ValueError(f"meeting {uuid} has no usable start_time")
    files_raw = raw.get("recording_files")
    files = tuple(
        f for f in (parse_file(r) for r in (files_raw if isinstance(files_raw, list) else [])) if f
    )
    total = _int(raw.get("total_size"))
    return ZoomMeeting(
        uuid=uuid,
        meeting_id=_str(raw.get("id")) or "",
        topic=_str(raw.get("topic")) or "",
        host_id=_str(raw.get("host_id")),
        host_email=_str(raw.get("host_email")),
        start_time=start_time,
        duration_min=_int(raw.get("duration")) or 0,
        total_size=total if total is not None else sum(f.file_size or 0 for f in files),
        timezone=_str(raw.get("timezone")),
        files=files,
        meeting_type=_int(raw.get("type")),
    )


def parse_meetings(raws: Any) -> tuple[list[ZoomMeeting], list[str]]:
    """Every parseable meeting of a page, plus one warning per entry that was skipped."""
    meetings: list[ZoomMeeting] = []
    warnings: list[str] = []
    for raw in raws if isinstance(raws, list) else []:
        try:
            meetings.append(parse_meeting(raw))
        except ValueError as exc:
            warnings.append(f"skipped a Zoom meeting: {exc}")
    return meetings, warnings


# ---------------------------------------------------------------------------------------------
# Date windows


def _add_month(day: date) -> date:
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def month_windows(start: date, end: date) -> list[tuple[date, date]]:
    """Contiguous inclusive windows covering [start, end], each at most 30 days long and never
    past the same day of the next month (Zoom's "one month" is undocumented; satisfy both)."""
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    windows: list[tuple[date, date]] = []
    cur = start
    while cur <= end:
        last = min(cur + timedelta(days=29), _add_month(cur), end)
        windows.append((cur, last))
        cur = last + timedelta(days=1)
    return windows


# ---------------------------------------------------------------------------------------------
# The API client


class ZoomClient:
    """Zoom REST calls with retries, one token refresh on 401, and a request counter."""

    def __init__(
        self,
        http: httpx.Client,
        api_base_url: str,
        auth: ZoomAuth,
        policy: RetryPolicy | None = None,
        *,
        sleep: Sleep = time.sleep,
        clock: Clock = time.time,
    ) -> None:
        self._http = http
        self._base = api_base_url.rstrip("/")
        self._auth = auth
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self.request_count = 0
        self.warnings: list[str] = []

    @property
    def auth(self) -> ZoomAuth:
        return self._auth

    def get_user(self, user_id: str) -> dict[str, Any]:
        data = self._get_json(f"/users/{quote(user_id, safe='')}")
        if not isinstance(data, dict):
            raise PermanentError("zoom: malformed user response", provider=PROVIDER, status=200)
        return data

    def get_meeting_recordings(self, meeting_uuid: str) -> ZoomMeeting:
        # Always double-encode: required for uuids starting with "/" or holding "//", and
        # accepted by Zoom for every other uuid.
        segment = quote(quote(meeting_uuid, safe=""), safe="")
        data = self._get_json(f"/meetings/{segment}/recordings")
        try:
            return parse_meeting(data)
        except ValueError as exc:
            raise PermanentError(
                f"zoom: malformed recordings of meeting {meeting_uuid}: {exc}",
                provider=PROVIDER,
                status=200,
            ) from exc

    def iter_recording_pages(
        self, user_id: str, start: date, end: date, *, page_size: int = PAGE_SIZE_MAX
    ) -> Iterator[list[ZoomMeeting]]:
        """Each page's new meetings, window by window; a meeting seen before is not repeated."""
        path = f"/users/{quote(user_id, safe='')}/recordings"
        seen: set[str] = set()
        for first, last in month_windows(start, end):
            base: dict[str, str | int] = {
                "from": first.isoformat(),
                "to": last.isoformat(),
                "page_size": page_size,
            }
            page_token = ""
            restarted = False
            used_tokens: set[str] = set()
            while True:
                params: dict[str, str | int] = dict(base)
                if page_token:
                    params["next_page_token"] = page_token
                try:
                    data = self._get_json(path, params)
                except PermanentError as exc:
                    # Page tokens expire after 15 minutes, which a long Retry-After can
                    # outlast: restart the window once; de-duplication absorbs the repeats.
                    if not page_token or restarted or exc.status not in (400, 410):
                        raise
                    log.warning("zoom: page token refused (%s); restarting %s", exc, first)
                    page_token, restarted = "", True
                    used_tokens.clear()
                    continue
                if not isinstance(data, dict):
                    raise PermanentError(
                        "zoom: malformed recordings page", provider=PROVIDER, status=200
                    )
                meetings, warnings = parse_meetings(data.get("meetings"))
                for warning in warnings:
                    log.warning("%s", warning)
                self.warnings.extend(warnings)
                fresh = [m for m in meetings if m.uuid not in seen]
                seen.update(m.uuid for m in fresh)
                if fresh:
                    yield fresh
                next_token = data.get("next_page_token")
                if not isinstance(next_token, str) or not next_token:
                    break
                if next_token in used_tokens:
                    raise PermanentError(
                        "zoom: the recordings listing repeats a page token",
                        provider=PROVIDER,
                        status=200,
                    )
                used_tokens.add(next_token)
                page_token = next_token

    def _classify(self, response: httpx.Response) -> None:
        if response.status_code == 404:
            data = _maybe_json(response)
            code = _int(data.get("code")) if isinstance(data, dict) else None
            message = _str(data.get("message")) if isinstance(data, dict) else None
            if code == 3301:
                raise ZoomRecordingGone(
                    f"zoom: recording does not exist ({message or 'code 3301'})",
                    provider=PROVIDER,
                    status=404,
                )
            if code == 1001:
                raise ZoomUserNotFound(
                    f"zoom: user does not exist ({message or 'code 1001'}); check the source's "
                    "Zoom user id or email",
                    provider=PROVIDER,
                    status=404,
                )
        classify_response(response, PROVIDER, utcnow(self._clock))

    def _get_json(self, path: str, params: dict[str, str | int] | None = None) -> Any:
        url = self._base + path

        def send() -> httpx.Response:
            token = self._auth.token()
            self.request_count += 1
            return self._http.get(url, params=params, headers={"Authorization": f"Bearer {token}"})

        try:
            response = self._send(send)
        except AccessTokenRejected:
            # Code 124: expired or revoked. One fresh token; a second refusal means the
            # credential itself is no longer accepted.
            self._auth.invalidate()
            try:
                response = self._send(send)
            except AccessTokenRejected as exc:
                raise CredentialRejected(
                    f"zoom: a freshly issued access token was refused ({exc.message}); "
                    + REAUTH_HINT,
                    provider=PROVIDER,
                    status=401,
                ) from exc
        return json_body(response, PROVIDER)

    def _send(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        return send_with_retry(
            send, self._classify, self._policy, provider=PROVIDER, sleep=self._sleep
        )


def _maybe_json(response: httpx.Response) -> Any:
    try:
        return json_body(response, PROVIDER)
    except PermanentError:
        return None
