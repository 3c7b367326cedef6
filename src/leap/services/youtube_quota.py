"""The YouTube quota ledger: per Google project (OAuth client id), one counter per bucket
(units, uploads) per Pacific-time day. An upload that would not fit today waits for the reset
instead of burning a failed call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from leap.context import Context
from leap.db.base import utcnow
from leap.db.models import YouTubeQuotaUsage
from leap.providers.youtube import COSTS, next_pacific_midnight

PACIFIC = ZoneInfo("America/Los_Angeles")
# What one published video costs at most: the upload, a thumbnail, a playlist item, captions.
PUBLISH_UNITS = (
    COSTS["videos.insert"]
    + COSTS["thumbnails.set"]
    + COSTS["playlistItems.insert"]
    + COSTS["captions.insert"]
)


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
    # Install-wide (a project is shared by every user of its OAuth client): no tenancy filter
    # applies to this table, and the scope hooks leave it alone.
    stmt = select(YouTubeQuotaUsage).where(
        YouTubeQuotaUsage.project == project,
        YouTubeQuotaUsage.bucket == bucket,
        YouTubeQuotaUsage.day == day,
    )
    row = ctx.session.scalars(stmt).first()
    if row is None:
        row = YouTubeQuotaUsage(project=project, bucket=bucket, day=day, used=0)
        ctx.session.add(row)
        ctx.session.flush()
    return row


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


def reserve_upload(ctx: Context, project: str) -> datetime | None:
    """Charge one publish to today's counters; None if it fits, else when to try again."""
    day = pacific_day()
    y = ctx.settings.youtube
    units, uploads = _row(ctx, project, "units", day), _row(ctx, project, "uploads", day)
    if units.used + PUBLISH_UNITS > y.daily_units or uploads.used + 1 > y.daily_uploads:
        return next_pacific_midnight(utcnow())
    units.used += PUBLISH_UNITS
    uploads.used += 1
    return None


def exhaust(ctx: Context, project: str) -> None:
    """YouTube said quotaExceeded: believe it for the rest of its day."""
    units = _row(ctx, project, "units", pacific_day())
    units.used = max(units.used, ctx.settings.youtube.daily_units)
