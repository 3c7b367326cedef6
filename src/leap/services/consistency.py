"""`leap doctor --deep`: is the install consistent? The database against the disk and the
queue, and the rows against each other, each check a few set-based queries over the whole
install (system scope). The decisions are in specs/consistency.py; docs/operations.md,
"leap doctor --deep", says what each check means and what to do about a failure."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, exists, func, or_, select

from leap.context import Context
from leap.db.base import utcnow
from leap.db.models import OutputTarget, PipelineRun, Recording, StageResult
from leap.domain import RunStatus, StageStatus, TargetStatus
from leap.services.reconciler import STALE_QUEUED_SECONDS
from leap.services.runs import STAGE_TASK
from leap.specs.consistency import Verdict, is_debris, published_twice, temporary_kind

ACTIVE_STAGE = (StageStatus.QUEUED.value, StageStatus.RUNNING.value)

# Stage ids that have a message in the queue (waiting or scheduled for later); raises when
# the queue cannot be read.
QueuedIds = Callable[[], set[int]]


def check_all(ctx: Context, queued_ids: QueuedIds) -> list[Verdict]:
    """Every consistency check, in the order `leap doctor --deep` prints them."""
    return [
        artifacts_on_disk(ctx),
        temporary_files(ctx),
        uploads_once(ctx),
        leases(ctx),
        queued_stages(ctx, queued_ids),
        active_runs(ctx),
    ]


def _running_recordings(ctx: Context) -> set[int]:
    S = StageResult
    stmt = select(S.recording_id).where(S.status == StageStatus.RUNNING.value).distinct()
    return {int(r) for r in ctx.session.scalars(stmt)}


def artifacts_on_disk(ctx: Context) -> Verdict:
    """Every file the newest done stage of each (recording, stage) recorded exists and is not
    empty (an SRT of no cues may be). A recording with a stage running is left out: a forced
    re-run removes and rewrites its files."""
    S = StageResult
    newest = func.row_number().over(
        partition_by=(S.recording_id, S.name), order_by=(S.finished_at.desc(), S.id.desc())
    )
    sub = (
        select(S.id, S.recording_id, S.name, S.artifacts, S.result, newest.label("newest")).where(
            S.status == StageStatus.DONE.value
        )
    ).subquery()
    busy = select(S.recording_id).where(S.status == StageStatus.RUNNING.value)
    stmt = select(sub.c.id, sub.c.recording_id, sub.c.artifacts, sub.c.result).where(
        sub.c.newest == 1, sub.c.recording_id.not_in(busy)
    )
    offenders: list[str] = []
    files = 0
    recordings: set[int] = set()
    for sid, rid, artifacts, result in ctx.session.execute(stmt):
        for kind, path in sorted((artifacts or {}).items()):
            files += 1
            recordings.add(int(rid))
            try:
                size = Path(str(path)).stat().st_size
            except OSError:
                offenders.append(f"stage {sid} (recording {rid}): {kind} missing: {path}")
                continue
            may_be_empty = kind == "srt" and not (result or {}).get("cues")
            if size == 0 and not may_be_empty:
                offenders.append(f"stage {sid} (recording {rid}): {kind} is empty: {path}")
    return Verdict(
        "artifacts on disk",
        f"{files} file(s) of {len(recordings)} recording(s)",
        tuple(offenders),
    )


def temporary_files(ctx: Context) -> Verdict:
    """No temporary file left behind in a recording's workspace: an output's `.tmp-*` with no
    stage of its recording running, or a download's `.part` beside the finished file."""
    media = ctx.settings.media_path
    running = _running_recordings(ctx)
    offenders: list[str] = []
    workspaces = 0
    for recordings_dir in sorted(media.glob("user_*/recordings")):
        for ws in sorted(recordings_dir.iterdir(), key=lambda p: p.name):
            if not ws.is_dir():
                continue
            workspaces += 1
            rid = int(ws.name) if ws.name.isdigit() else None
            names = {e.name for e in os.scandir(ws) if e.is_file(follow_symlinks=False)}
            for name in sorted(names):
                if temporary_kind(name) and is_debris(
                    name, names, stage_running=rid is not None and rid in running
                ):
                    offenders.append(f"recording {ws.name}: {name}")
    return Verdict("temporary files", f"{workspaces} workspace(s) under {media}", tuple(offenders))


