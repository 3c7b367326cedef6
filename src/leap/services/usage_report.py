"""`leap usage`: what one user used in one of their quota periods, per metered kind, per
template or per local day (docs/usage.md). Aggregate SQL only: one GROUP BY statement
whatever the number of events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select

from leap.context import Context
from leap.db.models import Recording, Template, UsageEvent
from leap.db.scope import Scope
from leap.services.usage import KINDS
from leap.services.users import target_user
from leap.specs.usage_period import (
    NO_TEMPLATE,
    counts_toward,
    day_edges,
    parse_by,
    parse_period,
    zone,
)


def report(
    ctx: Context, name: str | None, period_text: str | None, by: str, now: datetime
) -> dict[str, Any]:
    """The user's (NAME: an admin's choice of user) use in the period `--period` names,
    grouped `--by` metric, template or day. Keys: docs/usage.md, "leap usage"."""
    by = parse_by(by)
    user = target_user(ctx, name)
    tz = zone(user.timezone)
    start, end = parse_period(period_text, user.created_at, now, tz)
    lo, hi = start.astimezone(UTC), end.astimezone(UTC)
    # The named user's rows only, read through their scope (as services/quotas.show does).
    with ctx.as_scope(Scope.for_user(user.id, is_admin=ctx.scope.is_admin)):
        if by == "metric":
            rows = _by_metric(ctx, lo, hi)
        elif by == "template":
            rows = _by_template(ctx, lo, hi)
        else:
            rows = _by_day(ctx, start, end, tz)
    return {
        "user": user.name,
        "plan": user.plan.name if user.plan is not None else None,
        "timezone": user.timezone,
        "period": f"{start.year:04d}-{start.month:02d}",
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "by": by,
        "rows": rows,
    }


def _in(lo: datetime, hi: datetime) -> tuple[Any, ...]:
    ev = UsageEvent
    return (ev.at >= lo, ev.at < hi, ev.kind.in_(KINDS))


def _order(kind: str) -> int:
    return KINDS.index(kind)


def _by_metric(ctx: Context, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    ev = UsageEvent
    got = {
        str(kind): (float(total or 0), int(n))
        for kind, total, n in ctx.session.execute(
            select(ev.kind, func.sum(ev.amount), func.count()).where(*_in(lo, hi)).group_by(ev.kind)
        )
    }
    return [
        {
            "kind": kind,
            "amount": got.get(kind, (0.0, 0))[0],
            "events": got.get(kind, (0.0, 0))[1],
            "counts_toward": counts_toward(kind),
        }
        for kind in KINDS
    ]


def _by_template(ctx: Context, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    ev = UsageEvent
    stmt = (
        select(Template.name, ev.kind, func.sum(ev.amount), func.count())
        .select_from(ev)
        .outerjoin(Recording, Recording.id == ev.recording_id)
        .outerjoin(Template, Template.id == Recording.template_id)
        .where(*_in(lo, hi))
        .group_by(Template.id, Template.name, ev.kind)
    )
    rows: list[dict[str, Any]] = [
        {
            "template": NO_TEMPLATE if tpl is None else str(tpl),
            "kind": str(kind),
            "amount": float(total or 0),
            "events": int(n),
        }
        for tpl, kind, total, n in ctx.session.execute(stmt)
    ]
    rows.sort(key=lambda r: (r["template"] == NO_TEMPLATE, r["template"], _order(r["kind"])))
    return rows


def _by_day(ctx: Context, start: datetime, end: datetime, tz: Any) -> list[dict[str, Any]]:
    ev = UsageEvent
    edges = day_edges(start, end, tz)
    if not edges:
        return []
    # The local day as a CASE over the UTC instants each day begins (a DST day is 23 or 25
    # hours), the same on SQLite and PostgreSQL; grouped in an outer query, since the
    # expression's bound parameters would differ between SELECT and GROUP BY.
    day = case(*[(ev.at >= at, i) for i, (_, at) in reversed(list(enumerate(edges)))])
    lo, hi = start.astimezone(UTC), end.astimezone(UTC)
    inner = select(day.label("day"), ev.kind, ev.amount).where(*_in(lo, hi)).subquery()
    stmt = select(inner.c.day, inner.c.kind, func.sum(inner.c.amount), func.count()).group_by(
        inner.c.day, inner.c.kind
    )
    rows: list[dict[str, Any]] = [
        {
            "date": edges[int(i)][0].isoformat(),
            "kind": str(kind),
            "amount": float(total or 0),
            "events": int(n),
        }
        for i, kind, total, n in ctx.session.execute(stmt)
        if i is not None
    ]
    rows.sort(key=lambda r: (r["date"], _order(r["kind"])))
    return rows
