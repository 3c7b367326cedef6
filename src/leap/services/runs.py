"""Pipeline runs in the database: start (with the per-recording lock), finish or fail a
stage, cancel, retry, and the status views. The database is the truth; queue messages only
carry stage ids (Huey deletes a message before running it)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from leap import states, views
from leap.context import Context
from leap.db.base import utcnow
from leap.db.models import PipelineRun, Recording, StageResult
from leap.domain import RecordingStatus, RunStatus, Stage, StageStatus
from leap.errors import Conflict, LeapError, NotFound, QuotaExceeded, UsageError
from leap.services import metering, notify
from leap.specs import startable
from leap.specs.processing import Resolved, processing_layers, resolve

STAGE_TASK = "leap.stage"
# What to do about a recording that is being processed (also the CLI's line for it).
FOLLOW = (
    ": 'leap status {rid}' follows it; if its process stopped, "
    "'leap process {rid} --now' resumes it; 'leap cancel {rid}' stops it"
)
# The error a refused start raises, by the decision's exit code (docs/cli.md).
_REFUSAL: dict[int, type[LeapError]] = {
    startable.USAGE: UsageError,
    startable.CONFLICT: Conflict,
    startable.NOT_FOUND: NotFound,
}
OPEN = (StageStatus.PENDING.value, StageStatus.QUEUED.value, StageStatus.RUNNING.value)


def resolved_config(ctx: Context, rec: Recording) -> Resolved:
    user = ctx.repos.users.require(rec.user_id)
    tpl = ctx.repos.templates.get(rec.template_id) if rec.template_id is not None else None
    return resolve(
        processing_layers(
            user.defaults.get("processing", {}), tpl.processing if tpl else None, rec.overrides
        )
    )


def start_run(
    ctx: Context, recording_id: int, *, stages: list[str] | None = None, force: bool = False
) -> PipelineRun:
    """Start one run (automation, `leap approve`); `leap process` and the stage verbs start
    many a page at a time (services/bulk_start.py), judged by the same decision."""
    rec = ctx.repos.recordings.require(recording_id)
    cfg = resolved_config(ctx, rec)
    planned = stages or list(cfg.values["stages"])
    facts = startable.facts_of(rec)
    # Whether earlier runs finished these stages is not asked here: a single start redoes
    # nothing either way (outputs are reused), and its caller wants the run.
    decision = startable.decide(facts, planned, force=force, skip_done=False)
    if not decision.act:
        hint = FOLLOW.format(rid=rec.id) if decision.exit_code == startable.CONFLICT else ""
        raise _REFUSAL.get(decision.exit_code, UsageError)(
            f"recording {rec.id}: {decision.reason}{hint}"
        )
    budget = _take_quota(ctx, rec)
    run = ctx.repos.runs.add(
        PipelineRun(
            recording_id=rec.id,
            user_id=rec.user_id,
            stages=planned,
            config=cfg.values,
            forced=force,
        )
    )
    # The per-recording lock: one atomic UPDATE, so two processes can never both win.
    if not ctx.repos.recordings.update_where(
        {"active_run_id": run.id}, id=rec.id, active_run_id=None
    ):
        ctx.session.refresh(rec)
        raise Conflict(
            f"recording {rec.id}: already being processed (run {rec.active_run_id})"
            + FOLLOW.format(rid=rec.id)
        )
    now = utcnow()
    attempts = int(cfg.values["retries"]["max_attempts"])
    first: StageResult | None = None
    for pos, name in enumerate(planned):
        st = ctx.repos.stages.add(
            StageResult(
                run_id=run.id,
                recording_id=rec.id,
                user_id=rec.user_id,
                name=name,
                position=pos,
                max_attempts=attempts,
                status=(StageStatus.QUEUED if pos == 0 else StageStatus.PENDING).value,
                queued_at=now if pos == 0 else None,
            )
        )
        first = first or st
    metering.record_starts(ctx, {rec.user_id: budget}, {rec.id: rec.user_id})
    rec.status = states.check(rec.status, RecordingStatus.QUEUED).value
    rec.progress, rec.error = 0, None
    assert first is not None
    ctx.defer_enqueue(STAGE_TASK, stage_id=first.id)
    return run


def _take_quota(ctx: Context, rec: Recording) -> metering.Budget:
    """The owner's quota for one start, with their row locked (services/metering.py), as a
    bulk start takes it: QuotaExceeded naming the limit when it does not fit."""
    budget = metering.budget(ctx, rec.user_id, lock=True)
    budget.learn(ctx, [rec.id])
    refusal = budget.take(rec.id)
    if refusal is not None:
        raise QuotaExceeded(f"recording {rec.id}: {refusal.message}", refusal.resets_at)
    return budget


def claim(ctx: Context, stage_id: int, worker: str) -> bool:
    """Take a queued stage for this worker: one atomic UPDATE, so a stage runs once."""
    return ctx.repos.stages.claim(stage_id, worker, utcnow())


FINISHED = (StageStatus.DONE.value, StageStatus.SKIPPED.value)
# A stage that ended without finishing has no honest percentage: its last fraction (even
# 100 %, when the work was whole but its check failed) would read as work done.
UNFINISHED = (StageStatus.FAILED.value, StageStatus.CANCELLED.value)


def stage_fraction(st: StageResult) -> float | None:
    """How much of a stage is done, from its status first: a finished stage is whole (a
    reused output reports no progress), a waiting one has done nothing yet, only a running
    one has a fraction of its own; None for a stage that failed or was cancelled."""
    if st.status in FINISHED:
        return 1.0
    if st.status in UNFINISHED:
        return None
    if st.status == StageStatus.RUNNING.value:
        return max(0.0, min(1.0, st.progress))
    return 0.0


def progress_of(ctx: Context, run: PipelineRun) -> int:
    """The run's percentage: each stage weighs the same and counts what `stage_fraction`
    says, so it always agrees with the stages `leap status` shows."""
    rows = ctx.repos.stages.list(run_id=run.id)
    done = sum(stage_fraction(r) or 0.0 for r in rows)
    return int(100 * done / max(len(rows), 1))


def finish_stage(
    ctx: Context,
    stage_id: int,
    worker: str,
    *,
    artifacts: dict[str, str],
    result: dict[str, Any],
    skipped: bool,
) -> StageResult | None:
    """Record a stage's success and queue the next one; None if this worker lost the lease."""
    st = ctx.repos.stages.require(stage_id)
    if st.status != StageStatus.RUNNING.value or st.lease_owner != worker:
        return None  # the reconciler gave the stage to another worker, or it was cancelled
    now = utcnow()
    st.status = (StageStatus.SKIPPED if skipped else StageStatus.DONE).value
    # What earlier attempts saved (errors, re-queues after crashes, a batch job id) stays
    # beside the result.
    earlier = {k: v for k, v in st.result.items() if k != "waiting"}
    st.artifacts, st.result, st.finished_at, st.progress = (
        artifacts,
        earlier | result,
        now,
        1.0,
    )
    st.error, st.lease_owner = None, None
    run = ctx.repos.runs.require(st.run_id)
    rec = ctx.repos.recordings.require(st.recording_id)
    # The upload stage names the targets it kept back for `leap approve` (docs/approval.md).
    held = bool(result.get(RecordingStatus.AWAITING_APPROVAL.value))
    if not skipped:
        rec.status = states.check(rec.status, states.done(Stage(st.name), held=held)).value
    nxt = ctx.repos.stages.next_pending(run.id)
    if nxt is not None:
        nxt.status, nxt.queued_at = StageStatus.QUEUED.value, now
        ctx.defer_enqueue(STAGE_TASK, stage_id=nxt.id)
    else:
        _end_run(ctx, run, rec, RunStatus.DONE)
        done = {
            r.name
            for r in ctx.repos.stages.list(run_id=run.id)
            if r.status == StageStatus.DONE.value
        }
        final = states.finished(uploaded=Stage.UPLOAD.value in done, held=held)
        rec.status = states.check(rec.status, final).value
        notify.recording_published(ctx, rec, run)  # if this run published anything
    rec.progress = progress_of(ctx, run)
    return st


