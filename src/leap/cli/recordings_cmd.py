"""`leap recordings ...`: list with FILTERS, show one, re-match."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Annotated, Any

import typer

from leap.cli import _filters as F
from leap.cli._output import natural_widths, table_width
from leap.cli._run import state_of
from leap.services import recordings
from leap.services.recordings import RecordingFilter

app = typer.Typer(help="Recordings.", no_args_is_help=True)

TABLE_PAGE = 100  # rows in a `recordings list` table without --limit

COLUMNS = [
    "id",
    "start_time",
    "title",
    "source",
    "status",
    "template",
    "duration_s",
    "blank_record",
]
# Left out, in this order, while the table is wider than the terminal: what tells one
# recording from another (id, date, title) and where it stands (status) always stay.
DROPPABLE = ["blank_record", "duration_s", "source", "template"]
# The title is cut with … down to this many cells before another column goes.
TITLE_ROOM = 24


def fit_columns(rows: Sequence[Mapping[str, Any]], width: int) -> list[str]:
    """The columns of `rows` that fit `width` terminal cells, the title counted at
    TITLE_ROOM at most (it is the one column shortened to fit)."""
    natural = natural_widths(rows, COLUMNS)
    natural["title"] = min(natural["title"], TITLE_ROOM)
    columns = list(COLUMNS)
    for name in DROPPABLE:
        if table_width([natural[c] for c in columns]) <= width:
            break
        columns.remove(name)
    return columns


def _shown(row: Mapping[str, Any]) -> dict[str, Any]:
    # The minute is enough to tell recordings apart; the seconds and the Z cost a column.
    start = row.get("start_time")
    return {**row, "start_time": start[:16].replace("T", " ") if start else start}


@app.command("list")
@F.with_filters
def list_(
    ctx: typer.Context,
    wide: Annotated[bool, typer.Option("--wide", help="Every column, nothing cut.")] = False,
    *,
    filters: RecordingFilter,
    filtered: bool,
) -> None:
    """List recordings, newest first."""
    state = state_of(ctx)
    # A table is for reading: one page unless --limit says otherwise (10,000 rows took 23 s
    # to lay out and no one reads them). JSON is for scripts: every row, as asked.
    paged = not state.as_json and filters.limit is None
    query = replace(filters, limit=TABLE_PAGE + 1) if paged else filters
    with state.context() as c:
        rows = recordings.list_views(c, query)
    if state.as_json:
        state.output.json(rows)
        return
    more = paged and len(rows) > TABLE_PAGE
    rows = rows[:TABLE_PAGE] if more else rows
    shown = [_shown(r) for r in rows]
    columns = COLUMNS if wide else fit_columns(shown, state.output.out.width)
    title = f"{len(rows)} recording(s)"
    state.output.table(shown, columns, title=title, shorten="title", wide=wide)
    if more:
        state.output.message(
            f"the newest {TABLE_PAGE} shown; more with --offset {filters.offset + TABLE_PAGE} "
            "(or --limit N; --json lists every one)"
        )


@app.command("show")
def show(ctx: typer.Context, recording_id: F.RecordingId) -> None:
    """Show one recording: files, match, stages, artifacts, targets."""
    state = state_of(ctx)
    with state.context() as c:
        view = recordings.show(c, recording_id)
    state.output.record(view, title=f"recording {recording_id}")


@app.command("rematch")
@F.with_filters
def rematch(ctx: typer.Context, *, filters: RecordingFilter, filtered: bool) -> None:
    """Match the selected recordings against the templates again (not those in progress)."""
    state = state_of(ctx)
    with state.context() as c:
        s = recordings.rematch(c, filters)
    out = {"examined": s.examined, "mapped": s.mapped, "changed": len(s.changed)}
    if state.as_json:
        state.output.json(out | {"changed_ids": s.changed})
    else:
        state.output.message(f"examined {s.examined}, mapped {s.mapped}, changed {len(s.changed)}")


@app.command("config")
def config(
    ctx: typer.Context,
    recording_id: F.RecordingId,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="KEY=VALUE override (repeatable).")
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Drop every override.")] = False,
) -> None:
    """The resolved processing config and where each value comes from; edit overrides."""
    state = state_of(ctx)
    with state.context() as c:
        resolved = recordings.configure(c, recording_id, set_ or [], reset=reset)
    if state.as_json:
        state.output.json({"config": resolved.values, "origins": resolved.origins})
        return
    rows = [{"key": k, "value": resolved.get(k), "origin": o} for k, o in resolved.origins.items()]
    state.output.table(rows, ["key", "value", "origin"], title=f"recording {recording_id}")


@app.command("meta")
def meta(
    ctx: typer.Context,
    recording_id: F.RecordingId,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="KEY=VALUE manual override (repeatable).")
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Drop every manual override.")] = False,
    preview: Annotated[
        bool, typer.Option("--preview", help="Show exactly what would be sent, per preset.")
    ] = False,
) -> None:
    """Upload metadata per preset: preset < template < manual override, with origins."""
    state = state_of(ctx)
    with state.context() as c:
        per_preset = recordings.configure_meta(c, recording_id, set_ or [], reset=reset)
    if state.as_json:
        state.output.json(per_preset)
        return
    for item in per_preset:
        if preview:
            state.output.record(item["request"], title=f"{item['preset']} ({item['platform']})")
            for r in item["repairs"]:
                state.output.warning(f"{item['preset']}: repaired {r['field']}: {r['what']}")
        else:
            rows = [
                {"key": k, "value": item["values"].get(k.split(".")[0]), "origin": o}
                for k, o in item["origins"].items()
            ]
            state.output.table(rows, ["key", "value", "origin"], title=item["preset"])
