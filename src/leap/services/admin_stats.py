"""`leap admin stats overview | users | quotas` (admin): the install's users, recordings,
stage failures, monthly use and who is near a limit (docs/usage.md, "Admin statistics").

Every figure is aggregate SQL, and the number of statements does not grow with the number
of users: each user's current period is computed here from their start date and timezone,
then one statement sums every user's events over their own period (a VALUES list of
per-user bounds joined to usage_events), one reads the plans with the users, one the custom
limits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, case, column, func, or_, select, values

from leap.context import Context
from leap.db.base import UTCDateTime
from leap.db.models import (
    PipelineRun,
    Plan,
    QuotaOverride,
    Recording,
    StageResult,
    UsageEvent,
    User,
)
from leap.db.scope import Scope
from leap.domain import Role, RunStatus, StageStatus
from leap.services.usage import KINDS
from leap.services.users import require_admin
from leap.specs.quota import COUNTS
from leap.specs.usage_period import (
    NEAR_DEFAULT,
    REASON_SOURCE,
    check_near,
    effective_limits,
    is_near,
    month_edges,
    percent,
    period_use,
    reason,
    user_period,
)
from leap.views import iso

# A user is active with a usage event or a pipeline run in this many days.
ACTIVE_DAYS = 30
# The failure reasons overview lists (the most frequent first).
TOP_REASONS = 20


@dataclass
class Member:
    """One user as the statistics see them: plan, limits and current period (UTC)."""

    id: int
    name: str
    role: str
    disabled: bool
    plan: str | None
    start: datetime
    end: datetime
    limits: dict[str, tuple[float | int | None, str]] = field(default_factory=dict)
    use: dict[str, float] = field(default_factory=dict)  # kind -> amount this period
    events: dict[str, int] = field(default_factory=dict)  # kind -> events this period


@contextmanager
def _install(ctx: Context) -> Iterator[None]:
    """Every user's rows, after the admin check."""
    require_admin(ctx)
    with ctx.as_scope(Scope.system_scope()):
        yield


def _members(ctx: Context, now: datetime) -> list[Member]:
    """Every user with their plan and custom limits (two statements), period use (one)."""
    s = ctx.session
    members = []
    plans: dict[int, Any] = {}
    for uid, name, role, disabled, tz, created, plan, limits in s.execute(
        select(
            User.id,
            User.name,
            User.role,
            User.disabled,
            User.timezone,
            User.created_at,
            Plan.name,
            Plan.limits,
        )
        .outerjoin(Plan, Plan.id == User.plan_id)
        .order_by(User.name)
    ):
        start, end = user_period(created, tz, now)
        members.append(Member(uid, name, role, bool(disabled), plan, start, end))
        plans[uid] = limits
    overrides: dict[int, list[tuple[str, float | None, datetime | None]]] = {}
    qo = QuotaOverride
    for uid, key, value, until in s.execute(
        select(qo.user_id, qo.key, qo.value, qo.until).where(
            or_(qo.until.is_(None), qo.until > now)
        )
    ):
        overrides.setdefault(uid, []).append((key, value, until))
    for m in members:
        m.limits = effective_limits(m.plan, plans[m.id], overrides.get(m.id, []), now)
    _period_sums(ctx, members)
    return members


def _period_sums(ctx: Context, members: list[Member]) -> None:
    """Each member's sum and count of events per kind over their own current period: one
    statement (a VALUES list of the bounds, joined on user and time)."""
    if not members:
        return
    ev = UsageEvent
    bounds = (
        values(
            column("user_id", Integer),
            column("lo", UTCDateTime()),
            column("hi", UTCDateTime()),
            name="bounds",
        )
        .data([(m.id, m.start, m.end) for m in members])
        .cte("bounds")
    )
    stmt = (
        select(ev.user_id, ev.kind, func.sum(ev.amount), func.count())
        .join(
            bounds,
            (bounds.c.user_id == ev.user_id) & (ev.at >= bounds.c.lo) & (ev.at < bounds.c.hi),
        )
        # The kinds listed and the widest bounds: the index on (user_id, kind, at) serves
        # each user's period as a few range reads.
        .where(
            ev.kind.in_(KINDS),
            ev.at >= min(m.start for m in members),
            ev.at < max(m.end for m in members),
        )
        .group_by(ev.user_id, ev.kind)
    )
    by_id = {m.id: m for m in members}
    for uid, kind, total, n in ctx.session.execute(stmt):
        m = by_id[uid]
        m.use[kind], m.events[kind] = float(total or 0), int(n)


