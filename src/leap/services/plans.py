"""Plans: the limits each user's plan sets (docs/quotas.md). Anyone may read them; only an
admin edits them, and each edit is audited."""

from __future__ import annotations

from typing import Any

from leap.context import Context
from leap.db.models import Plan
from leap.errors import UsageError
from leap.services import audit
from leap.services.users import require_admin
from leap.specs.quota import LIMITS, edited


def view(plan: Plan, users: int | None = None) -> dict[str, Any]:
    """A plan with every limit named: unset ones are null (unlimited)."""
    out: dict[str, Any] = {
        "name": plan.name,
        "title": plan.title,
        "limits": {key: plan.limits.get(key) for key in LIMITS},
    }
    if users is not None:
        out["users"] = users
    return out


def list_plans(ctx: Context) -> list[dict[str, Any]]:
    plans = ctx.repos.plans.list(order_by=(Plan.id,))
    counts: dict[int | None, int] = {}
    if ctx.scope.is_admin:
        for user in ctx.repos.users.list():
            counts[user.plan_id] = counts.get(user.plan_id, 0) + 1
    return [view(p, counts.get(p.id, 0) if ctx.scope.is_admin else None) for p in plans]


def show(ctx: Context, name: str) -> dict[str, Any]:
    return view(ctx.repos.plans.require_name(name))


def edit(
    ctx: Context, name: str, sets: list[str], unsets: list[str], title: str | None
) -> dict[str, Any]:
    """(admin) Set or unset limits of a plan; users on it are held to them at once."""
    require_admin(ctx)
    plan = ctx.repos.plans.require_name(name)
    before = dict(plan.limits)
    plan.limits = edited(plan.limits, sets, unsets)
    if title is not None:
        if not title.strip() or len(title.strip()) > 80:
            raise UsageError("--title: 1 to 80 characters")
        plan.title = title.strip()
    audit.record_run(
        ctx, action="plan.edit", selection=name, result="ok", before=before, after=plan.limits
    )
    return view(plan)
