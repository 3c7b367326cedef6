"""Zoom's REST API: the cloud-recording listing (month windows, bounded paging,
de-duplication), single-meeting lookups, parsed tolerantly into frozen dataclasses (a
meeting too malformed to keep is skipped with its reason), and moving one meeting's
recordings to Zoom's trash. Auth lives in zoom_auth."""

from __future__ import annotations

import calendar
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import httpx

from leap.providers.http import (
    AccessTokenRejected,
    CredentialRejected,
    PermanentError,
    ResourceNotFound,
    RetryableError,
    RetryPolicy,
    Sleep,
    classify_response,
    json_body,
    send_with_retry,
)
from leap.providers.zoom_auth import (
    PROVIDER,
    REAUTH_HINT,
    CachedToken,
    Clock,
    OAuthTokens,
    S2SAuth,
    TokenCache,
    UserOAuth,
    ZoomAuth,
    exchange_authorization_code,
    utcnow,
)

__all__ = [
    "CachedToken",
    "MalformedMeeting",
    "OAuthTokens",
    "S2SAuth",
    "TokenCache",
    "TrashAnswer",
    "UserOAuth",
    "ZoomAuth",
    "ZoomClient",
    "ZoomFile",
    "ZoomMeeting",
    "ZoomRecordingGone",
    "ZoomScopeMissing",
    "ZoomUserNotFound",
    "exchange_authorization_code",
    "month_windows",
    "parse_meeting",
    "parse_meetings",
]

log = logging.getLogger(__name__)

PAGE_SIZE_MAX = 300
# Pages one month window may take: 300 meetings a page makes this 150,000 meetings a month,
# far past any real account, while a listing that hands out fresh page tokens forever stops.
MAX_PAGES_PER_WINDOW = 500
# Beyond these a value is garbage, not a recording: a byte count past 32 TiB or a meeting
# longer than a week (and they keep sums far inside the database's 64-bit integers).
MAX_FILE_BYTES = 2**45
MAX_DURATION_MIN = 7 * 24 * 60


class ZoomRecordingGone(ResourceNotFound):
    """404 code 3301: the meeting's recordings no longer exist on Zoom (deleted or trashed)."""


class ZoomUserNotFound(ResourceNotFound):
    """404 code 1001: no such Zoom user on this account."""


class ZoomScopeMissing(PermanentError):
    """The app's token lacks a scope for this call (400 code 4711, or a 403 naming scopes):
    an app granted only the recordings scope is a common, valid set-up."""


class MalformedMeeting(ValueError):
    """A meeting too malformed to keep: `label` names it (uuid, else id), `reason` says why."""

    def __init__(self, label: str, reason: str) -> None:
        super().__init__(f"meeting {label}: {reason}")
        self.label = label
        self.reason = reason


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


TrashOutcome = Literal["trashed", "gone", "refused", "error"]


@dataclass(frozen=True)
class TrashAnswer:
    """What Zoom made of one "move to trash" call (docs/platforms.md, "Zoom: deleting
    recordings"): `trashed` (204), `gone` (404 code 3301: nothing left to trash, which is as
    good as done), `refused` (a 4xx Zoom will repeat: scope, permission, bad request) or
    `error` (429, 5xx or the network, still failing once the retries ran out; an answer
    nobody documented). `status` is the HTTP status, None when no answer came."""

    outcome: TrashOutcome
    status: int | None
    detail: str


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
        try:
            return int(value.strip())
        except ValueError:  # "--5", or digits int() does not read (superscripts: "²")
            return None
    return None


def _bounded(value: Any, limit: int, what: str) -> int | None:
    """An integer in [0, limit], or None when absent; ValueError for anything else."""
    if value is None:
        return None
    number = _int(value)
    if number is None or not 0 <= number <= limit:
        raise ValueError(f"{what} {_shown(value)} is not a plausible value")
    return number


def _shown(value: Any) -> str:
    return repr(value) if len(repr(value)) <= 40 else repr(value)[:39] + "…"


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # year 9999 with an offset overflows into 10000
        return None


def normalize_recording_type(value: str | None) -> str | None:
    # Zoom reports the same view with and without "(CC)" depending on the caption setting.
    if value is None:
        return None
    text = value.strip()
    if text.upper().endswith("(CC)"):
        text = text[:-4].rstrip()
    return text or None


def parse_file(raw: Any) -> ZoomFile | None:
    """A recording file, or None when it is not a usable, finished file; ValueError when its
    file_size is present but not a plausible byte count."""
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
        file_size=_bounded(raw.get("file_size"), MAX_FILE_BYTES, "file_size"),
        download_url=download_url,
        recording_start=_time(raw.get("recording_start")),
        recording_end=_time(raw.get("recording_end")),
    )