def _limit_rows(m: Member, near: float) -> list[dict[str, Any]]:
    """The member's period limits that are set, with use and percent, at or past `near`."""
    use = period_use(m.use)
    rows = []
    for key in COUNTS:
        value, origin = m.limits[key]
        pct = percent(use[key], value)
        if value is not None and is_near(pct, near):
            rows.append(
                {
                    "user": m.name,
                    "plan": m.plan,
                    "limit": key,
                    "used": use[key],
                    "value": value,
                    "percent": pct,
                    "origin": origin,
                    "resets_at": iso(m.end),
                }
            )
    return rows


def _last_activity(ctx: Context, since: datetime | None = None) -> dict[int, datetime]:
    """Each user's latest usage event or run change (since `since`, when given)."""
    ev, run = UsageEvent, PipelineRun
    out: dict[int, datetime] = {}
    q_ev = select(ev.user_id, func.max(ev.at)).group_by(ev.user_id)
    q_run = select(run.user_id, func.max(run.updated_at)).group_by(run.user_id)
    if since is not None:
        q_ev, q_run = q_ev.where(ev.at >= since), q_run.where(run.updated_at >= since)
    for stmt in (q_ev, q_run):
        for uid, at in ctx.session.execute(stmt):
            if at is not None:
                at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
                out[uid] = max(out.get(uid, at), at)
    return out


def overview(ctx: Context, now: datetime) -> dict[str, Any]:
    """Users by plan and activity, recordings by status, stage failures by stage and by
    reason, use per calendar month (UTC), users near a limit. Keys: docs/usage.md."""
    with _install(ctx):
        members = _members(ctx, now)
        active = _last_activity(ctx, since=now - timedelta(days=ACTIVE_DAYS))
        recordings = _recordings_by_status(ctx)
        stages, reasons = _stage_failures(ctx)
        months = _months(ctx, now)
    by_plan: dict[str, int] = {}
    for m in members:
        by_plan[m.plan or "(none)"] = by_plan.get(m.plan or "(none)", 0) + 1
    near = [r for m in members for r in _limit_rows(m, NEAR_DEFAULT)]
    near.sort(key=lambda r: (-r["percent"], r["user"], r["limit"]))
    return {
        "generated_at": iso(now),
        "users": {
            "total": len(members),
            "admins": sum(m.role == Role.ADMIN.value for m in members),
            "disabled": sum(m.disabled for m in members),
            "active": sum(m.id in active for m in members),
            "inactive": sum(m.id not in active for m in members),
            "active_days": ACTIVE_DAYS,
            "by_plan": dict(sorted(by_plan.items())),
        },
        "recordings": recordings,
        "stages": stages,
        "failure_reasons": reasons,
        "months": months,
        "near_limits": {
            "threshold": NEAR_DEFAULT,
            "users": len({r["user"] for r in near}),
            "limits": near,
        },
    }


def _recordings_by_status(ctx: Context) -> dict[str, int]:
    rec = Recording
    got = ctx.session.execute(select(rec.status, func.count()).group_by(rec.status))
    return {str(status): int(n) for status, n in sorted(got, key=lambda r: str(r[0]))}


