"""`leap approve`: publish what the approval gate holds (docs/approval.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import httpx
import typer

from leap.cli import _filters as F
from leap.cli import _plan
from leap.cli import _selection as Sel
from leap.cli._run import AppState, state_of
from leap.cli.pipeline_cmd import _in_order, _Sender, _warn_without_daemon
from leap.db.base import utcnow
from leap.errors import LeapError, PartialFailure, QueueUnavailable, UsageError
from leap.providers.http import make_http_client
from leap.services import approval, audit, recordings
from leap.services.recordings import RecordingFilter
from leap.specs.approval import Plan

APPROVED, SKIPPED, FAILED = "approved", "skipped", "failed"


@F.with_filters
def approve(
    ctx: typer.Context,
    ids: Sel.Ids = None,
    ids_from: Sel.IdsFrom = None,
    publish_at: Annotated[
        str | None,
        typer.Option(
            "--publish-at",
            metavar="TIME",
            help="Publish at this future time (ISO 8601; no offset: your timezone).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan; change nothing.")
    ] = False,
    *,
    filters: RecordingFilter,
    filtered: bool,
) -> None:
    """Approve recordings held for approval: publish what awaits it on each platform."""
    state = state_of(ctx)
    given = Sel.choose(ids, ids_from, filtered=filtered)
    if given is None and not filtered:
        raise UsageError("give recording ids or at least one filter (e.g. --awaiting-approval)")
    now = utcnow()
    with state.context() as c:
        when = approval.parse_when(c, publish_at, now) if publish_at is not None else None
        if given is not None:
            everything, chosen = given, recordings.existing_ids(c, given)
        else:  # newest first, as `recordings list` shows them
            everything = [r.id for r in recordings.select(c, filters)]
            chosen = set(everything)
        if dry_run:
            plans = [
                approval.plan(c, i, publish_at=when, now=now) for i in everything if i in chosen
            ]
    if not everything:
        what = "selected" if given is not None else "match the filters"
        state.output.warning(f"no recordings {what}; nothing to do")
        return
    missing = [i for i in everything if i not in chosen]
    if dry_run:
        rows = [_plan.row(p.recording_id, p.title, _would(p), p.reason) for p in plans]
        rows += [_plan.row(i, "", _plan.SKIP, "not found") for i in missing]
        _plan.show(state, _in_order(everything, rows), verb="approve")
        return
    sender = _Sender(None).install(state.runtime())
    with make_http_client() as http:
        rows = [_approve_one(state, i, when, http, sender) for i in everything if i in chosen]
    rows = _in_order(everything, rows + [_not_found(i) for i in missing])
    _audit(state, everything, rows, publish_at)
    _report(state, rows, sender)


def _audit(
    state: AppState, ids: list[int], rows: list[dict[str, Any]], publish_at: str | None
) -> None:
    """Every approve run is one audit entry (its own unit of work: each recording's approval
    is already committed on its own)."""
    with state.context() as c:
        audit.record_bulk(
            c,
            verb="approve",
            selection=Sel.summary(ids),
            selected=len(ids),
            done=sum(1 for r in rows if r["result"] == APPROVED),
            refused=sum(1 for r in rows if r["result"] == FAILED),
            skipped=sum(1 for r in rows if r["result"] == SKIPPED),
            publish_at=publish_at,
        )


def _would(plan: Plan) -> str:
    return "approve" if plan.acts else _plan.SKIP


def _approve_one(
    state: AppState, rid: int, when: datetime | None, http: httpx.Client, sender: _Sender
) -> dict[str, Any]:
    """One recording: plan and record the YouTube bodies, send them, then the one unit of
    work that approves (services.approval says why in this order)."""
    plan: Plan | None = None
    try:
        with state.context() as c:
            plan = approval.plan(c, rid, publish_at=when, now=utcnow())
            if plan.acts:
                approval.begin(c, plan)
        if plan.refused is not None:  # a credential known dead: nothing is tried
            return _row(plan, FAILED, error=plan.refused, exit_code=5)
        if not plan.acts:
            return _row(plan, SKIPPED)
        sent = approval.send(state.runtime(), state.scope(), plan, http)
        with state.context() as c:
            outcome = approval.finish(c, plan, sent)
            run_id = outcome.run.id if outcome.run is not None else None
    except LeapError as exc:
        title = plan.title if plan is not None else None
        return {
            **_not_found(rid),
            "title": title,
            "reason": plan.reason if plan is not None else None,
            "error": exc.message,
            "exit_code": exc.exit_code,
        }
    row = _row(plan, APPROVED, approved=outcome.approved, run_id=run_id)
    if run_id is not None and sender.failure is not None:
        row["sent"] = False  # saved; leapd's reconciler sends it once the queue answers
    if sent.failed:
        first = next(iter(sent.failed.values()))
        message = "; ".join(f.message for f in sent.failed.values())
        row.update(result=FAILED, error=message, exit_code=first.exit_code)
    return row


def _row(plan: Plan, result: str, **more: Any) -> dict[str, Any]:
    return {
        "recording_id": plan.recording_id,
        "title": plan.title,
        "result": result,
        "reason": plan.reason,  # the same words as --dry-run's
        "approved": [],
        "run_id": None,
        "error": None,
        **more,
    }


def _not_found(rid: int) -> dict[str, Any]:
    return {
        "recording_id": rid,
        "title": None,
        "result": FAILED,
        "reason": None,
        "approved": [],
        "run_id": None,
        "error": f"recording {rid} not found",
        "exit_code": 3,
    }


def _report(state: AppState, rows: list[dict[str, Any]], sender: _Sender) -> None:
    failed = [r for r in rows if r["result"] == FAILED]
    if state.as_json:
        state.output.json(rows)
    elif not (failed and len(rows) == 1):  # a lone failure is said once, as the error
        for r in rows:
            rid = r["recording_id"]
            if r["result"] == FAILED:
                state.output.warning(f"recording {rid}: {r['error']}")
            elif r["result"] == SKIPPED:
                state.output.message(f"recording {rid}: skipped ({r['reason']})")
            else:
                run = f"; upload run {r['run_id']} queued" if r["run_id"] else ""
                state.output.message(f"recording {rid}: approved ({r['reason']}){run}")
    queued = [r["recording_id"] for r in rows if r.get("run_id") and r.get("sent") is not False]
    _warn_without_daemon(state, queued, len(queued), "process")
    unsent = [str(r["recording_id"]) for r in rows if r.get("sent") is False]
    if sender.failure is not None and unsent:
        raise QueueUnavailable(
            f"{sender.failure.message.rstrip('.')}. The upload run(s) of recording(s) "
            f"{', '.join(unsent)} are saved and will start once leapd reaches the queue"
        )
    if not failed:
        return
    if len(failed) == len(rows):
        err = LeapError(failed[0]["error"] or "failed")
        err.exit_code = failed[0].get("exit_code", 1)
        raise err
    raise PartialFailure(f"{len(failed)} of {len(rows)} recording(s) were not approved")
