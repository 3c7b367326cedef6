"""The fake Zoom's data: meetings and files shaped as Zoom lists them, and a deterministic
generator of realistic course recordings (Russian and English topics, blanks, odd uuids)."""

from __future__ import annotations

import base64
import calendar
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

MB = 1024 * 1024


def add_month(day: date) -> date:
    """The same day next month, clamped to its length (Zoom's "one month" range limit)."""
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeFile:
    key: str  # the download key; also the file id when the file has one
    file_type: str
    file_extension: str
    recording_type: str | None
    status: str | None
    file_size: int | None
    recording_start: datetime
    recording_end: datetime
    content_type: str = "video/mp4"
    has_id: bool = True
    # Fields sent as given, over the ones above: malformed or hostile values for tests.
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str | None:
        return self.key if self.has_id else None

    def to_json(self, meeting_uuid: str, origin: str) -> dict[str, Any]:
        # CC and TIMELINE files come without id, status, size, type and play_url.
        out: dict[str, Any] = {
            "meeting_id": meeting_uuid,
            "recording_start": _iso(self.recording_start),
            "recording_end": _iso(self.recording_end),
            "file_type": self.file_type,
            "file_extension": self.file_extension,
            "download_url": f"{origin}/rec/download/{self.key}",
        }
        if self.has_id:
            out["id"] = self.key
            out["play_url"] = f"{origin}/rec/play/{self.key}"
        if self.status is not None:
            out["status"] = self.status
        if self.file_size is not None:
            out["file_size"] = self.file_size
        if self.recording_type is not None:
            out["recording_type"] = self.recording_type
        return out | self.raw


@dataclass
class FakeMeeting:
    uuid: str
    id: int
    topic: str
    host_id: str
    start_time: datetime  # aware UTC
    duration: int  # minutes
    files: list[FakeFile] = field(default_factory=list)
    timezone: str = "Europe/Moscow"
    type: int = 8
    account_id: str = "zoom-account-id"
    # Fields sent as given, over the ones above: malformed or hostile values for tests.
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def total_size(self) -> int:
        return sum(f.file_size or 0 for f in self.files)

    def completed_files(self) -> list[FakeFile]:
        """The files a correct client keeps: completed, or status-less but downloadable."""
        return [f for f in self.files if f.status in (None, "completed")]

    def to_json(self, origin: str) -> dict[str, Any]:
        return {
            "uuid": self.uuid,
            "id": self.id,
            "account_id": self.account_id,
            "host_id": self.host_id,
            "topic": self.topic,
            "type": self.type,
            "start_time": _iso(self.start_time),
            "timezone": self.timezone,
            "duration": self.duration,
            "total_size": self.total_size,
            "recording_count": len(self.files),
            "share_url": f"{origin}/rec/share/{self.id}",
            "recording_play_passcode": "fakepass",
            "auto_delete": False,
            "recording_files": [f.to_json(self.uuid, origin) for f in self.files],
        } | self.raw


COURSES = (
    ("Анализ временных рядов", "ru"),
    ("Математическая статистика", "ru"),
    ("Глубинное обучение", "ru"),
    ("Алгоритмы и структуры данных", "ru"),
    ("Machine Learning", "en"),
    ("Natural Language Processing", "en"),
    ("Computer Vision", "en"),
)
KINDS = {"ru": ("лекция", "семинар"), "en": ("lecture", "seminar")}
AD_HOC = ("Zoom meeting", "Встреча Zoom", "Host's Personal Meeting Room", "Консультация")


@dataclass
class _Series:
    course: str
    lang: str
    kind: str
    meeting_id: int
    hour: int  # UTC
    minute: int
    count: int = 0


def _series(rng: random.Random) -> list[_Series]:
    hours = [6, 7, 9, 11, 13, 15, 16]
    out = [
        _Series(course, lang, kind, rng.randrange(8 * 10**10, 9 * 10**10), rng.choice(hours), 0)
        for course, lang in COURSES
        for kind in KINDS[lang]
    ]
    # A teacher's personal meeting id hosts several courses at different times of day.
    pmi = rng.randrange(10**9, 10**10)
    for index, hour in ((0, 6), (5, 13), (8, 16)):
        out[index].meeting_id, out[index].hour = pmi, hour
    return out


def _topic(s: _Series, rng: random.Random) -> str:
    s.count += 1
    if rng.random() < 0.1:
        return f"{s.course} {s.kind}"
    if s.lang == "ru":
        return f"{s.course} — {s.kind} {s.count}"
    return f"{s.course} {s.kind} {s.count}"


