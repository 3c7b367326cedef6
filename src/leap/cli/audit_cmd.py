"""`leap audit list`: who did what (the acting user's entries; an admin's: everyone's)."""

from __future__ import annotations

from typing import Annotated

import typer

from leap.cli import _filters as F
from leap.cli._run import state_of
from leap.services import audit

app = typer.Typer(help="The audit trail: who did what, and when.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    limit: Annotated[
        int,
        typer.Option(
            "--limit", parser=F._whole("--limit", 1), metavar="N", help="At most N entries."
        ),
    ] = 100,
) -> None:
    """Audit entries, newest first (an admin sees every user's)."""
    state = state_of(ctx)
    # A user's scope shows their own rows, an admin's too: everyone's trail needs the
    # install-wide scope, which only an admin gets.
    admin = state.scope().is_admin
    with state.context(system=admin) as c:
        rows = audit.entries(c, limit=limit)
    if state.as_json:
        state.output.json(
            [r if admin else {k: v for k, v in r.items() if k != "user"} for r in rows]
        )
        return
    shown = [
        {
            **r,
            "at": (r["at"] or "")[:19].replace("T", " "),
            "detail": ", ".join(f"{k}={v}" for k, v in (r["detail"] or {}).items()),
        }
        for r in rows
    ]
    columns = (
        ["at", "user", "actor", "action", "subject", "detail"]
        if admin
        else ["at", "actor", "action", "subject", "detail"]
    )
    state.output.table(
        shown, columns, title=f"{len(rows)} audit entr{'y' if len(rows) == 1 else 'ies'}"
    )
