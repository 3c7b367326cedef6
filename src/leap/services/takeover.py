"""Taking over a run nobody is working on, for `leap process --now` and `leap retry --now`.

After `kill -9` of `leap process ID --now` (or a closed terminal) the recording keeps its
active run: a stage stays `running` under a dead process, or `queued` with no daemon to take
it. leapd's reconciler would re-queue it; with no leapd running nothing would, and a re-run
used to be refused as "already being processed". Here the foreground does what the
reconciler does — a stage whose worker died or went silent longer than the lease goes back to
`queued` — and then runs the run's queued stages itself. Claiming a stage is one atomic
UPDATE, so a daemon that wakes up meanwhile cannot run the same stage twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from leap.context import Context
from leap.db.base import utcnow
from leap.db.models import StageResult
from leap.domain import StageStatus
from leap.errors import Conflict
from leap.services.reconciler import dead_local_owner, requeue


@dataclass
class TakeOver:
    run_id: int
    stage_ids: list[int] = field(default_factory=list)  # queued and due: run them here
    resumed: list[str] = field(default_factory=list)  # stages taken from a dead worker
    waiting: list[str] = field(default_factory=list)  # queued, not due yet (a back-off)


def take_over(ctx: Context, recording_id: int) -> TakeOver:
    """The active run of `recording_id`, made runnable here; Conflict while a live worker
    (a heartbeat within the lease) is still running one of its stages."""
    rec = ctx.repos.recordings.require(recording_id)
    if rec.active_run_id is None:
        raise Conflict(f"recording {rec.id} has no run to resume")
    run_id = rec.active_run_id
    stages = list(
        ctx.session.scalars(
            select(StageResult).where(StageResult.run_id == run_id).order_by(StageResult.position)
        )
    )
    now = utcnow()
    silent_since = now - timedelta(seconds=ctx.settings.worker.lease_seconds)
    result = TakeOver(run_id=run_id)
    for st in stages:
        if st.status != StageStatus.RUNNING.value:
            continue
        if dead_local_owner(st.lease_owner):
            requeue(ctx, st, "worker process died")
        elif st.heartbeat_at is None or st.heartbeat_at < silent_since:
            requeue(ctx, st, "worker stopped sending heartbeats")
        else:
            age = (now - st.heartbeat_at).total_seconds()
            raise Conflict(
                f"recording {rec.id} is being processed right now (run {run_id}, stage "
                f"{st.name}, last heartbeat {age:.0f} s ago); wait, or 'leap cancel {rec.id}'"
            )
        result.resumed.append(st.name)
    for st in stages:
        if st.status == StageStatus.FAILED.value and st.name in result.resumed:
            # Out of attempts: requeue failed it, and with it the run.
            result.resumed.remove(st.name)
        if st.status != StageStatus.QUEUED.value:
            continue
        if st.not_before is not None and st.not_before > now:
            result.waiting.append(st.name)
        else:
            result.stage_ids.append(st.id)
    return result
