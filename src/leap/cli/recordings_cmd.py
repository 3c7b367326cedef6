"""`leap recordings ...`: list with FILTERS, show one, re-match."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Annotated, Any

import typer

from leap.cli import _filters as F
from leap.cli import _selection as Sel
from leap.cli._bulk import describe
from leap.cli._output import natural_widths, table_width
from leap.cli._run import AppState, state_of
from leap.errors import LeapError, NotFound, PartialFailure, UsageError
from leap.services import audit, recordings
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


def _chosen(
    state: AppState, ids: list[str] | None, ids_from: str | None, filtered: bool
) -> tuple[list[int] | None, list[int]]:
    """(the ids given, or None for FILTERS; those of them the acting user cannot see).
    Another user's recording is hidden by the scope, so it is "not found" like a missing one."""
    given = Sel.choose(ids, ids_from, filtered=filtered)
    if not given:
        return given, []
    with state.context() as c:
        found = recordings.existing_ids(c, given)
    missing = [i for i in given if i not in found]
    if len(missing) == len(given):  # nothing to act on: one error line, exit 3
        raise NotFound(
            f"recording {given[0]} not found"
            if len(given) == 1
            else f"recordings {Sel.summary(given)} not found"
        )
    for rid in missing[:20]:
        state.output.warning(f"recording {rid} not found")
    if len(missing) > 20:
        state.output.warning(f"... and {len(missing) - 20} more recordings not found")
    return given, missing


@app.command("rematch")
@F.with_filters
def rematch(
    ctx: typer.Context,
    ids: Sel.Ids = None,
    ids_from: Sel.IdsFrom = None,
    *,
    filters: RecordingFilter,
    filtered: bool,
) -> None:
    """Match the selected recordings against the templates again (not those in progress)."""
    state = state_of(ctx)
    given, missing = _chosen(state, ids, ids_from, filtered)
    if given is not None:
        if not given:
            state.output.warning("no recordings selected; nothing to do")
            return
        filters = RecordingFilter(ids=[i for i in given if i not in set(missing)])
    with state.context() as c:
        s = recordings.rematch(c, filters)
    if s.examined == 0 and filtered:
        state.output.warning("no recordings match the filters (or all are in progress)")
    out = {"examined": s.examined, "mapped": s.mapped, "changed": len(s.changed)}
    if state.as_json:
        state.output.json(out | {"changed_ids": s.changed, "not_found": missing})
    else:
        state.output.message(f"examined {s.examined}, mapped {s.mapped}, changed {len(s.changed)}")
    if missing:
        raise PartialFailure(f"{len(missing)} of {len(given or [])} recording(s) not found")


@app.command("delete")
@F.with_filters
def delete(
    ctx: typer.Context,
    ids: Sel.Ids = None,
    ids_from: Sel.IdsFrom = None,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete.")] = False,
    *,
    filters: RecordingFilter,
    filtered: bool,
) -> None:
    """Delete recordings: their rows, runs, targets and media files (not the source's copy)."""
    state = state_of(ctx)
    given, missing = _chosen(state, ids, ids_from, filtered)
    if given is None and not filtered:
        raise UsageError("give recording ids or at least one filter (e.g. --source S)")
    gone = set(missing)
    with state.context() as c:
        if given is None:
            chosen = [r.id for r in recordings.select(c, filters)]
        else:
            chosen = [i for i in given if i not in gone]
        titles = {r.id: r.title for r in recordings.select(c, RecordingFilter(ids=chosen))}
    if not chosen and not missing:
        state.output.warning(
            "no recordings "
            + ("selected" if given is not None else "match the filters")
            + "; nothing to do"
        )
        return
    if not yes:
        for rid in chosen:
            state.output.message(f"would delete recording {rid}: {titles.get(rid, '')}")
        raise UsageError(f"deleting {len(chosen)} recording(s) and their media files needs --yes")
    rows: list[dict[str, Any]] = [
        {
            "recording_id": rid,
            "deleted": False,
            "error": f"recording {rid} not found",
            "exit_code": 3,
        }
        for rid in missing
    ]
    media = state.settings.media_path
    for rid in chosen:
        try:
            with state.context() as c:
                rec, folder = recordings.delete(c, rid)
                owner = rec.user_id
        except LeapError as exc:
            rows.append(
                {
                    "recording_id": rid,
                    "deleted": False,
                    "error": exc.message,
                    "exit_code": exc.exit_code,
                }
            )
            continue
        # After the commit: a rolled-back delete must still have its files.
        files = recordings.remove_media(media, owner, folder)
        rows.append({"recording_id": rid, "deleted": True, "files_removed": files, "error": None})
    order = {rid: n for n, rid in enumerate(given if given is not None else chosen)}
    rows.sort(key=lambda r: order.get(r["recording_id"], len(order)))
    if state.as_json:
        state.output.json(rows)
    for row in rows:
        if row["deleted"]:
            if not state.as_json:
                state.output.message(f"recording {row['recording_id']}: deleted")
        elif len(rows) > 1 and row["recording_id"] not in gone:  # not-found ones: said above
            state.output.warning(f"recording {row['recording_id']}: {row['error']}")
    failed = [r for r in rows if not r["deleted"]]
    if not failed:
        return
    if len(failed) == len(rows):
        err = LeapError(failed[0]["error"])
        err.exit_code = failed[0]["exit_code"]
        raise err
    raise PartialFailure(f"{len(failed)} of {len(rows)} recording(s) were not deleted")


