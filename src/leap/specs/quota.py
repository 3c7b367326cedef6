"""Plan limits: which limits exist, what a valid value is, and the period a monthly limit
counts over (docs/quotas.md). Pure: no database, no clock.

A limit is a number, or None for unlimited (a key left out of a plan means unlimited too).
Period limits count what was used since the start of the user's current period; standing
limits count what exists now (templates, sources, runs in progress)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from leap.errors import UsageError


@dataclass(frozen=True)
class Limit:
    key: str
    help: str
    whole: bool = True  # counts of things; False: minutes, gigabytes
    period: bool = True  # counted per period; False: standing (what exists now)


LIMITS: dict[str, Limit] = {
    limit.key: limit
    for limit in (
        Limit("recordings_per_month", "recordings started processing"),
        Limit(
            "transcription_minutes_per_month",
            "audio minutes transcribed by a paid API (local transcription is free)",
            whole=False,
        ),
        Limit("llm_tokens_per_month", "LLM tokens for topics and chapters"),
        Limit("uploads_per_month", "uploads, every platform together"),
        Limit("youtube_uploads_per_month", "uploads to YouTube"),
        Limit("vk_uploads_per_month", "uploads to VK"),
        Limit("storage_gb", "media kept on disk", whole=False, period=False),
        Limit("templates", "templates", period=False),
        Limit("presets", "output presets", period=False),
        Limit("sources", "input sources", period=False),
        Limit("automation_jobs", "automation jobs", period=False),
        Limit("concurrent_runs", "pipeline runs in progress at once", period=False),
    )
}
# The metered kinds (services/usage.py) each period limit sums; standing limits count rows.
COUNTS: dict[str, tuple[str, ...]] = {
    "recordings_per_month": ("recordings",),
    "transcription_minutes_per_month": ("transcription_minutes",),
    "llm_tokens_per_month": ("llm_tokens",),
    "uploads_per_month": ("youtube_uploads", "vk_uploads"),
    "youtube_uploads_per_month": ("youtube_uploads",),
    "vk_uploads_per_month": ("vk_uploads",),
}
# Words that set a limit back to unlimited.
UNLIMITED = ("unlimited", "none")
# Beyond any real use, and still exact as a float: a typo, not a limit.
MAX_VALUE = 1e15


def known() -> str:
    return ", ".join(sorted(LIMITS))


def parse_limit(key: str, raw: str) -> float | int | None:
    """A limit's value from `key=value` text: a non-negative number (a whole one for counts),
    or `unlimited`; UsageError naming the key otherwise."""
    key = key.strip()
    if key not in LIMITS:
        raise UsageError(f"unknown limit '{key[:40]}' (one of: {known()})")
    text = raw.strip()
    if text.lower() in UNLIMITED:
        return None
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{key}: '{text[:40]}' is not a number (or 'unlimited')") from None
    if not math.isfinite(value) or value < 0 or value > MAX_VALUE:
        raise UsageError(
            f"{key}: {text[:40]} is not a limit (0 to {MAX_VALUE:.0e}, or 'unlimited')"
        )
    if LIMITS[key].whole:
        if value != int(value):
            raise UsageError(f"{key}: a whole number, not {text[:40]}")
        return int(value)
    return value


def parse_assignment(text: str) -> tuple[str, float | int | None]:
    """`key=value` as given to `--set`."""
    if "=" not in text:
        raise UsageError(f"--set '{text[:40]}': expected KEY=VALUE (e.g. recordings_per_month=20)")
    key, raw = text.split("=", 1)
    return key.strip(), parse_limit(key, raw)


def edited(
    limits: Mapping[str, Any], sets: list[str], unsets: list[str]
) -> dict[str, float | int | None]:
    """A plan's limits after `--set KEY=VALUE ...` and `--unset KEY ...` (unset: unlimited);
    every value checked before any is applied."""
    out: dict[str, float | int | None] = dict(limits)
    changes = [parse_assignment(s) for s in sets]
    for key in unsets:
        if key.strip() not in LIMITS:
            raise UsageError(f"unknown limit '{key.strip()[:40]}' (one of: {known()})")
    for key, value in changes:
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    for key in unsets:
        out.pop(key.strip(), None)
    return out


def period(anchor: datetime, now: datetime, tz: tzinfo) -> tuple[datetime, datetime]:
    """The monthly period holding `now`: it starts on the anchor's day of the month (the
    user's start date) at local midnight in `tz`, the last day of a shorter month standing in
    for a 29th, 30th or 31st. Returned as aware datetimes in `tz`."""
    day = anchor.astimezone(tz).day
    local = now.astimezone(tz)
    start = _month_start(local.year, local.month, day, tz)
    if start > local:
        year, month = (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)
        start = _month_start(year, month, day, tz)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start, _month_start(year, month, day, tz)


def _month_start(year: int, month: int, day: int, tz: tzinfo) -> datetime:
    last = (datetime(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return datetime(year, month, min(day, last), tzinfo=tz)
