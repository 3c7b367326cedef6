"""Automation schedules (docs/automation.md, "Schedules"): daily at HH:MM, every N hours,
weekdays at HH:MM, or a five-field cron expression, all in the owner's timezone.

Fire times are computed on the wall clock, then placed on the timeline: APScheduler's
CronTrigger walks wall-clock times (as if they were UTC, where no clock ever jumps), and each
wall-clock time becomes one instant with Python's fold=0 rule. So a time that happens twice
when the clocks go back fires at its first occurrence only, and a time that does not exist
when they go forward fires when the clock has moved past it (02:30 -> 03:30). Each wall-clock
time fires once; two wall-clock times that land on one instant (spring, hourly jobs) fire
once, because the caller claims instants."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from leap.errors import UsageError

KINDS = ("daily", "hours", "weekdays", "cron")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")  # cron: 0 and 7 = Sunday
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_KEYS = {
    "daily": {"kind", "at"},
    "hours": {"kind", "every", "minute"},
    "weekdays": {"kind", "days", "at"},
    "cron": {"kind", "expr"},
}


@dataclass(frozen=True)
class Schedule:
    kind: str
    at: str | None = None  # HH:MM (daily, weekdays)
    every: int | None = None  # hours
    minute: int = 0  # minute past the hour (hours)
    days: tuple[str, ...] = ()  # weekdays
    expr: str | None = None  # cron

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind in ("daily", "weekdays"):
            out["at"] = self.at
        if self.kind == "weekdays":
            out["days"] = list(self.days)
        if self.kind == "hours":
            out["every"] = self.every
            out["minute"] = self.minute
        if self.kind == "cron":
            out["expr"] = self.expr
        return out

    def describe(self) -> str:
        if self.kind == "daily":
            return f"daily at {self.at}"
        if self.kind == "hours":
            return f"every {self.every} h at :{self.minute:02d}"
        if self.kind == "weekdays":
            return f"{','.join(self.days)} at {self.at}"
        return f"cron {self.expr}"


def parse_schedule(data: object, *, key: str = "schedule") -> Schedule:
    """A schedule from its TOML table; UsageError naming the key for anything wrong."""
    if not isinstance(data, Mapping):
        raise UsageError(f"{key}: expected a table with kind = {' | '.join(KINDS)}")
    kind = data.get("kind")
    if kind not in KINDS:
        raise UsageError(f"{key}.kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    unknown = sorted(set(data) - _KEYS[kind])
    if unknown:
        raise UsageError(f"{key}.{unknown[0]}: not a key of a {kind} schedule")
    if kind == "daily":
        return Schedule(kind, at=_time(data.get("at"), f"{key}.at"))
    if kind == "weekdays":
        days = data.get("days")
        if not isinstance(days, list) or not days:
            raise UsageError(f'{key}.days: expected a list such as ["mon", "thu"]')
        names = []
        for d in days:
            if not isinstance(d, str) or d.lower()[:3] not in DAYS:
                raise UsageError(f"{key}.days: {d!r} is not a weekday (mon..sun)")
            names.append(d.lower()[:3])
        ordered = tuple(sorted(set(names), key=DAYS.index))
        return Schedule(kind, at=_time(data.get("at"), f"{key}.at"), days=ordered)
    if kind == "hours":
        every = data.get("every")
        if isinstance(every, bool) or not isinstance(every, int) or not 1 <= every <= 24:
            raise UsageError(f"{key}.every: expected whole hours from 1 to 24, got {every!r}")
        minute = data.get("minute", 0)
        if isinstance(minute, bool) or not isinstance(minute, int) or not 0 <= minute <= 59:
            raise UsageError(f"{key}.minute: expected 0 to 59, got {minute!r}")
        return Schedule(kind, every=every, minute=minute)
    expr = data.get("expr")
    if not isinstance(expr, str) or not expr.strip():
        raise UsageError(f'{key}.expr: expected a cron expression such as "30 2 * * 1-5"')
    expr = " ".join(expr.split())
    fields = expr.split(" ")
    if len(fields) != 5:
        raise UsageError(
            f"{key}.expr: {expr!r} has {len(fields)} fields; LEAP takes the classic five "
            "(minute hour day-of-month month day-of-week), no seconds"
        )
    schedule = Schedule(kind, expr=expr)
    try:
        _trigger(schedule)
    except ValueError as exc:
        raise UsageError(f"{key}.expr: {expr!r}: {exc}") from None
    return schedule


def _time(value: object, key: str) -> str:
    if not isinstance(value, str) or not _TIME_RE.fullmatch(value.strip()):
        raise UsageError(f"{key}: expected a time HH:MM (24 h), got {value!r}")
    return value.strip()


def _cron_days(field: str) -> str:
    """Cron's day-of-week field in APScheduler's terms: APScheduler 3 counts 0 as Monday,
    cron as Sunday, so numbers become explicit day names (ranges and steps expanded)."""
    if field == "*" or not re.search(r"\d", field):
        return field
    names: list[str] = []
    for item in field.split(","):
        m = re.fullmatch(r"(\*|\d)(?:-(\d))?(?:/(\d+))?", item)
        if not m:
            raise ValueError(f"day of week {item!r}: mix of numbers and names")
        start = 0 if m[1] == "*" else int(m[1])
        end = 6 if m[1] == "*" else int(m[2]) if m[2] else start
        step = int(m[3]) if m[3] else 1
        if start > 7 or end > 7 or start > end or step == 0:
            raise ValueError(f"day of week {item!r} is out of range (0-7, Sunday is 0 or 7)")
        names.extend(_CRON_DAYS[n] for n in range(start, end + 1, step))
    return ",".join(sorted(set(names), key=DAYS.index))


def _trigger(schedule: Schedule) -> CronTrigger:
    """The schedule on the wall clock (UTC here stands for "no DST")."""
    if schedule.kind in ("daily", "weekdays"):
        assert schedule.at is not None
        hour, minute = (int(x) for x in schedule.at.split(":"))
        dow = ",".join(schedule.days) if schedule.kind == "weekdays" else None
        return CronTrigger(day_of_week=dow, hour=hour, minute=minute, timezone=UTC)
    if schedule.kind == "hours":
        return CronTrigger(hour=f"*/{schedule.every}", minute=schedule.minute, timezone=UTC)
    assert schedule.expr is not None
    fields = schedule.expr.split(" ")
    return CronTrigger(
        minute=fields[0],
        hour=fields[1],
        day=fields[2],
        month=fields[3],
        day_of_week=_cron_days(fields[4]),
        timezone=UTC,
    )


def place(wall: datetime, tz: ZoneInfo) -> datetime:
    """A wall-clock time (naive) as a UTC instant: the first of two (clocks back), or the
    moment the clock passes it (clocks forward)."""
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def fire_times(
    schedule: Schedule, tz: ZoneInfo, after: datetime, until: datetime, *, limit: int = 10_000
) -> Iterator[datetime]:
    """The instants (UTC) at which `schedule` fires in (after, until], in order, each once."""
    trigger = _trigger(schedule)
    # Start a day early on the wall clock: around a DST change a wall-clock time before
    # after's wall time may still be placed after `after`.
    wall = after.astimezone(tz).replace(tzinfo=None) - timedelta(days=1)
    cursor = wall.replace(tzinfo=UTC)
    last: datetime | None = None
    for _ in range(limit):
        nxt = trigger.get_next_fire_time(None, cursor)
        if nxt is None:
            return
        instant = place(nxt.replace(tzinfo=None), tz)
        cursor = nxt + timedelta(seconds=1)
        if instant <= after or (last is not None and instant <= last):
            continue
        if instant > until:
            return
        last = instant
        yield instant


def shortest_gap(schedule: Schedule) -> timedelta:
    """The shortest wall-clock gap between two firings over a year (the min-interval check)."""
    start = datetime(2027, 1, 1, tzinfo=UTC)
    times = list(fire_times(schedule, ZoneInfo("UTC"), start, start + timedelta(days=366)))
    if len(times) < 2:
        return timedelta(days=366)
    return min(b - a for a, b in pairwise(times))
