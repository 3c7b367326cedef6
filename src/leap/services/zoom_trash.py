"""Zoom cloud cleanup (docs/zoom-cleanup.md): once a recording is safely published, its Zoom
cloud copy goes to Zoom's trash. `plan` decides per recording with the pure
`specs.zoom_trash.refusal`; `execute` makes the calls; `run_pass` is leapd's periodic pass.

Each recording is its own short units of work around the slow Zoom call (docs/internals.md,
"SQLite transactions and claims"): a claim committed before the call, the outcome and the
release committed after it, so one refusal stops no other and no transaction is held open
across the network. The claim is a row in system_state, as the digest claims its day
(services/digest.py): the insert succeeds for one process only, and the recording is read
again after the claim, so a recording another process trashed meanwhile is seen as trashed
and never sent to Zoom twice, whichever leapd, or `leap zoom trash`, gets there first."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import httpx
from sqlalchemy import and_, func, literal, select, update
from sqlalchemy.exc import IntegrityError

from leap.context import Context, Runtime, open_context
from leap.db.base import UTCDateTime, utcnow
from leap.db.dates import days_between
from leap.db.models import InputSource, OutputTarget, Recording, SystemState, Template, User
from leap.db.scope import Scope
from leap.domain import CredentialStatus, Role, SourceKind, TargetStatus
from leap.errors import CredentialDead, LeapError
from leap.providers.http import make_http_client
from leap.providers.zoom import TrashAnswer, ZoomClient
from leap.services import audit, clients, publishing, runs
from leap.specs.zoom_trash import (
    AFTER_DAYS_KEY,
    TargetFact,
    TrashFacts,
    TrashRule,
    refusal,
)
from leap.views import id_ranges, iso

log = logging.getLogger(__name__)

ACTION = "zoom.trash"
DAEMON_ACTOR = "leapd"
# Outcomes of a recording in a run: a Zoom call's (trashed, gone, refused, error), or none.
TRASHED: Final = "trashed"
GONE: Final = "gone"
REFUSED: Final = "refused"
ERROR: Final = "error"
SKIPPED: Final = "skipped"
NOT_FOUND: Final = "not found"
DONE = (TRASHED, GONE)  # the Zoom copy is in the trash (or was already gone)
FAILED = (REFUSED, ERROR)
# zoom_trash_log keeps the newest entries only: leapd retries a refusal daily, for ever.
LOG_MAX = 100
CLAIM_PREFIX = "zoom-trash:"
# A claim older than this belongs to a process that died mid-call: another may take it. One
# call lasts at most the retry budget plus a deadline per attempt (providers/http.py).
CLAIM_LEASE = timedelta(hours=1)
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class PlanItem:
    recording_id: int
    title: str
    reason: str | None  # None: it goes to the trash


@dataclass(frozen=True)
class Result:
    recording_id: int
    outcome: str  # TRASHED, GONE, REFUSED, ERROR, SKIPPED or NOT_FOUND
    detail: str | None
    status: int | None = None
    called: bool = False  # a request went to Zoom for this recording

    def as_dict(self) -> dict[str, Any]:
        return {"recording_id": self.recording_id, "outcome": self.outcome, "detail": self.detail}


# ---------------------------------------------------------------------------- the decision


def facts_for(ctx: Context, rec: Recording) -> TrashFacts:
    """Everything `refusal` looks at, read from the recording's rows."""
    src = ctx.repos.sources.require(rec.source_id)
    _, results = runs.current_artifacts(ctx, rec.id)
    tpl = ctx.repos.templates.get(rec.template_id) if rec.template_id is not None else None
    required = publishing.template_presets(ctx, rec)
    by_preset = {t.preset_id: t for t in ctx.repos.targets.list(recording_id=rec.id)}
    facts = [_target_fact(p.name, by_preset.pop(p.id, None), True) for p in required]
    if by_preset:  # targets of presets the template no longer names
        names = {p.id: p.name for p in ctx.repos.presets.list()}
        facts += [_target_fact(names.get(pid, str(pid)), t, False) for pid, t in by_preset.items()]
    log_ = rec.zoom_trash_log or []
    return TrashFacts(
        source_kind=src.kind,
        trashed_at=rec.zoom_trashed_at,
        start_time=rec.start_time,
        files=list(rec.files or []),
        download=results.get("download"),
        mapped=tpl is not None,
        targets=facts,
        running=rec.active_run_id is not None,
        after_days=tpl.zoom_trash_after_days if tpl is not None else None,
        last_attempt=log_[-1] if log_ and isinstance(log_[-1], dict) else None,
    )


