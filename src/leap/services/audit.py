"""The audit trail: who did what, recorded in the same unit of work as the change."""

from __future__ import annotations

from typing import Any

from leap.context import Context
from leap.db.models import AuditEntry


def record(
    ctx: Context,
    *,
    owner_id: int,
    actor: str,
    action: str,
    subject: str | None = None,
    **detail: Any,
) -> None:
    """Append an entry owned by `owner_id`: the acting user, so their history shows it."""
    ctx.repos.audit.add(
        AuditEntry(user_id=owner_id, actor=actor, action=action, subject=subject, detail=detail)
    )