def _uuid(rng: random.Random, index: int) -> str:
    text = base64.b64encode(rng.randbytes(16)).decode()
    if index % 50 == 3:
        return "/" + text[1:]  # must be double-encoded in paths
    if index % 50 == 17:
        return text[:6] + "//" + text[8:]
    return text


def _key(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _files(
    rng: random.Random, start: datetime, minutes: int, *, tiny: bool, processing: bool
) -> list[FakeFile]:
    rec_start = start + timedelta(seconds=rng.randint(2, 40))
    rec_end = rec_start + timedelta(seconds=max(30, minutes * 60 - rng.randint(0, 50)))
    secs = (rec_end - rec_start).total_seconds()
    video_status = "processing" if processing else "completed"

    def mk(
        file_type: str,
        ext: str,
        rtype: str | None,
        size: int | None,
        ctype: str,
        *,
        status: str | None = "completed",
        has_id: bool = True,
    ) -> FakeFile:
        return FakeFile(
            _key(rng) if has_id else "nf-" + _key(rng),
            file_type,
            ext,
            rtype,
            status,
            size,
            rec_start,
            rec_end,
            ctype,
            has_id,
        )

    mp4 = int(secs * rng.uniform(60_000, 220_000))
    if tiny:
        mp4 = min(mp4, rng.randint(2 * MB, 20 * MB))
    view = "shared_screen_with_speaker_view" + ("(CC)" if rng.random() < 0.3 else "")
    files = [mk("MP4", "MP4", view, mp4, "video/mp4", status=video_status)]
    if not tiny and rng.random() < 0.2:
        gallery = int(secs * rng.uniform(50_000, 150_000))
        files.append(mk("MP4", "MP4", "gallery_view", gallery, "video/mp4", status=video_status))
    audio = int(secs * 16_000)
    files.append(mk("M4A", "M4A", "audio_only", min(audio, 3 * MB) if tiny else audio, "audio/mp4"))
    if rng.random() < 0.5:
        files.append(mk("TRANSCRIPT", "VTT", "audio_transcript", int(secs * 15), "text/vtt"))
    if rng.random() < 0.2:
        files.append(mk("CC", "VTT", None, None, "text/vtt", status=None, has_id=False))
    if rng.random() < 0.3:
        files.append(mk("CHAT", "TXT", "chat_file", rng.randint(200, 20_000), "text/plain"))
    if rng.random() < 0.1:
        files.append(
            mk("TIMELINE", "JSON", None, None, "application/json", status=None, has_id=False)
        )
    return files


def generate(
    n: int, start: datetime, end: datetime, seed: int, *, host_id: str
) -> list[FakeMeeting]:
    """n meetings starting in [start, end): mostly recurring course lectures and seminars;
    about 10% shorter than 20 minutes, about 6% smaller than 25 MB, about 3% still processing,
    every 50th uuid starting with "/" and another holding "//"."""
    if end <= start:
        raise ValueError("end must be after start")
    rng = random.Random(seed)
    series = _series(rng)
    span = (end - start).total_seconds()
    drafts: list[tuple[datetime, _Series | None, int]] = []
    for index in range(n):
        s = rng.choice(series) if rng.random() > 0.06 else None
        moment = start + timedelta(seconds=rng.uniform(0, span))
        if s is not None:
            slot = moment.replace(hour=s.hour, minute=s.minute, second=0, microsecond=0)
            slot += timedelta(seconds=rng.randint(0, 420))
            if start <= slot < end:
                moment = slot
        drafts.append((moment.astimezone(UTC).replace(microsecond=0), s, index))
    meetings: list[FakeMeeting] = []
    seen: set[str] = set()
    for moment, s, index in sorted(drafts, key=lambda d: d[0]):
        uuid = _uuid(rng, index)
        while uuid in seen:
            uuid = _uuid(rng, index)
        seen.add(uuid)
        blank = rng.random() < 0.1
        minutes = rng.randint(1, 19) if blank else rng.randint(55, 110)
        processing = rng.random() < 0.03 or (end - moment) < timedelta(hours=6)
        files = _files(rng, moment, minutes, tiny=rng.random() < 0.06, processing=processing)
        if s is None:
            topic, mid, mtype = rng.choice(AD_HOC), rng.randrange(7 * 10**10, 8 * 10**10), 1
        else:
            topic, mid, mtype = _topic(s, rng), s.meeting_id, 8
        meetings.append(FakeMeeting(uuid, mid, topic, host_id, moment, minutes, files, type=mtype))
    return meetings
