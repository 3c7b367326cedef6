"""Usage reports and admin statistics, the pure part (docs/usage.md): which period `--period`
names, how use is grouped (`--by`), the effective limits of a user, percent of a limit and
the near-limit decision, the day and month buckets the reports group by, and the short
reason a failed stage is counted under. No database, no clock: `now` is always given."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leap.errors import UsageError
from leap.specs.quota import COUNTS, LIMITS, period

# How `leap usage` groups the period's events.
BY = ("metric", "template", "day")
# `--period` words besides YYYY-MM.
CURRENT, PREVIOUS = "current", "previous"
# A user is "near" a period limit from this percent of it (`leap admin stats overview`).
NEAR_DEFAULT = 80.0
# `--near` beyond this is a typo (a limit of 0 used at all counts as 100 %: see percent()).
NEAR_MAX = 1_000_000.0
# The months `leap admin stats overview` shows, the current one included.
MONTHS = 6
# Words of a stage's error message that name its reason ("HTTP 404 from Zoom" ...).
REASON_WORDS = 4
REASON_CHARS = 60
REASON_SOURCE = 2 * REASON_CHARS
# A recording without a template (or an event without a recording), in `--by template`.
NO_TEMPLATE = "(none)"

_MONTH = re.compile(r"(\d{4})-(\d{2})")


def parse_by(text: str) -> str:
    value = text.strip().lower()
    if value not in BY:
        raise UsageError(f"--by '{text[:40]}': one of {', '.join(BY)}")
    return value


def zone(name: str) -> tzinfo:
    """The user's timezone; UTC for a name this machine does not know (it was checked when
    set, but a system's tz database can lose a zone)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def parse_period(
    text: str | None, anchor: datetime, now: datetime, tz: tzinfo
) -> tuple[datetime, datetime]:
    """The period `--period` names, as aware datetimes in `tz`: None or `current` is the one
    holding `now`, `previous` the one before it, `YYYY-MM` the one that starts in that month
    (specs/quota.period: anchored on the user's start day)."""
    word = CURRENT if text is None else text.strip().lower()
    current = period(anchor, now, tz)
    if word == CURRENT:
        return current
    if word == PREVIOUS:
        return period(anchor, current[0] - timedelta(microseconds=1), tz)
    m = _MONTH.fullmatch(word)
    if m is None:
        raise UsageError(f"--period '{word[:40]}': expected YYYY-MM, current or previous")
    year, month = int(m.group(1)), int(m.group(2))
    if not (1 <= month <= 12 and 1970 <= year <= 9998):
        raise UsageError(f"--period '{word}': no such month (YYYY-MM, 1970-01 to 9998-12)")
    day = anchor.astimezone(tz).day
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = (nxt - timedelta(days=1)).day
    start = datetime(year, month, min(day, last), tzinfo=tz)
    return period(anchor, start, tz)


def user_period(created_at: datetime, timezone: str, now: datetime) -> tuple[datetime, datetime]:
    """A user's current quota period in UTC: the bounds the admin reports compare events to."""
    start, end = period(created_at, now, zone(timezone))
    return start.astimezone(UTC), end.astimezone(UTC)


def effective_limits(
    plan_name: str | None,
    plan: Mapping[str, Any] | None,
    overrides: Iterable[tuple[str, float | None, datetime | None]],
    now: datetime,
) -> dict[str, tuple[float | int | None, str]]:
    """Each limit of a user and where it comes from: the plan's ("plan NAME"), with custom
    overrides (key, value, until) on top while `until` is in the future or None ("custom",
    "custom until …"), as services/quotas.limits reads them."""
    origin = f"plan {plan_name}" if plan_name is not None else "no plan"
    out: dict[str, tuple[float | int | None, str]] = {
        k: ((plan or {}).get(k), origin) for k in LIMITS
    }
    for key, value, until in overrides:
        if key in LIMITS and (until is None or until > now):
            shown = value if value is None or not LIMITS[key].whole else int(value)
            when = until.astimezone(UTC).isoformat().replace("+00:00", "Z") if until else None
            out[key] = (shown, "custom" if when is None else f"custom until {when}")
    return out


def period_use(sums: Mapping[str, float]) -> dict[str, float]:
    """What each period limit counts, from the period's sum per metered kind (COUNTS)."""
    return {key: sum(sums.get(kind, 0.0) for kind in kinds) for key, kinds in COUNTS.items()}


def counts_toward(kind: str) -> list[str]:
    """The period limits a metered kind counts toward (none: it is free, or only shown)."""
    return [key for key, kinds in COUNTS.items() if kind in kinds]


def percent(used: float, limit: float | None) -> float | None:
    """`used` as a percent of `limit`; None for unlimited. A limit of 0 is 0 % while nothing
    was used and 100 % once anything was (every use of it is over)."""
    if limit is None:
        return None
    if limit <= 0:
        return 100.0 if used > 0 else 0.0
    return 100.0 * used / limit


def check_near(value: float) -> float:
    if not (0 <= value <= NEAR_MAX):  # also refuses nan
        raise UsageError(f"--near {value:g}: a percent from 0 to {NEAR_MAX:.0f}")
    return value


def is_near(pct: float | None, threshold: float) -> bool:
    """Whether a limit used at `pct` percent is at or past `threshold` (never: unlimited)."""
    return pct is not None and pct >= threshold


def day_edges(start: datetime, end: datetime, tz: tzinfo) -> list[tuple[date, datetime]]:
    """Each local date of [start, end) in `tz` with the UTC instant it begins (the first one:
    `start` itself), in order: the buckets of `leap usage --by day`, right across a DST
    change (a local day of 23 or 25 hours)."""
    out: list[tuple[date, datetime]] = []
    day = start.astimezone(tz).date()
    while True:
        begin = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
        if begin >= end.astimezone(UTC):
            return out
        out.append((day, max(begin, start.astimezone(UTC))))
        day += timedelta(days=1)


def month_edges(now: datetime, count: int = MONTHS) -> list[tuple[str, datetime, datetime]]:
    """The last `count` calendar months in UTC, the current one last: (YYYY-MM, start, end)."""
    local = now.astimezone(UTC)
    year, month = local.year, local.month
    out: list[tuple[str, datetime, datetime]] = []
    for _ in range(count):
        start = datetime(year, month, 1, tzinfo=UTC)
        end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
        out.append((f"{year:04d}-{month:02d}", start, end))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out[::-1]


def bucket(at: datetime, edges: list[datetime]) -> int | None:
    """Which of the buckets that begin at `edges` (sorted) holds `at`; None before the first.
    The Python twin of the CASE expression the reports group by (tests compare the two)."""
    found = None
    for i, edge in enumerate(edges):
        if at >= edge:
            found = i
    return found


def reason(error: str | None) -> str:
    """The reason a failed stage is counted under: its error's first words (at most
    REASON_WORDS, up to a ": " that starts the detail), so "HTTP 404 from Zoom: meeting 123"
    and "HTTP 404 from Zoom: meeting 456" count as one. Depends only on the first
    REASON_SOURCE characters (the SQL groups by those)."""
    text = " ".join((error or "").split())
    if not text:
        return "(no message)"
    head = text.split(": ", 1)[0] if ": " in text[:REASON_CHARS] else text
    words = head.split(" ")[:REASON_WORDS]
    short = " ".join(words).rstrip(".,;:")
    return short[:REASON_CHARS] or "(no message)"