def fail_stage(
    ctx: Context,
    stage_id: int,
    worker: str | None,
    error: str,
    *,
    retryable: bool,
    exit_code: int = 1,
) -> tuple[StageResult, float | None] | None:
    """A stage failed: back to the queue with a delay while attempts remain (retryable
    errors only), else the run fails. Returns the stage and the retry delay (None: final)."""
    st = ctx.repos.stages.require(stage_id)
    if worker is not None and (st.status != StageStatus.RUNNING.value or st.lease_owner != worker):
        return None
    run = ctx.repos.runs.require(st.run_id)
    rec = ctx.repos.recordings.require(st.recording_id)
    history = [*list(st.result.get("errors", []))[-9:], error]
    st.result = {**st.result, "errors": history}
    st.error, st.lease_owner, st.progress = error, None, 0.0
    if retryable and st.attempts < st.max_attempts:
        r = run.config.get("retries", {})
        delay = min(
            float(r.get("base_delay_s", 5.0)) * 2 ** (st.attempts - 1),
            float(r.get("max_delay_s", 300.0)),
        )
        st.status, st.queued_at = StageStatus.QUEUED.value, utcnow()
        st.not_before = utcnow() + timedelta(seconds=delay)
        rec.status = states.check(rec.status, RecordingStatus.QUEUED).value
        rec.progress = progress_of(ctx, run)
        ctx.defer_enqueue(STAGE_TASK, delay=delay, stage_id=st.id)
        return st, delay
    st.status, st.finished_at = StageStatus.FAILED.value, utcnow()
    st.result = {**st.result, "exit_code": exit_code}  # the CLI's code for this kind of error
    for other in ctx.repos.stages.list(run_id=run.id, status=StageStatus.PENDING.value):
        other.status = StageStatus.CANCELLED.value
    rec.error = f"{st.name}: {error}"
    rec.status = states.check(rec.status, RecordingStatus.FAILED).value
    _end_run(ctx, run, rec, RunStatus.FAILED, error=rec.error)
    rec.progress = progress_of(ctx, run)  # the stages that did finish, no more
    notify.stage_failed(ctx, rec, st, error)
    return st, None