def parse_meeting(raw: Any) -> ZoomMeeting:
    """One meeting of a listing or lookup; MalformedMeeting (a ValueError) when its uuid or
    start_time is unusable, or a size or duration is present but implausible."""
    if not isinstance(raw, dict):
        raise MalformedMeeting("(not an object)", "the entry is not an object")
    uuid = raw.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        raise MalformedMeeting(f"id {_shown(raw.get('id'))}", "no uuid")
    start_time = _time(raw.get("start_time"))
    if start_time is None:
        raise MalformedMeeting(uuid, f"no usable start_time ({_shown(raw.get('start_time'))})")
    files_raw = raw.get("recording_files")
    try:
        parsed = [parse_file(r) for r in (files_raw if isinstance(files_raw, list) else [])]
        total = _bounded(raw.get("total_size"), MAX_FILE_BYTES, "total_size")
        duration = _bounded(raw.get("duration"), MAX_DURATION_MIN, "duration")
    except ValueError as exc:
        raise MalformedMeeting(uuid, str(exc)) from exc
    files = tuple(f for f in parsed if f)
    return ZoomMeeting(
        uuid=uuid,
        meeting_id=_str(raw.get("id")) or "",
        topic=_str(raw.get("topic")) or "",
        host_id=_str(raw.get("host_id")),
        host_email=_str(raw.get("host_email")),
        start_time=start_time,
        duration_min=duration or 0,
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
        except MalformedMeeting as exc:
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
        max_pages: int = MAX_PAGES_PER_WINDOW,
    ) -> None:
        self._http = http
        self._base = api_base_url.rstrip("/")
        self._auth = auth
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._max_pages = max_pages
        self.request_count = 0
        self.warnings: list[str] = []
        # Meetings of the listing too malformed to keep: (label, reason), each once.
        self.skipped: list[tuple[str, str]] = []

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

    def trash_meeting_recordings(self, meeting_uuid: str) -> TrashAnswer:
        """Move every recording file of one meeting instance to Zoom's trash (recoverable
        there for 30 days), never deleting for good. Raises only CredentialRejected (the
        credential itself is dead); everything else is an answer."""
        # The UUID, never the numeric id (that means the latest instance of a recurring
        # meeting), double-encoded like every UUID in a path.
        segment = quote(quote(meeting_uuid, safe=""), safe="")
        try:
            response = self._request(
                "DELETE", f"/meetings/{segment}/recordings", {"action": "trash"}
            )
        except ZoomRecordingGone as exc:
            return TrashAnswer("gone", 404, exc.message)
        except RetryableError as exc:
            return TrashAnswer("error", exc.status, exc.message)
        except PermanentError as exc:
            # A 4xx is Zoom's considered answer; without a status the request never got one.
            if exc.status is not None and 400 <= exc.status < 500:
                return TrashAnswer("refused", exc.status, exc.message)
            return TrashAnswer("error", exc.status, exc.message)
        status = response.status_code
        response.close()
        if status == 204:
            return TrashAnswer("trashed", 204, "moved to Zoom's trash")
        # Not the documented answer: whether anything moved is unknown, so it is not counted
        # as done; the next try learns the truth (204, or 3301 once it is in the trash).
        return TrashAnswer("error", status, f"zoom: unexpected HTTP {status} to the trash call")

    def iter_recording_pages(
        self, user_id: str, start: date, end: date, *, page_size: int = PAGE_SIZE_MAX
    ) -> Iterator[list[ZoomMeeting]]:
        """Each page's new meetings, window by window; a meeting seen before is not repeated."""
        path = f"/users/{quote(user_id, safe='')}/recordings"
        seen: set[str] = set()
        skipped: set[str] = set()
        for first, last in month_windows(start, end):
            base: dict[str, str | int] = {
                "from": first.isoformat(),
                "to": last.isoformat(),
                "page_size": page_size,
            }
            page_token = ""
            restarted = False
            used_tokens: set[str] = set()
            pages = 0
            while True:
                pages += 1
                if pages > self._max_pages:
                    raise PermanentError(
                        f"zoom: the recordings listing of {first}..{last} still offered more "
                        f"pages after {self._max_pages}; stopped (Zoom keeps issuing new page "
                        "tokens); the pages before were kept",
                        provider=PROVIDER,
                        status=200,
                    )
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
                    pages = 0
                    continue
                if not isinstance(data, dict):
                    raise PermanentError(
                        "zoom: malformed recordings page", provider=PROVIDER, status=200
                    )
                meetings = self._parse_page(data.get("meetings"), skipped)
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

    def _parse_page(self, raws: Any, skipped: set[str]) -> list[ZoomMeeting]:
        meetings: list[ZoomMeeting] = []
        for raw in raws if isinstance(raws, list) else []:
            try:
                meetings.append(parse_meeting(raw))
            except MalformedMeeting as exc:
                if exc.label in skipped:  # listed again by the next, overlapping window
                    continue
                skipped.add(exc.label)
                log.warning("skipped a Zoom meeting: %s", exc)
                self.warnings.append(f"skipped a Zoom meeting: {exc}")
                self.skipped.append((exc.label, exc.reason))
        return meetings

    def _classify(self, response: httpx.Response) -> None:
        if response.status_code in (400, 403):
            data = _maybe_json(response)
            code = _int(data.get("code")) if isinstance(data, dict) else None
            message = _str(data.get("message")) if isinstance(data, dict) else None
            if code == 4711 or "scope" in (message or "").lower():
                raise ZoomScopeMissing(
                    f"zoom: the app lacks a scope for {response.request.url.path} "
                    f"(HTTP {response.status_code}, code {code}: {message})",
                    provider=PROVIDER,
                    status=response.status_code,
                )
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
        return json_body(self._request("GET", path, params), PROVIDER)

    def _request(
        self, method: str, path: str, params: dict[str, str | int] | None = None
    ) -> httpx.Response:
        url = self._base + path

        def send() -> httpx.Response:
            token = self._auth.token()
            self.request_count += 1
            return self._http.request(
                method, url, params=params, headers={"Authorization": f"Bearer {token}"}
            )

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
        return response

    def _send(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        return send_with_retry(
            send, self._classify, self._policy, provider=PROVIDER, sleep=self._sleep
        )


def _maybe_json(response: httpx.Response) -> Any:
    try:
        return json_body(response, PROVIDER)
    except PermanentError:
        return None