def _target_fact(preset: str, target: OutputTarget | None, required: bool) -> TargetFact:
    if target is None:
        return TargetFact(preset=preset, status=None, required=required)
    return TargetFact(
        preset=preset,
        status=target.status,
        approval=target.approval,
        uploaded_at=target.uploaded_at,
        required=required,
    )


def plan(ctx: Context, ids: Sequence[int], rule: TrashRule) -> list[PlanItem]:
    """One item per id the acting user can see, in order; ids it cannot see are left out
    (the caller reports them as not found)."""
    out: list[PlanItem] = []
    for rid in ids:
        rec = ctx.repos.recordings.get(rid)
        if rec is None:
            continue
        out.append(PlanItem(rec.id, rec.title, refusal(facts_for(ctx, rec), rule)))
    return out


# ---------------------------------------------------------------------------- the calls


@dataclass(frozen=True)
class _Call:
    recording_id: int
    uuid: str
    credential_id: int
    credential: str


def execute(
    runtime: Runtime,
    scope: Scope,
    items: Sequence[PlanItem],
    rule: TrashRule,
    http: httpx.Client,
    *,
    sleep: Sleep | None = None,
) -> list[Result]:
    """Trash every item the plan lets go, each meeting once; a Result per item, in order.
    Each recording is decided again under its claim, so a plan that went stale (published
    again, trashed by another process) is never acted on as it was."""
    results: list[Result] = []
    done: dict[str, tuple[int, TrashAnswer]] = {}  # meeting uuid -> first recording, answer
    zoom: dict[int, ZoomClient] = {}
    dead: dict[int, str] = {}  # credential id -> why, once Zoom refused the credential
    for item in items:
        if item.reason is not None:
            results.append(Result(item.recording_id, SKIPPED, item.reason))
            continue
        # leapd's pass runs on its own clock (a test's); a command records the real time.
        now = rule.now if rule.auto else utcnow()
        call, skipped = _begin(runtime, scope, item.recording_id, rule, now)
        if call is None:
            assert skipped is not None
            results.append(skipped)
            continue
        if call.uuid in done:
            # Two recordings of one Zoom meeting (two sources over one account): one call.
            first, answer = done[call.uuid]
            twin = TrashAnswer(
                answer.outcome, answer.status, f"same Zoom meeting as recording {first}"
            )
            _finish(runtime, scope, call.recording_id, twin, now, record=answer.outcome in DONE)
            results.append(Result(call.recording_id, answer.outcome, twin.detail, answer.status))
            continue
        if call.credential_id in dead:
            answer = TrashAnswer(REFUSED, None, dead[call.credential_id])
            _finish(runtime, scope, call.recording_id, answer, now, record=False)
            results.append(Result(call.recording_id, REFUSED, answer.detail))
            continue
        try:
            answer = _call(runtime, scope, call, zoom, http, sleep)
        except CredentialDead as exc:
            why = f"re-authenticate {call.credential}: {exc.message}"
            clients.mark_dead(runtime, scope, call.credential_id, exc.message)
            dead[call.credential_id] = why
            answer = TrashAnswer(REFUSED, getattr(exc, "status", None), why)
        except LeapError as exc:  # e.g. the credential's secret cannot be read
            answer = TrashAnswer(ERROR, None, exc.message)
        except BaseException:
            _release(runtime, scope, call.recording_id)
            raise
        done[call.uuid] = (call.recording_id, answer)
        _finish(runtime, scope, call.recording_id, answer, now, record=True)
        if answer.outcome in FAILED:
            log.warning(
                "zoom trash: recording %s: %s: %s", call.recording_id, answer.outcome, answer.detail
            )
        results.append(
            Result(call.recording_id, answer.outcome, answer.detail, answer.status, called=True)
        )
    return results