def save_state(ctx: Context, stage_id: int, worker: str, state: dict[str, Any]) -> bool:
    """Merge `state` into a running stage's result now (lease-checked)."""
    st = ctx.repos.stages.require(stage_id)
    if st.status != StageStatus.RUNNING.value or st.lease_owner != worker:
        return False
    st.result = {**st.result, **state}
    return True


def wait_stage(ctx: Context, stage_id: int, worker: str, delay: float, note: str) -> bool:
    """The stage waits on a remote job: back to the queue after `delay`, not as a failure."""
    st = ctx.repos.stages.require(stage_id)
    if st.status != StageStatus.RUNNING.value or st.lease_owner != worker:
        return False
    st.status, st.lease_owner, st.progress = StageStatus.QUEUED.value, None, 0.0
    st.attempts = max(0, st.attempts - 1)  # polling is not a failed attempt
    st.queued_at = utcnow()
    st.not_before = utcnow() + timedelta(seconds=delay)
    st.result = {**st.result, "waiting": note}
    rec = ctx.repos.recordings.require(st.recording_id)
    rec.progress = progress_of(ctx, ctx.repos.runs.require(st.run_id))
    ctx.defer_enqueue(STAGE_TASK, delay=delay, stage_id=st.id)
    return True


def _end_run(
    ctx: Context, run: PipelineRun, rec: Recording, status: RunStatus, error: str | None = None
) -> None:
    run.status, run.finished_at, run.error = status.value, utcnow(), error
    if rec.active_run_id == run.id:
        rec.active_run_id = None


