"""The reconciler: Huey loses a message whose worker dies (at-most-once), so the database is
re-read on leapd start and periodically: stages running under a dead or silent worker go back
to the queue, and stages queued too long are nudged again. A duplicate nudge is harmless:
claiming a stage is one atomic UPDATE."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from leap import states
from leap.context import Context
from leap.db.base import utcnow
from leap.db.models import StageResult
from leap.domain import RecordingStatus, StageStatus
from leap.services import notify, runs

STALE_QUEUED_SECONDS = 30.0


def dead_local_owner(owner: str | None) -> bool:
    """A lease held by a process of this host that no longer exists (kill -9, crash)."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    if host != socket.gethostname():
        return False
    pid = int(rest.split(":", 1)[0] or 0)
    if pid == os.getpid():
        return False  # ours: alive by definition
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def requeue(ctx: Context, st: StageResult, why: str) -> None:
    rec = ctx.repos.recordings.require(st.recording_id)
    if st.attempts >= st.max_attempts:
        runs.fail_stage(ctx, st.id, None, f"{why} after {st.attempts} attempt(s)", retryable=False)
        return
    st.status, st.lease_owner, st.queued_at = StageStatus.QUEUED.value, None, utcnow()
    st.result = {**st.result, "requeued": [*st.result.get("requeued", [])[-9:], why]}
    rec.status = states.check(rec.status, RecordingStatus.QUEUED).value
    ctx.defer_enqueue(runs.STAGE_TASK, stage_id=st.id)


def reconcile(ctx: Context, *, stale_queued_s: float = STALE_QUEUED_SECONDS) -> int:
    """One pass; returns how many stages were sent to the queue again."""
    lease_s = ctx.settings.worker.lease_seconds
    now = utcnow()
    count = 0
    seen: set[int] = set()
    for st in ctx.repos.stages.running_owned_by(f"{socket.gethostname()}:"):
        if dead_local_owner(st.lease_owner):
            requeue(ctx, st, "worker process died")
            seen.add(st.id)
            count += 1
    for st in ctx.repos.stages.stale_running(now - timedelta(seconds=lease_s)):
        if st.id not in seen:
            requeue(ctx, st, "worker stopped sending heartbeats")
            count += 1
    for st in ctx.repos.stages.stale_queued(now - timedelta(seconds=stale_queued_s), now):
        st.queued_at = now  # don't nudge it again on every pass
        ctx.defer_enqueue(runs.STAGE_TASK, stage_id=st.id)
        count += 1
    # Notifications lost the same way (Huey is at-most-once); not counted: `count` is stages.
    notify.requeue_due(ctx)
    return count