def _call(
    runtime: Runtime,
    scope: Scope,
    call: _Call,
    zoom: dict[int, ZoomClient],
    http: httpx.Client,
    sleep: Sleep | None,
) -> TrashAnswer:
    """The one Zoom request, with a client per credential for the whole run (an S2S token
    is fetched once, and shared through the credential's row anyway)."""
    client = zoom.get(call.credential_id)
    if client is None:
        client = clients.make_zoom_client(runtime, scope, call.credential_id, http, sleep)
        zoom[call.credential_id] = client
    return client.trash_meeting_recordings(call.uuid)


def _begin(
    runtime: Runtime, scope: Scope, recording_id: int, rule: TrashRule, now: datetime
) -> tuple[_Call | None, Result | None]:
    """Claim the recording, then decide again on what is committed now: the call to make,
    or the Result that says why none is made (the claim then goes with the rollback)."""
    with open_context(runtime, scope) as ctx:
        if not _claim(ctx, recording_id, now):
            return None, Result(recording_id, SKIPPED, "another process is trashing it now")
        rec = ctx.repos.recordings.get(recording_id)
        answer: Result | None = None
        if rec is None:
            answer = Result(recording_id, NOT_FOUND, f"recording {recording_id} not found")
        elif (reason := refusal(facts_for(ctx, rec), rule)) is not None:
            answer = Result(recording_id, SKIPPED, reason)
        else:
            src = ctx.repos.sources.require(rec.source_id)
            cred = (
                ctx.repos.credentials.get(src.credential_id)
                if src.credential_id is not None
                else None
            )
            if cred is None:
                answer = Result(
                    recording_id, REFUSED, f"zoom source '{src.name}' has no credential"
                )
            elif cred.status == CredentialStatus.NEEDS_REAUTH.value:
                # Refused before: no call until someone re-authenticates it.
                answer = Result(recording_id, REFUSED, f"re-authenticate {cred.name}")
            else:
                return _Call(recording_id, rec.external_id, cred.id, cred.name), None
        ctx.session.rollback()  # no call: the claim is not kept
        return None, answer


def _claim(ctx: Context, recording_id: int, now: datetime) -> bool:
    """Take the recording's claim row; False while another process holds a live one."""
    key = CLAIM_PREFIX + str(recording_id)
    value = {"at": iso(now), "host": socket.gethostname(), "pid": os.getpid()}
    try:
        with ctx.session.begin_nested():
            ctx.session.add(SystemState(key=key, value=value, updated_at=now))
    except IntegrityError:
        # Held: by a live process, or left behind by one that died mid-call.
        stale = (
            update(SystemState)
            .where(SystemState.key == key, SystemState.updated_at < now - CLAIM_LEASE)
            .values(value=value, updated_at=now)
        )
        res = ctx.session.execute(stale, execution_options={"synchronize_session": False})
        return int(res.rowcount) == 1  # type: ignore[attr-defined]
    return True


def _release(runtime: Runtime, scope: Scope, recording_id: int) -> None:
    with open_context(runtime, scope) as ctx:
        ctx.repos.system.delete_where(key=CLAIM_PREFIX + str(recording_id))


def _finish(
    runtime: Runtime,
    scope: Scope,
    recording_id: int,
    answer: TrashAnswer,
    now: datetime,
    *,
    record: bool,
) -> None:
    """Record Zoom's answer on the recording (with `record`) and let go of the claim, in one
    unit of work: another process sees the outcome and the free claim together."""
    with open_context(runtime, scope) as ctx:
        rec = ctx.repos.recordings.get(recording_id)
        if rec is not None and record:
            entry = {
                "at": iso(now),
                "outcome": answer.outcome,
                "status": answer.status,
                "detail": answer.detail,
            }
            rec.zoom_trash_log = [*(rec.zoom_trash_log or []), entry][-LOG_MAX:]
            if answer.outcome in DONE:
                rec.zoom_trashed_at = now
        ctx.repos.system.delete_where(key=CLAIM_PREFIX + str(recording_id))


# ---------------------------------------------------------------------------- the audit


def counts(results: Sequence[Result], selected: int) -> dict[str, int]:
    tally = {k: 0 for k in (TRASHED, GONE, REFUSED, ERROR, SKIPPED, NOT_FOUND)}
    for r in results:
        tally[r.outcome] += 1
    return {
        "selected": selected,
        "trashed": tally[TRASHED],
        "gone": tally[GONE],
        "refused": tally[REFUSED],
        "errors": tally[ERROR],
        "skipped": tally[SKIPPED],
        "not_found": tally[NOT_FOUND],
    }