def uploads_once(ctx: Context) -> Verdict:
    """No target uploaded twice: one uploaded target per (recording, preset), every remote id
    used by one target of its platform, and no preset published by two runs of a recording
    unless the later one was forced."""
    T, S, R = OutputTarget, StageResult, PipelineRun
    session = ctx.session
    offenders: list[str] = []
    uploaded = TargetStatus.UPLOADED.value
    for rid, pid, n in session.execute(
        select(T.recording_id, T.preset_id, func.count())
        .where(T.status == uploaded)
        .group_by(T.recording_id, T.preset_id)
        .having(func.count() > 1)
    ):
        offenders.append(f"recording {rid}: preset {pid} uploaded by {n} targets")
    shared = (
        select(T.platform, T.remote_id)
        .where(T.remote_id.is_not(None), T.remote_id != "")
        .group_by(T.platform, T.remote_id)
        .having(func.count() > 1)
    ).subquery()
    by_remote: dict[tuple[str, str], list[int]] = defaultdict(list)
    for tid, platform, remote in session.execute(
        select(T.id, T.platform, T.remote_id)
        .join(shared, and_(T.platform == shared.c.platform, T.remote_id == shared.c.remote_id))
        .order_by(T.id)
    ):
        by_remote[(str(platform), str(remote))].append(int(tid))
    for (platform, remote), tids in sorted(by_remote.items(), key=lambda kv: kv[1][0]):
        listed = ", ".join(str(t) for t in tids)
        offenders.append(f"target {tids[0]}: {platform} id {remote} also on target(s) {listed}")
    done_upload = and_(S.name == "upload", S.status == StageStatus.DONE.value)
    several = (
        select(S.recording_id).where(done_upload).group_by(S.recording_id).having(func.count() > 1)
    )
    uploads: dict[int, list[tuple[int, bool, list[str]]]] = defaultdict(list)
    for rid, run_id, forced, result in session.execute(
        select(S.recording_id, S.run_id, R.forced, S.result)
        .join(R, R.id == S.run_id)
        .where(done_upload, S.recording_id.in_(several))
    ):
        published = [str(p) for p in (result or {}).get("published", [])]
        uploads[int(rid)].append((int(run_id), bool(forced), published))
    for rid in sorted(uploads):
        for preset in published_twice(uploads[rid]):
            offenders.append(f"recording {rid}: {preset} published by two unforced runs")
    targets = session.scalar(select(func.count()).where(T.status == uploaded)) or 0
    return Verdict("uploads once", f"{targets} uploaded target(s)", tuple(offenders))


def leases(ctx: Context) -> Verdict:
    """No stage running on a lease older than `worker.lease_seconds`: its worker died or hangs,
    and the reconciler of a running leapd would have taken it back."""
    S = StageResult
    lease_s = ctx.settings.worker.lease_seconds
    before = utcnow() - timedelta(seconds=lease_s)
    stale = or_(S.heartbeat_at < before, and_(S.heartbeat_at.is_(None), S.started_at < before))
    rows = ctx.session.execute(
        select(S.id, S.recording_id, S.name, S.lease_owner, S.heartbeat_at)
        .where(S.status == StageStatus.RUNNING.value, stale)
        .order_by(S.id)
    ).all()
    running = ctx.session.scalar(select(func.count()).where(S.status == StageStatus.RUNNING.value))
    offenders = tuple(
        f"stage {sid} (recording {rid}, {name}): last heartbeat {_iso(beat)} by {owner}"
        for sid, rid, name, owner, beat in rows
    )
    return Verdict("leases", f"{running or 0} stage(s) running, lease {lease_s:g} s", offenders)


