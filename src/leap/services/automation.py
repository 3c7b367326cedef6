"""Automation jobs (docs/automation.md): a user's schedule that syncs and processes without a
person. The scheduler in one leapd only enqueues a tick; the tick claims each due firing by
inserting its (job, planned time) row, which the database lets exactly one process do, and
queues the firing; the firing runs the action in a worker and records what it did."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.exc import IntegrityError

from leap.context import Context, Runtime, open_context
from leap.db.base import utcnow
from leap.db.models import AutomationJob, AutomationRun, User
from leap.db.scope import Scope
from leap.domain import RecordingStatus, Role
from leap.errors import Conflict, LeapError, UsageError
from leap.logs import redact
from leap.providers.http import make_http_client
from leap.services import bulk_start, metering, recordings
from leap.services.recordings import RecordingFilter
from leap.specs.automation import JobSpec, action_from_row
from leap.specs.schedule import Schedule, fire_times, parse_schedule, shortest_gap

log = logging.getLogger(__name__)

Send = Callable[[str, dict[str, Any]], None]
FIRE_TASK = "leap.automation.fire"
# Firing statuses, as `leap automation history` shows them.
QUEUED, RUNNING, DONE, FAILED, MISSED = "queued", "running", "done", "failed", "missed"


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands datetimes back naive (they are stored in UTC).
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def zone_of(user: User) -> ZoneInfo:
    """The user's timezone (UTC if the stored name is unknown to this machine)."""
    try:
        return ZoneInfo(user.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def schedule_of(job: AutomationJob) -> Schedule:
    return parse_schedule(job.schedule)


def next_firing(job: AutomationJob, tz: ZoneInfo, after: datetime) -> datetime | None:
    upcoming = fire_times(schedule_of(job), tz, after, after + timedelta(days=400))
    return next(iter(upcoming), None)


# -- saving jobs -----------------------------------------------------------------------------


def _check(ctx: Context, spec: JobSpec) -> None:
    """Everything a saved job needs to be able to fire, named by key."""
    owner = ctx.repos.users.require(_owner_id(ctx))
    if owner.disabled:
        raise UsageError(f"user '{owner.name}' is disabled: enable the user before adding jobs")
    for name in spec.action.sources:
        if ctx.repos.sources.by_name(name) is None:
            raise UsageError(f"action.sources: no source named '{name}'")
    for name in spec.action.templates:
        if ctx.repos.templates.by_name(name) is None:
            raise UsageError(f"action.templates: no template named '{name}'")
    minimum = timedelta(minutes=ctx.settings.automation.min_interval_minutes)
    gap = shortest_gap(spec.schedule)
    if gap < minimum:
        raise UsageError(
            f"schedule: fires every {_span(gap)}, more often than automation."
            f"min_interval_minutes allows ({_span(minimum)})"
        )


def _span(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes / 60:g} h" if minutes >= 60 else f"{minutes:g} min"


def _owner_id(ctx: Context) -> int:
    if ctx.scope.user_id is None:
        raise UsageError("automation jobs belong to a user: give --user NAME")
    return ctx.scope.user_id


def _apply(ctx: Context, job: AutomationJob, spec: JobSpec, now: datetime) -> None:
    job.schedule = spec.schedule.as_dict()
    job.spec = {**spec.action.as_dict(), "dry_run": spec.dry_run}
    was_enabled = job.enabled
    job.enabled = spec.enabled
    if job.last_planned_at is None or (spec.enabled and not was_enabled):
        # A new (or re-enabled) job starts from now: it never fires for its past.
        job.last_planned_at = now
    owner = ctx.repos.users.require(job.user_id)
    job.next_run_at = next_firing(job, zone_of(owner), now) if job.enabled else None


def add(ctx: Context, spec: JobSpec, *, now: datetime | None = None) -> AutomationJob:
    _check(ctx, spec)
    if ctx.repos.automations.by_name(spec.name) is not None:
        raise Conflict(f"automation job '{spec.name}' already exists (use edit)")
    metering.check_room(ctx, "automation_jobs")
    job = ctx.repos.automations.add(AutomationJob(name=spec.name))
    _apply(ctx, job, spec, now or utcnow())
    ctx.session.flush()
    return job


def edit(ctx: Context, name: str, spec: JobSpec, *, now: datetime | None = None) -> AutomationJob:
    job = ctx.repos.automations.require_name(name)
    if spec.name != name:
        raise UsageError(f"name: the file says '{spec.name}', the command '{name}'")
    _check(ctx, spec)
    _apply(ctx, job, spec, now or utcnow())
    ctx.session.flush()
    return job


def set_enabled(
    ctx: Context, name: str, enabled: bool, *, now: datetime | None = None
) -> AutomationJob:
    job = ctx.repos.automations.require_name(name)
    moment = now or utcnow()
    if enabled and not job.enabled:
        job.last_planned_at = moment
    job.enabled = enabled
    owner = ctx.repos.users.require(job.user_id)
    job.next_run_at = next_firing(job, zone_of(owner), moment) if enabled else None
    ctx.session.flush()
    return job


def remove(ctx: Context, name: str) -> None:
    ctx.repos.automations.delete(ctx.repos.automations.require_name(name))


def history(ctx: Context, name: str | None, limit: int = 50) -> list[tuple[str, AutomationRun]]:
    jobs = {j.id: j.name for j in ctx.repos.automations.list()}
    filters: dict[str, Any] = {}
    if name is not None:
        filters["job_id"] = ctx.repos.automations.require_name(name).id
    rows = ctx.repos.automation_runs.list(order_by=(AutomationRun.id.desc(),), **filters)
    return [(jobs.get(r.job_id, "?"), r) for r in rows[:limit]]


def job_view(job: AutomationJob) -> dict[str, Any]:
    schedule = schedule_of(job)
    return {
        "name": job.name,
        "enabled": job.enabled,
        "schedule": schedule.describe(),
        "dry_run": bool(job.spec.get("dry_run")),
        "action": action_from_row(job.spec).as_dict(),
        "next_run_at": _iso(job.next_run_at),
        "last_run_at": _iso(job.last_run_at),
    }


def run_view(job_name: str, run: AutomationRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "job": job_name,
        "planned_at": _iso(run.planned_at),
        "trigger": run.trigger,
        "status": run.status,
        "dry_run": run.dry_run,
        "started_at": _iso(run.started_at),
        "finished_at": _iso(run.finished_at),
        "summary": run.summary,
        "error": run.error,
    }


def _iso(value: datetime | None) -> str | None:
    aware = _aware(value)
    return aware.isoformat().replace("+00:00", "Z") if aware else None


# -- the scheduler's tick ----------------------------------------------------------------------


def tick(runtime: Runtime, send: Send, *, now: datetime | None = None) -> int:
    """Claim every due firing and queue it; returns how many this call claimed.

    Safe to run in several processes at once: a firing is claimed by inserting its
    (job, planned time) row, and only one insert of a pair succeeds."""
    moment = now or datetime.now(UTC)
    grace = timedelta(minutes=runtime.settings.automation.grace_minutes)
    with open_context(runtime, Scope.system_scope()) as ctx:
        due = []
        # Every 15 s: one query for the owners, not one per job.
        owners = {u.id: u for u in ctx.repos.users.list()}
        for job in ctx.repos.automations.list(enabled=True):
            owner = owners.get(job.user_id)
            if owner is None or owner.disabled:
                continue
            tz = zone_of(owner)
            since = _aware(job.last_planned_at) or moment
            planned = list(fire_times(schedule_of(job), tz, since, moment))
            if planned:
                due.append((job.id, job.user_id, planned, tz))
    claimed = 0
    for job_id, user_id, planned, tz in due:
        latest = planned[-1]
        late = moment - latest > grace
        try:
            run_id = _claim(runtime, job_id, user_id, latest, planned, tz, moment, missed=late)
        except IntegrityError:
            continue  # another leapd claimed this planned time first
        if run_id is None:
            continue
        claimed += 1
        if not late:
            try:
                send(FIRE_TASK, {"run_id": run_id})
            except LeapError as exc:
                # The row stays queued; the next tick's sweep sends it again.
                log.warning("automation: could not queue firing %s: %s", run_id, exc.message)
    _resend_stale(runtime, send, moment)
    # The daily digest rides on the same tick: one clock, one claim rule.
    from leap.services import digest

    digest.send_due(runtime, moment)
    return claimed


def _claim(
    runtime: Runtime,
    job_id: int,
    user_id: int,
    latest: datetime,
    planned: list[datetime],
    tz: ZoneInfo,
    moment: datetime,
    *,
    missed: bool,
) -> int | None:
    with open_context(runtime, Scope.system_scope()) as ctx:
        job = ctx.repos.automations.get(job_id)
        if job is None or not job.enabled:
            return None
        last = _aware(job.last_planned_at)
        if last is not None and last >= latest:
            return None  # dealt with by another process since we looked
        summary: dict[str, Any] = {}
        if len(planned) > 1:
            # Missed while leapd was down: they collapse into this one firing.
            summary["coalesced"] = len(planned) - 1
        if missed:
            summary["missed_by_s"] = round((moment - latest).total_seconds())
        run = AutomationRun(
            job_id=job.id,
            user_id=user_id,
            planned_at=latest,
            trigger="schedule",
            status=MISSED if missed else QUEUED,
            dry_run=bool(job.spec.get("dry_run")),
            summary=summary,
            started_at=moment,
            finished_at=moment if missed else None,
            error=(
                "missed: leapd was not running within automation.grace_minutes of the planned time"
                if missed
                else None
            ),
        )
        ctx.session.add(run)
        ctx.session.flush()  # the unique (job, planned_at) insert: the claim itself
        job.last_planned_at = latest
        job.next_run_at = next_firing(job, tz, moment)
        return run.id


def _resend_stale(runtime: Runtime, send: Send, moment: datetime) -> None:
    """Huey delivers at most once: a firing queued but never started (its message lost
    with a killed worker) is sent again after a few minutes."""
    cutoff = moment - timedelta(minutes=5)
    with open_context(runtime, Scope.system_scope()) as ctx:
        stale = [
            r.id
            for r in ctx.repos.automation_runs.list(status=QUEUED)
            if (_aware(r.started_at) or moment) < cutoff
        ]
    for run_id in stale:
        try:
            send(FIRE_TASK, {"run_id": run_id})
        except LeapError:
            return


# -- a firing ----------------------------------------------------------------------------------


def fire(runtime: Runtime, run_id: int, send: Send | None = None) -> dict[str, Any]:
    """Run a claimed firing: sync, then process what matched; record what happened."""
    with open_context(runtime, Scope.system_scope()) as ctx:
        # Taken by one atomic UPDATE: a message sent twice (the stale-firing sweep, two
        # daemons) runs the firing once, on PostgreSQL too, where two readers of "queued"
        # would otherwise both go on.
        if not ctx.repos.automation_runs.update_where(
            {"status": RUNNING, "started_at": utcnow()}, id=run_id, status=QUEUED
        ):
            return {}  # gone, or already taken by another worker
        run = ctx.repos.automation_runs.require(run_id)
        job = ctx.repos.automations.require(run.job_id)
        owner = ctx.repos.users.require(run.user_id)
        if owner.disabled:
            # Claimed before the owner was disabled (docs/users.md): it does not run.
            run.status, run.finished_at = FAILED, utcnow()
            run.error = "cancelled: user disabled"
            return {"status": FAILED, "error": run.error}
        scope = Scope.for_user(owner.id, is_admin=owner.role == Role.ADMIN.value)
        action = action_from_row(job.spec)
        dry = run.dry_run
        name = job.name
    summary: dict[str, Any] = {}
    error: str | None = None
    try:
        summary = _act(runtime, scope, action, dry)
    except _PartialSync as exc:
        summary, error = exc.summary, exc.message
    except LeapError as exc:
        error = exc.message
    except Exception as exc:  # a firing records its failure; it never kills the worker
        log.exception("automation job %s failed", name)
        error = redact(f"internal error: {type(exc).__name__}: {exc}")
    with open_context(runtime, Scope.system_scope()) as ctx:
        ended = ctx.repos.automation_runs.get(run_id)
        if ended is None:  # its user was deleted while it ran (docs/users.md)
            log.info("automation job %s: firing %s is gone (user deleted)", name, run_id)
            return {**summary, "status": "gone", "error": error}
        run = ended
        run.summary = {**run.summary, **summary}
        run.finished_at = utcnow()
        run.status = FAILED if error else DONE
        run.error = error
        job = ctx.repos.automations.require(run.job_id)
        job.last_run_at = run.finished_at
        if error:
            with ctx.as_scope(scope):
                _notify_failure(ctx, name, run_id, error)
    return {**summary, "status": FAILED if error else DONE, "error": error}


def _notify_failure(ctx: Context, name: str, run_id: int, error: str) -> None:
    from leap.services import notify  # only a failed firing needs it

    notify.emit(ctx, "automation_failed", {"job": name, "run_id": run_id, "error": error})


def _act(runtime: Runtime, scope: Scope, action: Any, dry: bool) -> dict[str, Any]:
    from leap.services.sync import Syncer, SyncRequest  # the sync engine: only when firing

    synced: list[dict[str, Any]] = []
    errors: list[str] = []
    with make_http_client() as http:
        syncer = Syncer(runtime, scope, http)
        requests = [SyncRequest(sources=(s,), dry_run=dry) for s in action.sources] or [
            SyncRequest(dry_run=dry)
        ]
        for req in requests:
            for result in syncer.run(req):
                synced.append(result.as_dict())
                if result.error:
                    errors.append(f"{result.source}: {result.error}")
    summary: dict[str, Any] = {"synced": synced}
    if action.process:
        if not _owner_active(runtime, scope):
            # Disabled (or deleted) while syncing: start nothing for them (docs/users.md).
            raise _PartialSync("the user was disabled during the firing", summary)
        summary.update(_process(runtime, scope, action, dry))
    if errors:
        raise _PartialSync("sync failed for " + "; ".join(errors), summary)
    return summary


def _owner_active(runtime: Runtime, scope: Scope) -> bool:
    with open_context(runtime, Scope.system_scope()) as ctx:
        owner = ctx.repos.users.get(scope.user_id) if scope.user_id is not None else None
        return owner is not None and not owner.disabled


class _PartialSync(LeapError):
    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message)
        self.summary = summary


