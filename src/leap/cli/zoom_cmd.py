"""`leap zoom trash`: move the Zoom cloud copy of safely published recordings to Zoom's
trash (docs/zoom-cleanup.md). The plan is always printed first, from the same decision the
run makes; nothing reaches Zoom without --yes."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from leap.cli import _filters as F
from leap.cli import _plan
from leap.cli import _selection as Sel
from leap.cli._bulk import describe
from leap.cli._run import AppState, state_of
from leap.db.base import utcnow
from leap.errors import NotFound, PartialFailure, UsageError
from leap.providers.http import make_http_client
from leap.services import recordings, zoom_trash
from leap.services.recordings import RecordingFilter
from leap.services.zoom_trash import PlanItem, Result
from leap.specs.zoom_trash import TrashRule

app = typer.Typer(
    help="Zoom cloud recordings: send published ones to Zoom's trash.", no_args_is_help=True
)

VERB = "trash"


@app.command("trash")
@F.with_filters
def trash(
    ctx: typer.Context,
    ids: Sel.Ids = None,
    ids_from: Sel.IdsFrom = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than", metavar="SPAN", help="Only recordings started longer ago (30d, 2w)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; change nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Really move them to Zoom's trash.")] = False,
    *,
    filters: RecordingFilter,
    filtered: bool,
) -> None:
    """Move the Zoom cloud copy of published recordings to Zoom's trash (kept there 30 days)."""
    state = state_of(ctx)
    span = F.parse_span(older_than, option="--older-than") if older_than is not None else None
    given = Sel.choose(ids, ids_from, filtered=filtered)
    if given is None and not filtered:
        raise UsageError("give recording ids or at least one filter (e.g. --template T)")
    rule = TrashRule(
        now=utcnow(),
        older_than=span[0] if span else None,
        older_than_text=span[1] if span else "",
    )
    with state.context() as c:
        chosen = given if given is not None else [r.id for r in recordings.select(c, filters)]
        items = zoom_trash.plan(c, chosen, rule)
    if not chosen:
        state.output.warning(
            f"no recordings {'selected' if given is not None else 'match the filters'}; "
            "nothing to do"
        )
        return
    seen = {i.recording_id for i in items}
    missing = [rid for rid in chosen if rid not in seen]  # another user's, or none at all
    if given is not None and len(missing) == len(given):
        raise NotFound(
            f"recording {given[0]} not found"
            if len(given) == 1
            else f"recordings {Sel.summary(given)} not found"
        )
    _plan.show(
        state, _rows(chosen, items), verb=VERB, dry_run=dry_run or not yes, command="zoom trash"
    )
    if dry_run:
        return
    going = sum(1 for i in items if i.reason is None)
    if not yes:
        if not going:
            state.output.warning("none of them can go to Zoom's trash now; nothing to do")
            return
        raise UsageError(
            f"nothing was trashed: add --yes to move {going} recording(s) to Zoom's trash"
        )
    with make_http_client() as http:
        results = zoom_trash.execute(state.runtime(), state.scope(), items, rule, http)
    results += [Result(rid, zoom_trash.NOT_FOUND, f"recording {rid} not found") for rid in missing]
    order = {rid: n for n, rid in enumerate(chosen)}
    results.sort(key=lambda r: order.get(r.recording_id, len(order)))
    with state.context() as c:
        zoom_trash.audit_run(
            c,
            selection=_selection(given, filters, older_than),
            results=results,
            selected=len(chosen),
        )
    _report(state, items, results)


def _rows(chosen: list[int], items: list[PlanItem]) -> list[dict[str, Any]]:
    """The plan, one row per selected id in order: "trash", or skip with the reason."""
    by_id = {i.recording_id: i for i in items}
    rows = []
    for rid in chosen:
        item = by_id.get(rid)
        if item is None:
            rows.append(_plan.row(rid, "", _plan.SKIP, "not found"))
        else:
            would = VERB if item.reason is None else _plan.SKIP
            rows.append(_plan.row(rid, item.title, would, item.reason))
    return rows


def _selection(given: list[int] | None, filters: RecordingFilter, older_than: str | None) -> str:
    """What was selected, for the audit trail: the ids as ranges, or the filters given."""
    text = Sel.summary(given) if given is not None else describe(filters)
    return text + (f" older-than={older_than.strip()}" if older_than is not None else "")


def _report(state: AppState, items: list[PlanItem], results: list[Result]) -> None:
    """One line per recording acted on (refusals and failures as warnings), or the JSON
    array; exit 8 when Zoom refused or failed any, or an id was not found."""
    planned = {i.recording_id for i in items if i.reason is None}
    if state.as_json:
        state.output.json([r.as_dict() for r in results])
    for r in results:
        if state.as_json:
            break
        rid = r.recording_id
        if r.outcome == zoom_trash.TRASHED:
            state.output.message(f"recording {rid}: moved to Zoom's trash")
        elif r.outcome == zoom_trash.GONE:
            state.output.message(f"recording {rid}: already gone from Zoom ({r.detail})")
        elif r.outcome == zoom_trash.REFUSED:
            state.output.warning(f"recording {rid}: Zoom refused: {r.detail}")
        elif r.outcome == zoom_trash.ERROR:
            state.output.warning(f"recording {rid}: not trashed: {r.detail}")
        elif r.outcome == zoom_trash.SKIPPED and rid in planned:
            # The plan said trash; under its claim the recording said otherwise.
            state.output.warning(f"recording {rid}: skipped: {r.detail}")
    failed = sum(1 for r in results if r.outcome in zoom_trash.FAILED)
    tried = failed + sum(1 for r in results if r.outcome in zoom_trash.DONE)
    missing = sum(1 for r in results if r.outcome == zoom_trash.NOT_FOUND)
    if not failed and not missing:
        return
    why = []
    if failed:
        why.append(f"Zoom refused or failed {failed} of {tried} recording(s); they stay in Zoom")
    if missing:
        why.append(f"{missing} of {len(results)} recording(s) not found")
    raise PartialFailure("; ".join(why))
