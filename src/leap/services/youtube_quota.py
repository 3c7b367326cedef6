"""The YouTube quota ledger: per Google project (OAuth client id), one counter per bucket
(units, uploads) per Pacific-time day. An upload that would not fit today waits for the reset
instead of burning a failed call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from leap.context import Context
from leap.db.base import utcnow
from leap.db.models import YouTubeQuotaUsage
from leap.providers.youtube import next_pacific_midnight

PACIFIC = ZoneInfo("America/Los_Angeles")


def pacific_day(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(PACIFIC).date()


@dataclass(frozen=True)
class Ledger:
    project: str
    day: date
    units: int
    uploads: int
    units_limit: int
    uploads_limit: int

    @property
    def resets_at(self) -> datetime:
        return next_pacific_midnight(utcnow())


def _row(ctx: Context, project: str, bucket: str, day: date) -> YouTubeQuotaUsage:
    """Today's counter, created if missing and locked for this transaction.

    Several workers (and hosts) charge the same project at once: the insert ignores a row a
    concurrent transaction just created, and FOR UPDATE makes read-add-write atomic on
    PostgreSQL (SQLite transactions already run one at a time under BEGIN IMMEDIATE).
    Install-wide (a project is shared by every user of its OAuth client): no tenancy filter
    applies to this table, and the scope hooks leave it alone."""
    # Imported here, the one dialect in use: sqlalchemy.dialects.postgresql costs 2.5 MB of
    # RSS in every process (leap's stage path, leapd) that talks to SQLite.
    if ctx.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        insert: Any = pg_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        insert = sqlite_insert
    ctx.session.execute(
        insert(YouTubeQuotaUsage)
        .values(project=project, bucket=bucket, day=day, used=0)
        .on_conflict_do_nothing(index_elements=["project", "bucket", "day"])
    )
    stmt = (
        select(YouTubeQuotaUsage)
        .where(
            YouTubeQuotaUsage.project == project,
            YouTubeQuotaUsage.bucket == bucket,
            YouTubeQuotaUsage.day == day,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return ctx.session.scalars(stmt).one()


def ledger(ctx: Context, project: str) -> Ledger:
    day = pacific_day()
    y = ctx.settings.youtube
    return Ledger(
        project,
        day,
        _row(ctx, project, "units", day).used,
        _row(ctx, project, "uploads", day).used,
        y.daily_units,
        y.daily_uploads,
    )


def publish_units(costs: dict[str, int], *, thumbnail: bool, playlist: bool, captions: bool) -> int:
    """What one publish costs: the insert, and each extra it will make."""
    calls = ["videos.insert"]
    calls += ["thumbnails.set"] if thumbnail else []
    calls += ["playlistItems.insert"] if playlist else []
    calls += ["captions.insert"] if captions else []
    return sum(costs.get(call, 0) for call in calls)


def reserve_upload(ctx: Context, project: str, units_needed: int) -> datetime | None:
    """Charge one publish to today's counters; None if it fits, else when to try again."""
    day = pacific_day()
    y = ctx.settings.youtube
    units, uploads = _row(ctx, project, "units", day), _row(ctx, project, "uploads", day)
    if units.used + units_needed > y.daily_units or uploads.used + 1 > y.daily_uploads:
        return next_pacific_midnight(utcnow())
    units.used += units_needed
    uploads.used += 1
    return None


def charge(ctx: Context, project: str, units: int) -> None:
    """Count units already spent on calls that are not uploads (`leap approve`'s
    videos.update), so the day's ledger stays what YouTube counts."""
    if units > 0:
        _row(ctx, project, "units", pacific_day()).used += units


def exhaust(ctx: Context, project: str) -> None:
    """YouTube said quotaExceeded: believe it for the rest of its day."""
    units = _row(ctx, project, "units", pacific_day())
    units.used = max(units.used, ctx.settings.youtube.daily_units)