def _process(runtime: Runtime, scope: Scope, action: Any, dry: bool) -> dict[str, Any]:
    since = datetime.now(UTC) - timedelta(days=action.since_days) if action.since_days else None
    with open_context(runtime, scope) as ctx:
        templates = list(action.templates) or [None]
        # A job that names its sources processes their recordings only: a firing whose own
        # sync failed must not start what another job's firing just synced (seen as a race
        # between two jobs' firings in tests/test_unattended.py).
        sources = list(action.sources) or [None]
        ids: list[int] = []
        for template in templates:
            for source in sources:
                chosen = recordings.select(
                    ctx,
                    RecordingFilter(
                        statuses=[RecordingStatus.INITIALIZED.value],
                        template=template,
                        source=source,
                        mapped=True,
                        blank=False,
                        date_from=since,
                    ),
                )
                ids.extend(r.id for r in chosen if r.id not in ids)
    # The same decision and paged start as `leap process` (services/bulk_start.py): a dry
    # firing lists what a real one would start, and why it would skip the others.
    started: list[int] = []
    refused: dict[str, str] = {}
    would: list[int] = []
    with open_context(runtime, scope) as ctx:
        planner = bulk_start.Planner(ctx)
    for i in range(0, len(ids), bulk_start.PAGE):
        with open_context(runtime, scope) as ctx:
            recs, missing = bulk_start.id_page(ctx, ids[i : i + bulk_start.PAGE])
            if dry:
                decisions = planner.judge(ctx, recs)
            else:
                result = planner.start(ctx, recs)
                decisions = result.decisions
                started.extend(rid for rid in ids[i : i + bulk_start.PAGE] if rid in result.run_of)
        for d in [*decisions, *missing]:
            if d.act:
                would.append(d.recording_id)
            elif d.recording_id not in started:
                refused[str(d.recording_id)] = d.reason or "refused"
    if dry:
        return {"would_process": would, "processed": [], "refused": refused}
    return {"processed": started, "refused": refused}


def run_now(
    runtime: Runtime, scope: Scope, name: str, *, dry_run: bool | None = None
) -> dict[str, Any]:
    """`leap automation run NAME`: fire the job here and now (recorded like any firing)."""
    moment = datetime.now(UTC)
    with open_context(runtime, scope) as ctx:
        job = ctx.repos.automations.require_name(name)
        run = AutomationRun(
            job_id=job.id,
            user_id=job.user_id,
            planned_at=moment,
            trigger="manual",
            status=QUEUED,
            dry_run=bool(job.spec.get("dry_run")) if dry_run is None else dry_run,
            summary={},
            started_at=moment,
        )
        ctx.session.add(run)
        ctx.session.flush()
        run_id = run.id
    result = fire(runtime, run_id)
    return {"run_id": run_id, "job": name, **result}