def active_run(ctx: Context, rec: Recording) -> PipelineRun | None:
    return ctx.repos.runs.get(rec.active_run_id) if rec.active_run_id else None


def cancel(ctx: Context, recording_id: int) -> PipelineRun:
    rec = ctx.repos.recordings.require(recording_id)
    run = active_run(ctx, rec)
    if run is None:
        raise NotFound(f"recording {recording_id} has no run in progress")
    for st in ctx.repos.stages.list(run_id=run.id):
        if st.status in OPEN:
            st.status, st.lease_owner = StageStatus.CANCELLED.value, None
    rec.status = states.check(rec.status, RecordingStatus.CANCELLED).value
    _end_run(ctx, run, rec, RunStatus.CANCELLED, error="cancelled")
    rec.progress = progress_of(ctx, run)
    return run


def retry(ctx: Context, recording_id: int, stage: str | None = None) -> PipelineRun:
    """Run the last run again from its failed stage (or from `stage`), keeping what is done."""
    rec = ctx.repos.recordings.require(recording_id)
    if rec.active_run_id is not None:
        raise Conflict(f"recording {recording_id} is being processed (run {rec.active_run_id})")
    run = ctx.repos.runs.latest_for(rec.id)
    if run is None:
        raise NotFound(f"recording {recording_id} was never processed: use 'leap process'")
    rows = ctx.repos.stages.list(run_id=run.id, order_by=(StageResult.position,))
    if stage is not None:
        start = next((r for r in rows if r.name == stage), None)
        if start is None:
            raise UsageError(
                f"run {run.id} has no stage '{stage}' (it has: {', '.join(r.name for r in rows)})"
            )
    else:
        start = next(
            (
                r
                for r in rows
                if r.status in (StageStatus.FAILED.value, StageStatus.CANCELLED.value)
            ),
            None,
        )
        if start is None:
            raise UsageError(
                f"recording {recording_id}'s last run has no failed stage; "
                "use --stage S to run a stage again"
            )
    # A retry is a start like any other for the owner's quota (services/metering.py).
    budget = _take_quota(ctx, rec)
    if not ctx.repos.recordings.update_where(
        {"active_run_id": run.id}, id=rec.id, active_run_id=None
    ):
        raise Conflict(f"recording {recording_id} is being processed")
    metering.record_starts(ctx, {rec.user_id: budget}, {rec.id: rec.user_id})
    now = utcnow()
    for r in rows:
        if r.position < start.position:
            continue
        r.status = (StageStatus.QUEUED if r is start else StageStatus.PENDING).value
        r.attempts, r.not_before, r.lease_owner, r.error = 0, None, None, None
        r.queued_at = now if r is start else None
        r.finished_at, r.progress = None, 0.0
    run.status, run.finished_at, run.error = RunStatus.ACTIVE.value, None, None
    ctx.session.refresh(rec)
    rec.status = states.check(rec.status, RecordingStatus.QUEUED).value
    rec.error = None
    rec.progress = progress_of(ctx, run)  # the stages before `start` stay done
    ctx.defer_enqueue(STAGE_TASK, stage_id=start.id)
    return run


def failed_since(ctx: Context, since: datetime | None) -> list[Recording]:
    recs = ctx.repos.recordings.list(status=RecordingStatus.FAILED.value)
    return [r for r in recs if since is None or r.updated_at >= since]


def run_view(ctx: Context, run: PipelineRun) -> dict[str, Any]:
    rows = ctx.repos.stages.list(run_id=run.id, order_by=(StageResult.position,))
    return views.run_view(run, rows, [stage_fraction(s) for s in rows])


def current_artifacts(
    ctx: Context, recording_id: int
) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Newest done result of each stage, across runs: what the recording has now."""
    artifacts: dict[str, str] = {}
    results: dict[str, dict[str, Any]] = {}
    for st in ctx.repos.stages.done_for(recording_id):
        artifacts.update(st.artifacts)
        results[st.name] = st.result
    return artifacts, results
