"""The audit trail: who did what, recorded in the same unit of work as the change."""

from __future__ import annotations

from typing import Any

from leap.context import Context
from leap.db.models import AuditEntry
from leap.views import iso


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


def record_bulk(
    ctx: Context,
    *,
    verb: str,
    selection: str,
    selected: int,
    done: int,
    refused: int,
    **more: Any,
) -> None:
    """One entry for a command that acted on several recordings (`process 1-40`), with the
    counts: one line per recording would drown the trail. `more`: the verb's own facts
    (approve's publish time, what it skipped)."""
    record_run(
        ctx,
        action=f"recordings.{verb}",
        selection=selection,
        result="ok" if not refused else ("failed" if not done else "partial"),
        selected=selected,
        done=done,
        refused=refused,
        **more,
    )


def record_run(
    ctx: Context,
    *,
    action: str,
    selection: str,
    result: str,
    actor: str | None = None,
    **detail: Any,
) -> None:
    """record_bulk's sibling for a run that is not a `recordings.*` verb (`zoom.trash`):
    one entry with its counts, owned by the acting user; `actor` names who acted for them
    when it was not the user ("leapd")."""
    uid = ctx.scope.user_id
    if uid is None:
        return  # the system acts only for users, who are recorded where they act
    me = ctx.repos.users.require(uid)
    record(
        ctx,
        owner_id=me.id,
        actor=actor or me.name,
        action=action,
        subject=selection[:128],
        **detail,
        result=result,
    )


def entries(ctx: Context, *, limit: int) -> list[dict[str, Any]]:
    """The audit entries the acting user may see (the scope: their own; an admin's, all),
    newest first, with the owning user's name."""
    rows = ctx.repos.audit.newest(limit)
    names = {u.id: u.name for u in ctx.repos.users.list()} if ctx.scope.is_admin else {}
    out = []
    for e in rows:
        out.append(
            {
                "id": e.id,
                "at": iso(e.at),
                "user": names.get(e.user_id, str(e.user_id)) if ctx.scope.is_admin else None,
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "detail": e.detail,
            }
        )
    return out