def _edit_many(
    state: AppState,
    what: str,
    ids: list[str] | None,
    ids_from: str | None,
    filters: RecordingFilter,
    filtered: bool,
    assignments: list[str],
    reset: bool,
) -> int | None:
    """`recordings config|meta` over a SELECTION: the same --set/--reset on each, all in one
    unit of work (a value refused for one recording changes none). None when the selection
    is one id: the command then shows (and edits) that recording as before."""
    given = Sel.choose(ids, ids_from, filtered=filtered)
    if given is not None and len(given) == 1 and ids_from is None:
        return None
    if given is None and not filtered:
        raise UsageError("give a recording id, or ids or FILTERS with --set or --reset")
    if not (assignments or reset):
        raise UsageError(
            f"recordings {what} over several recordings edits them: add --set KEY=VALUE or "
            "--reset (one id alone shows its values)"
        )
    given, missing = _chosen(state, ids, ids_from, filtered)
    with state.context() as c:
        chosen = (
            [r.id for r in recordings.select(c, filters)]
            if given is None
            else [i for i in given if i not in set(missing)]
        )
        if not chosen:
            state.output.warning("no recordings match the filters; nothing to do")
            return 0
        done = recordings.edit_many(c, chosen, assignments, reset=reset, meta=what == "meta")
        audit.record_bulk(
            c,
            verb=what,
            selection=Sel.summary(given) if given is not None else describe(filters),
            selected=len(chosen) + len(missing),
            done=done,
            refused=len(missing),
        )
    state.output.done(
        {"changed": done, "recording_ids": chosen, "not_found": missing},
        f"{what} overrides {'reset' if reset and not assignments else 'set'} on {done} "
        "recording(s)",
    )
    if missing:
        raise PartialFailure(f"{len(missing)} of {len(missing) + done} recording(s) not found")
    return done


@app.command("config")
@F.with_filters
def config(
    ctx: typer.Context,
    ids: Sel.Ids = None,
    ids_from: Sel.IdsFrom = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="KEY=VALUE override (repeatable).")
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Drop every override.")] = False,
    *,
    filters: RecordingFilter,
    filtered: bool,
) -> None:
    """The resolved processing config and where each value comes from; edit overrides."""
    state = state_of(ctx)
    args = (ids, ids_from, filters, filtered, set_ or [], reset)
    if _edit_many(state, "config", *args) is not None:
        return
    recording_id = Sel.parse_ids(ids or [])[0]
    with state.context() as c:
        resolved = recordings.configure(c, recording_id, set_ or [], reset=reset)
    if state.as_json:
        state.output.json({"config": resolved.values, "origins": resolved.origins})
        return
    rows = [{"key": k, "value": resolved.get(k), "origin": o} for k, o in resolved.origins.items()]
    state.output.table(rows, ["key", "value", "origin"], title=f"recording {recording_id}")


@app.command("meta")
@F.with_filters
def meta(
    ctx: typer.Context,
    ids: Sel.Ids = None,
    ids_from: Sel.IdsFrom = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="KEY=VALUE manual override (repeatable).")
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Drop every manual override.")] = False,
    preview: Annotated[
        bool, typer.Option("--preview", help="Show exactly what would be sent, per preset.")
    ] = False,
    *,
    filters: RecordingFilter,
    filtered: bool,
) -> None:
    """Upload metadata per preset: preset < template < manual override, with origins."""
    state = state_of(ctx)
    if _edit_many(state, "meta", ids, ids_from, filters, filtered, set_ or [], reset) is not None:
        if preview:
            state.output.warning("--preview shows one recording: give its id alone")
        return
    recording_id = Sel.parse_ids(ids or [])[0]
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
