"""`leap sync`: bring recordings in from every enabled source (or the ones named)."""

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
    "result",
]


def sync(
    ctx: typer.Context,
    sources: Annotated[
        list[str] | None,
        typer.Option("--source", help="Only this source (repeat for several).", show_default=False),
    ] = None,
    date_from: Annotated[str | None, typer.Option("--from", help="YYYY-MM-DD or 30d.")] = None,
    date_to: Annotated[str | None, typer.Option("--to", help="YYYY-MM-DD.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change.")] = False,
) -> None:
    """Sync recordings from sources: new ones are added, matched and blank-checked."""
    state = state_of(ctx)
    req = SyncRequest(
        sources=tuple(sources or ()),
        date_from=parse_date(date_from, option="--from") if date_from else None,
        date_to=parse_date(date_to, option="--to") if date_to else None,
        dry_run=dry_run,
    )
    with make_http_client() as http:
        results = Syncer(state.runtime(), state.scope(), http).run(req)
    if not results:  # no --source and no enabled source: say why, not an empty table
        with state.context() as c:
            disabled = c.repos.sources.count()
        state.output.warning(_nothing_to_sync(disabled))
        if state.as_json:
            state.output.json([])
        return
    if state.as_json:
        state.output.json([r.as_dict() for r in results])
    else:
        # A source's error is said once, as the error line below (overall), not in a cell a
        # dozen rows high.
        rows = [r.as_dict() | {"result": "failed" if r.error else "ok"} for r in results]
        state.output.table(rows, COLUMNS, title="Sync (dry run)" if dry_run else "Sync")
        for r in results:
            for w in r.warnings:
                state.output.warning(f"{r.source}: {w}")
    overall(results)


def _nothing_to_sync(disabled: int) -> str:
    if disabled:
        return (
            f"no enabled sources ({disabled} disabled): enable one with `leap source enable NAME`"
        )
    return (
        "no sources: add one with `leap source add local NAME PATH` "
        "or `leap source add zoom NAME --credential C`"
    )