def _stage_failures(ctx: Context) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per stage: finished (done or failed for good) and failed rows, and the failure rate;
    per (stage, exit code, reason): how many failed (docs/usage.md, "Admin statistics")."""
    st = StageResult
    done, failed = StageStatus.DONE.value, StageStatus.FAILED.value
    counts: dict[str, dict[str, int]] = {}
    for name, status, n in ctx.session.execute(
        select(st.name, st.status, func.count())
        .where(st.status.in_((done, failed)))
        .group_by(st.name, st.status)
    ):
        counts.setdefault(str(name), {done: 0, failed: 0})[str(status)] = int(n)
    stages = [
        {
            "stage": name,
            "finished": c[done] + c[failed],
            "failed": c[failed],
            "failure_rate": c[failed] / (c[done] + c[failed]),
        }
        for name, c in sorted(counts.items())
    ]
    # The reason's source text and the exit code in an inner query, grouped outside (their
    # bound parameters would differ between SELECT and GROUP BY on PostgreSQL).
    inner = (
        select(
            st.name.label("stage"),
            st.result["exit_code"].as_integer().label("exit_code"),
            func.substr(func.coalesce(st.error, ""), 1, REASON_SOURCE).label("head"),
        )
        .where(st.status == failed)
        .subquery()
    )
    merged: dict[tuple[str, int | None, str], int] = {}
    for stage, code, head, n in ctx.session.execute(
        select(inner.c.stage, inner.c.exit_code, inner.c.head, func.count()).group_by(
            inner.c.stage, inner.c.exit_code, inner.c.head
        )
    ):
        key = (str(stage), None if code is None else int(code), reason(head))
        merged[key] = merged.get(key, 0) + int(n)
    reasons = [
        {"stage": s, "exit_code": code, "reason": why, "failed": n}
        for (s, code, why), n in sorted(
            merged.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][2])
        )[:TOP_REASONS]
    ]
    return stages, reasons


def _months(ctx: Context, now: datetime) -> list[dict[str, Any]]:
    """Each metered kind's total per calendar month (UTC), the last six, current included."""
    ev = UsageEvent
    edges = month_edges(now)
    month = case(*[(ev.at >= start, i) for i, (_, start, _e) in reversed(list(enumerate(edges)))])
    inner = (
        select(month.label("month"), ev.kind, ev.amount)
        .where(ev.at >= edges[0][1], ev.at < edges[-1][2], ev.kind.in_(KINDS))
        .subquery()
    )
    out = [{"month": label} | dict.fromkeys(KINDS, 0.0) for label, _s, _e in edges]
    for i, kind, total in ctx.session.execute(
        select(inner.c.month, inner.c.kind, func.sum(inner.c.amount)).group_by(
            inner.c.month, inner.c.kind
        )
    ):
        if i is not None:
            out[int(i)][str(kind)] = float(total or 0)
    return out


def users(ctx: Context, now: datetime) -> list[dict[str, Any]]:
    """One row per user: plan, disabled, this period's use of each metered kind (their own
    period), runs in progress, last activity."""
    with _install(ctx):
        members = _members(ctx, now)
        running = _running(ctx)
        last = _last_activity(ctx)
    return [
        {
            "user": m.name,
            "plan": m.plan,
            "role": m.role,
            "disabled": m.disabled,
            "period_start": iso(m.start),
            "period_end": iso(m.end),
            "use": {kind: m.use.get(kind, 0.0) for kind in KINDS},
            "runs_active": running.get(m.id, 0),
            "last_activity": iso(last.get(m.id)),
        }
        for m in members
    ]


def _running(ctx: Context) -> dict[int, int]:
    run = PipelineRun
    return {
        int(uid): int(n)
        for uid, n in ctx.session.execute(
            select(run.user_id, func.count())
            .where(run.status == RunStatus.ACTIVE.value)
            .group_by(run.user_id)
        )
    }


def quotas(ctx: Context, now: datetime, near: float = 0.0) -> list[dict[str, Any]]:
    """One row per user and period limit that is set: use in their current period, the
    limit, percent, where it comes from and when it resets; percent at or past `near` only,
    the highest first."""
    require_admin(ctx)
    near = check_near(near)
    with _install(ctx):
        members = _members(ctx, now)
    rows = [r for m in members for r in _limit_rows(m, near)]
    rows.sort(key=lambda r: (-r["percent"], r["user"], r["limit"]))
    return rows
