"""`leap db ...`: schema migrations."""

from __future__ import annotations

import typer

from leap.cli._run import state_of
from leap.db.engine import redact_url
from leap.db.migrate import current_revision, head_revision, upgrade

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_cmd(ctx: typer.Context) -> None:
    """Migrate the database to the schema this LEAP needs."""
    state = state_of(ctx)
    runtime = state.runtime(check_schema=False)
    before = current_revision(runtime.engine)
    upgrade(runtime.engine)
    after = current_revision(runtime.engine)
    if state.as_json:
        state.output.json({"from": before, "to": after})
    else:
        state.output.message(f"database at {after} (was {before or 'empty'})")


@app.command("current")
def current(ctx: typer.Context) -> None:
    """Show the database's schema revision and the one this LEAP needs."""
    state = state_of(ctx)
    runtime = state.runtime(check_schema=False)
    cur, head = current_revision(runtime.engine), head_revision(runtime.engine)
    state.output.record(
        {
            "database": redact_url(state.settings.database_url),
            "current": cur,
            "head": head,
            "at_head": cur == head,
        }
    )
