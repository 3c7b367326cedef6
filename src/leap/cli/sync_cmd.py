"""`leap sync`: bring recordings in from every enabled source (or one)."""

from __future__ import annotations

from typing import Annotated

import typer

from leap.cli._filters import parse_date
from leap.cli._run import state_of
from leap.providers.http import make_http_client
from leap.services.sync import Syncer, SyncRequest, overall

COLUMNS = [
    "source",
    "new",
    "updated",
    "unchanged",
    "skipped",
    "blank",
    "matched",
    "unmatched",
    "error",
]


def sync(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="YYYY-MM-DD or 30d.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="YYYY-MM-DD.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change.")] = False,
) -> None:
    """Sync recordings from sources: new ones are added, matched and blank-checked."""
    state = state_of(ctx)
    req = SyncRequest(
        source=source,
        date_from=parse_date(date_from, option="--from") if date_from else None,
        date_to=parse_date(date_to, option="--to") if date_to else None,
        dry_run=dry_run,
    )
    with make_http_client() as http:
        results = Syncer(state.runtime(), state.scope(), http).run(req)
    if state.as_json:
        state.output.json([r.as_dict() for r in results])
    else:
        state.output.table(
            [r.as_dict() for r in results], COLUMNS, title="Sync (dry run)" if dry_run else "Sync"
        )
        for r in results:
            for w in r.warnings:
                state.output.warning(f"{r.source}: {w}")
    overall(results)