def result_word(results: Sequence[Result]) -> str:
    """ok: nothing failed; failed: Zoom refused or failed every call; partial otherwise."""
    done = sum(1 for r in results if r.outcome in DONE)
    failed = sum(1 for r in results if r.outcome in FAILED or r.outcome == NOT_FOUND)
    if not failed:
        return "ok"
    return "failed" if not done else "partial"


def audit_run(
    ctx: Context,
    *,
    selection: str,
    results: Sequence[Result],
    selected: int,
    actor: str | None = None,
) -> None:
    """The run's one audit entry, owned by the acting user (`actor`: who acted for them)."""
    audit.record_run(
        ctx,
        action=ACTION,
        selection=selection,
        actor=actor,
        result=result_word(results),
        **counts(results, selected),
    )


# ---------------------------------------------------------------------------- leapd's pass


def due(ctx: Context, now: datetime) -> list[tuple[int, int]]:
    """(user id, recording id) of every recording leapd may trash now, in one query: its
    template sets zoom_trash_after_days, it is not in Zoom's trash, it comes from a Zoom
    source, its owner is enabled, and its newest upload is that many days old. The rest of
    the safety checks follow per recording (`refusal`)."""
    R, T, S, OT, U = Recording, Template, InputSource, OutputTarget, User
    days = T.zoom_trash_after_days
    newest = (
        select(OT.recording_id, func.max(OT.uploaded_at).label("at"))
        .where(OT.status == TargetStatus.UPLOADED.value)
        .group_by(OT.recording_id)
        .subquery()
    )
    stmt = (
        select(R.user_id, R.id)
        .join(T, T.id == R.template_id)
        .join(S, and_(S.id == R.source_id, S.kind == SourceKind.ZOOM.value))
        .join(U, U.id == R.user_id)
        .join(newest, newest.c.recording_id == R.id)
        .where(
            R.zoom_trashed_at.is_(None),
            U.disabled.is_(False),
            days.is_not(None),
            days_between(literal(now, UTCDateTime()), newest.c.at) >= days,
        )
        .order_by(R.user_id, R.id)
    )
    return [(int(uid), int(rid)) for uid, rid in ctx.session.execute(stmt).all()]


@dataclass
class PassSummary:
    users: int = 0
    calls: int = 0
    trashed: int = 0
    failed: int = 0


def run_pass(
    runtime: Runtime,
    *,
    now: datetime | None = None,
    http: httpx.Client | None = None,
    sleep: Sleep | None = None,
) -> PassSummary:
    """leapd's cleanup: for every user, the recordings `due` names, decided and trashed as
    `leap zoom trash --yes` does; one audit entry per user whose pass called Zoom (a pass
    that only skips repeats every interval, and would bury the trail)."""
    moment = now or utcnow()
    with open_context(runtime, Scope.system_scope()) as ctx:
        rows = due(ctx, moment)
        owners = {u.id: u for u in ctx.repos.users.list()}
    per_user: dict[int, list[int]] = {}
    for uid, rid in rows:
        per_user.setdefault(uid, []).append(rid)
    summary = PassSummary()
    if not per_user:
        return summary
    rule = TrashRule(now=moment, auto=True)
    client = http or make_http_client()
    try:
        for uid, ids in per_user.items():
            owner = owners[uid]
            scope = Scope.for_user(uid, is_admin=owner.role == Role.ADMIN.value)
            with open_context(runtime, scope) as ctx:
                items = plan(ctx, ids, rule)
            results = execute(runtime, scope, items, rule, client, sleep=sleep)
            called = [r for r in results if r.called]
            summary.users += 1
            summary.calls += len(called)
            summary.trashed += sum(1 for r in results if r.outcome in DONE)
            summary.failed += sum(1 for r in results if r.outcome in FAILED)
            if called:
                with open_context(runtime, scope) as ctx:
                    audit_run(
                        ctx,
                        selection=f"{AFTER_DAYS_KEY}: {id_ranges(ids)}",
                        results=results,
                        selected=len(ids),
                        actor=DAEMON_ACTOR,
                    )
    finally:
        if http is None:
            client.close()
    return summary
