"""Quotas: a user's limits (their plan's, with custom overrides on top), what they used in
the current period, and what remains (docs/quotas.md). Reading only: enforcement comes with
the reservations of issue 17's next slice."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from leap.context import Context
from leap.db.models import (
    AutomationJob,
    InputSource,
    OutputPreset,
    PipelineRun,
    QuotaOverride,
    Template,
    UsageEvent,
    User,
)
from leap.db.scope import Scope
from leap.domain import RunStatus
from leap.errors import UsageError
from leap.services import audit
from leap.services.users import require_admin, target_user
from leap.specs.quota import COUNTS, LIMITS, parse_assignment, period
from leap.views import iso


def limits(ctx: Context, user: User, now: datetime) -> dict[str, tuple[Any, str]]:
    """Each limit and where it comes from ("plan NAME", "custom", "custom until …")."""
    plan = user.plan.limits if user.plan is not None else {}
    name = f"plan {user.plan.name}" if user.plan is not None else "no plan"
    out: dict[str, tuple[Any, str]] = {k: (plan.get(k), name) for k in LIMITS}
    for o in ctx.repos.quota_overrides.list(user_id=user.id):
        if o.key in LIMITS and (o.until is None or o.until > now):
            value = o.value if o.value is None or not LIMITS[o.key].whole else int(o.value)
            out[o.key] = (value, "custom" if o.until is None else f"custom until {iso(o.until)}")
    return out


def used(ctx: Context, user: User, start: datetime, end: datetime) -> dict[str, float | None]:
    """What the user used in [start, end) (period limits: the sum of their metered events,
    reservations included) and has now (standing ones); None where LEAP does not measure it
    (storage, measured on disk by `storage_bytes`)."""
    s = ctx.session

    def count(model: Any, *where: Any) -> float:
        return float(s.scalar(select(func.count(model.id)).where(*where)) or 0)

    out: dict[str, float | None] = dict(period_use(ctx, user.id, start, end))
    out |= {
        "storage_gb": None,
        "templates": count(Template),
        "presets": count(OutputPreset),
        "sources": count(InputSource),
        "automation_jobs": count(AutomationJob),
        "concurrent_runs": count(PipelineRun, PipelineRun.status == RunStatus.ACTIVE.value),
    }
    return out


def period_use(ctx: Context, user_id: int, start: datetime, end: datetime) -> dict[str, float]:
    """Each period limit's use in [start, end): the sum of the kinds it counts
    (specs/quota.py COUNTS), reservations included; one grouped query."""
    ev = UsageEvent
    sums = {
        str(kind): float(total or 0)
        for kind, total in ctx.session.execute(
            select(ev.kind, func.sum(ev.amount))
            .where(ev.user_id == user_id, ev.at >= start, ev.at < end)
            .group_by(ev.kind)
        )
    }
    return {key: sum(sums.get(kind, 0.0) for kind in kinds) for key, kinds in COUNTS.items()}


GB = 1024**3


def storage_bytes(media_root: Path, user_id: int) -> int:
    """Bytes of media the user keeps on disk (their folder under the media dir)."""
    total = 0
    # The layout of pipeline/workspace.py: <media>/user_<id>/recordings/<recording id>/.
    for root, _dirs, files in os.walk(media_root / f"user_{user_id}"):
        for name in files:
            try:
                total += (Path(root) / name).lstat().st_size
            except OSError:  # removed while walking
                continue
    return total


def show(ctx: Context, name: str | None, now: datetime) -> dict[str, Any]:
    """`leap quota show [--user-name NAME]`: limits, use, what remains and when the period
    resets, in the user's timezone. An admin may name anyone; a user sees their own."""
    user = target_user(ctx, name)
    tz = ZoneInfo(user.timezone)
    start, end = period(user.created_at, now, tz)
    # The named user's rows: an admin reading another user's quota reads through that
    # user's scope, never anyone else's rows.
    with ctx.as_scope(Scope.for_user(user.id, is_admin=ctx.scope.is_admin)):
        have = limits(ctx, user, now)
        use = used(ctx, user, start, end)
    use["storage_gb"] = round(storage_bytes(ctx.settings.media_path, user.id) / GB, 3)
    rows = []
    for key, spec in LIMITS.items():
        limit, origin = have[key]
        amount = use[key]
        rows.append(
            {
                "limit": key,
                "value": limit,
                "used": amount,
                "remaining": None if limit is None or amount is None else max(limit - amount, 0),
                "origin": origin,
                "resets_at": end.isoformat() if spec.period else None,
            }
        )
    return {
        "user": user.name,
        "plan": user.plan.name if user.plan is not None else None,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "limits": rows,
    }


def set_quota(
    ctx: Context, name: str, assignments: list[str], resets: list[str], until: datetime | None
) -> None:
    """(admin) `leap user set-quota NAME key=value ... [--until DATE]` and `KEY --reset`."""
    require_admin(ctx)
    if not assignments and not resets:
        raise UsageError("give KEY=VALUE to set, or --reset KEY")
    user = target_user(ctx, name)
    changes = [parse_assignment(a) for a in assignments]
    for key in resets:
        if key not in LIMITS:
            raise UsageError(f"unknown limit '{key[:40]}'")
    with ctx.as_scope(Scope.for_user(user.id, is_admin=ctx.scope.is_admin)):
        for key, value in changes:
            row = ctx.repos.quota_overrides.find(user_id=user.id, key=key)
            if row is None:
                ctx.repos.quota_overrides.add(
                    QuotaOverride(user_id=user.id, key=key, value=value, until=until)
                )
            else:
                row.value, row.until = value, until
        for key in resets:
            ctx.repos.quota_overrides.delete_where(user_id=user.id, key=key)
    audit.record_run(
        ctx,
        action="user.set_quota",
        selection=user.name,
        result="ok",
        set=dict(changes),
        reset=resets,
        until=iso(until),
    )