def queued_stages(ctx: Context, queued_ids: QueuedIds) -> Verdict:
    """No stage due to run, queued longer than the reconciler lets one wait (30 s, plus two
    of its passes), with no message in the queue: nothing would ever take it."""
    S = StageResult
    now = utcnow()
    grace = STALE_QUEUED_SECONDS + 2 * ctx.settings.worker.reconcile_seconds
    rows = ctx.session.execute(
        select(S.id, S.recording_id, S.name, S.queued_at)
        .where(
            S.status == StageStatus.QUEUED.value,
            or_(S.queued_at.is_(None), S.queued_at < now - timedelta(seconds=grace)),
            or_(S.not_before.is_(None), S.not_before <= now),
        )
        .order_by(S.id)
    ).all()
    if not rows:
        return Verdict("queued stages", f"none waiting over {grace:g} s", ())
    try:
        messages = queued_ids()
    except Exception as exc:  # doctor reports, it never crashes
        return Verdict(
            "queued stages",
            f"{len(rows)} waiting over {grace:g} s",
            (f"the queue could not be read: {type(exc).__name__}: {exc}",),
        )
    offenders = tuple(
        f"stage {sid} (recording {rid}, {name}): queued since {_iso(at)}, no message"
        for sid, rid, name, at in rows
        if int(sid) not in messages
    )
    return Verdict(
        "queued stages",
        f"{len(rows)} waiting over {grace:g} s, {len(messages)} message(s)",
        offenders,
    )


def active_runs(ctx: Context) -> Verdict:
    """Every active run has a stage queued or running and is its recording's active run, and
    every recording's active run is active."""
    R, S, Rec = PipelineRun, StageResult, Recording
    session = ctx.session
    active = RunStatus.ACTIVE.value
    offenders: list[str] = []
    has_stage = exists().where(S.run_id == R.id, S.status.in_(ACTIVE_STAGE))
    for run_id, rid in session.execute(
        select(R.id, R.recording_id).where(R.status == active, ~has_stage).order_by(R.id)
    ):
        offenders.append(f"run {run_id} (recording {rid}): active, no stage queued or running")
    for run_of, rec_of, pointed in session.execute(
        select(R.id, R.recording_id, Rec.active_run_id)
        .join(Rec, Rec.id == R.recording_id)
        .where(R.status == active, or_(Rec.active_run_id.is_(None), Rec.active_run_id != R.id))
        .order_by(R.id)
    ):
        offenders.append(
            f"run {run_of} (recording {rec_of}): active, the recording points at {pointed}"
        )
    for rec_id, pointer, status in session.execute(
        select(Rec.id, Rec.active_run_id, R.status)
        .outerjoin(R, R.id == Rec.active_run_id)
        .where(Rec.active_run_id.is_not(None), or_(R.id.is_(None), R.status != active))
        .order_by(Rec.id)
    ):
        offenders.append(f"recording {rec_id}: active run {pointer} is {status or 'gone'}")
    n = session.scalar(select(func.count()).where(R.status == active)) or 0
    return Verdict("active runs", f"{n} active run(s)", tuple(offenders))


def queue_stage_ids(huey: Any) -> set[int]:
    """Stage ids of the `leap.stage` messages in `huey`'s queue and schedule, read without
    running or removing anything (the messages are decoded, not turned into tasks)."""
    ids: set[int] = set()
    storage, serializer = huey.storage, huey.serializer
    for data in [*storage.enqueued_items(), *storage.scheduled_items()]:
        message = serializer.deserialize(data)
        if message.name == STAGE_TASK or str(message.name).endswith(f".{STAGE_TASK}"):
            sid = (message.kwargs or {}).get("stage_id")
            if sid is not None:
                ids.add(int(sid))
    return ids


def _iso(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "never"
