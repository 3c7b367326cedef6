"""Stable, JSON-ready views of entities: the keys `--json` promises to scripts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leap.db.models import Plan, User


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def user_view(user: User, plan: Plan | None = None) -> dict[str, Any]:
    plan = plan if plan is not None else user.plan
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "timezone": user.timezone,
        "plan": plan.name if plan else None,
        "disabled": user.disabled,
        "created_at": iso(user.created_at),
    }
