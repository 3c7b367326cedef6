"""Executes one stage: claim it atomically, run it with a heartbeat that keeps the lease and
notices cancellation, then record success or failure. The Huey task and `leap process
--now` both come through here."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from leap import states
from leap.context import Enqueue, Runtime, open_context
from leap.db.base import utcnow
from leap.db.scope import Scope
from leap.domain import RunStatus, Stage, StageStatus
from leap.errors import LeapError, NotFound
from leap.logs import redact
from leap.pipeline import stages as impl
from leap.pipeline.stage_api import (
    Cancelled,
    Progress,
    StageContext,
    StageOutcome,
    Waiting,
    storage_error,
)
from leap.pipeline.workspace import Workspace
from leap.providers.http import make_http_client
from leap.services import recordings, runs

log = logging.getLogger(__name__)


def worker_id() -> str:
    """host:pid:thread — the reconciler uses host and pid to spot leases of dead workers."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


@dataclass(frozen=True)
class Claimed:
    stage_id: int
    stage: Stage
    run_id: int
    recording_id: int
    user_id: int
    config: dict[str, Any]
    forced: bool
    artifacts: dict[str, str]
    results: dict[str, dict[str, Any]]
    state: dict[str, Any]


class Heartbeat(threading.Thread):
    """Renews the lease and saves progress; a cancelled run or a lost lease stops the stage."""

    def __init__(
        self,
        runtime: Runtime,
        claimed: Claimed,
        worker: str,
        progress: Progress,
    ) -> None:
        super().__init__(name=f"heartbeat-{claimed.stage_id}", daemon=True)
        self.runtime, self.claimed, self.worker = runtime, claimed, worker
        self.progress = progress
        self.interval = runtime.settings.worker.stage_heartbeat_seconds
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                with open_context(self.runtime, Scope.system_scope()) as ctx:
                    kept = ctx.repos.stages.beat(
                        self.claimed.stage_id, self.worker, utcnow(), self.progress.fraction
                    )
                    # get, not require: a deleted user's run is gone, which stops the stage
                    # like a cancel (docs/users.md), not a warning on every beat.
                    rec = ctx.repos.recordings.get(self.claimed.recording_id)
                    run = ctx.repos.runs.get(self.claimed.run_id)
                    if kept and rec is not None and run is not None:
                        rec.progress = runs.progress_of(ctx, run)
            except Exception as exc:  # a busy database must not kill the stage; try next beat
                # One line: `leap process --now` shows warnings on the terminal.
                log.warning("heartbeat of stage %s failed: %s", self.claimed.stage_id, exc)
                log.debug("heartbeat failure", exc_info=True)
                continue
            if not kept or run is None or run.status != RunStatus.ACTIVE.value:
                self.progress.cancel.set()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=self.interval + 5)


def _claim(runtime: Runtime, stage_id: int, worker: str) -> Claimed | None:
    with open_context(runtime, Scope.system_scope()) as ctx:
        if not runs.claim(ctx, stage_id, worker):
            return None
        st = ctx.repos.stages.require(stage_id)
        ctx.session.refresh(st)
        run = ctx.repos.runs.require(st.run_id)
        rec = ctx.repos.recordings.require(st.recording_id)
        if run.status != RunStatus.ACTIVE.value:
            st.status, st.lease_owner = StageStatus.CANCELLED.value, None
            return None
        stage = Stage(st.name)
        rec.status = states.check(rec.status, states.running(stage)).value
        artifacts, results = runs.current_artifacts(ctx, rec.id)
        return Claimed(
            stage_id,
            stage,
            run.id,
            rec.id,
            rec.user_id,
            dict(run.config),
            run.forced,
            artifacts,
            results,
            dict(st.result),
        )


def execute(
    runtime: Runtime,
    stage_id: int,
    enqueue: Enqueue,
    progress_hook: Callable[[Progress], None] | None = None,
    *,
    foreground: bool = False,
) -> str:
    """Run one stage if it can be claimed; returns what happened (for logs and tests).

    Whatever the stage raises is recorded on its row as one line and never propagates: a
    worker survives every stage. `foreground` (`leap process --now`): the caller reports the
    outcome on the terminal itself, so failures are logged at DEBUG (seen with --debug)
    instead of a second copy of the same error, and no traceback reaches the terminal."""
    worker = worker_id()
    claimed = _claim(runtime, stage_id, worker)
    if claimed is None:
        return "not-claimed"
    progress = Progress()
    if progress_hook:
        progress_hook(progress)
    beat = Heartbeat(runtime, claimed, worker, progress)
    beat.start()
    outcome: StageOutcome | None = None
    error: LeapError | None = None
    retryable = False
    try:
        with make_http_client() as http:
            sc = StageContext(
                runtime=runtime,
                scope=Scope.for_user(claimed.user_id),
                recording_id=claimed.recording_id,
                run_id=claimed.run_id,
                stage=claimed.stage,
                config=claimed.config,
                workspace=Workspace.for_recording(
                    runtime.settings.media_path, claimed.user_id, claimed.recording_id
                ),
                progress=progress,
                http=http,
                artifacts=claimed.artifacts,
                results=claimed.results,
                force=claimed.forced,
                log=log.info,
                state=claimed.state,
                save_state=lambda state: _save_state(runtime, claimed, worker, state),
            )
            outcome = impl.STAGES[claimed.stage](sc)
    except Waiting as wait:
        beat.stop()
        try:
            with open_context(runtime, Scope.system_scope()) as ctx:
                runs.wait_stage(ctx, claimed.stage_id, worker, wait.delay, wait.message)
                pending = ctx.take_pending()
        except NotFound:
            return _gone(runtime, claimed)
        _send(enqueue, pending)
        return "waiting"
    except Cancelled:
        log.info(
            "stage %s of recording %s stopped: cancelled or lease lost",
            claimed.stage.value,
            claimed.recording_id,
        )
        _tidy(runtime, claimed)
        return "cancelled"
    except LeapError as exc:
        error, retryable = exc, isinstance(exc, impl.RETRYABLE)
    except OSError as exc:
        # The media folder or a workspace file: permission denied, not a directory, disk
        # full, an I/O error. The user can fix these; name the path and the reason.
        error = storage_error(exc)
    except Exception as exc:  # a bug: fail the stage clearly, keep the worker
        log.log(
            logging.DEBUG if foreground else logging.ERROR,
            "stage %s of recording %s crashed",
            claimed.stage.value,
            claimed.recording_id,
            exc_info=True,
        )
        error = LeapError(f"unexpected {type(exc).__name__} (a bug; details in the log): {exc}")
    finally:
        beat.stop()
    # Whoever watches `progress` (the --now bar) sees the stage's end, not its last report.
    progress.settle(done=outcome is not None)
    return _record(runtime, claimed, worker, outcome, error, retryable, enqueue, foreground)


def _save_state(runtime: Runtime, claimed: Claimed, worker: str, state: dict[str, Any]) -> None:
    try:
        with open_context(runtime, Scope.system_scope()) as ctx:
            if not runs.save_state(ctx, claimed.stage_id, worker, state):
                raise Cancelled("lost the stage's lease")
    except NotFound:
        raise Cancelled("the stage's run is gone") from None


def _record(
    runtime: Runtime,
    claimed: Claimed,
    worker: str,
    outcome: StageOutcome | None,
    error: LeapError | None,
    retryable: bool,
    enqueue: Enqueue,
    foreground: bool = False,
) -> str:
    try:
        return _record_in(runtime, claimed, worker, outcome, error, retryable, enqueue, foreground)
    except NotFound:
        # The stage's rows went while it ran (`leap user delete`): nothing to record. Any
        # other NotFound is a bug, and stays loud.
        with open_context(runtime, Scope.system_scope()) as ctx:
            if ctx.repos.stages.get(claimed.stage_id) is not None:
                raise
        return _gone(runtime, claimed)


def _gone(runtime: Runtime, claimed: Claimed) -> str:
    log.info(
        "stage %s of recording %s ended: its run is gone (user or recording deleted)",
        claimed.stage.value,
        claimed.recording_id,
    )
    _tidy(runtime, claimed)
    return "gone"


def _tidy(runtime: Runtime, claimed: Claimed) -> None:
    """A stage of a deleted user may write files after `leap user delete` removed their
    folders: its recording's folder goes too, and the user's folders once empty
    (docs/users.md). Nothing happens while the recording is still its owner's."""
    try:
        with open_context(runtime, Scope.system_scope()) as ctx:
            rec = ctx.repos.recordings.get(claimed.recording_id)
            owner = ctx.repos.users.get(claimed.user_id)
    except LeapError:
        return  # the database is busy: the user's folders were removed at deletion anyway
    if rec is not None and rec.user_id == claimed.user_id:
        return
    media = runtime.settings.media_path
    user_dir = media / f"user_{claimed.user_id}"
    try:
        recordings.remove_media(
            media, claimed.user_id, user_dir / "recordings" / str(claimed.recording_id)
        )
        if owner is None:
            for empty in (user_dir / "recordings", user_dir):
                if empty.is_dir() and not empty.is_symlink() and not any(empty.iterdir()):
                    empty.rmdir()
    except OSError as exc:
        log.warning("files of deleted recording %s not removed: %s", claimed.recording_id, exc)


def _record_in(
    runtime: Runtime,
    claimed: Claimed,
    worker: str,
    outcome: StageOutcome | None,
    error: LeapError | None,
    retryable: bool,
    enqueue: Enqueue,
    foreground: bool,
) -> str:
    with open_context(runtime, Scope.system_scope()) as ctx:
        if outcome is not None:
            st = runs.finish_stage(
                ctx,
                claimed.stage_id,
                worker,
                artifacts=outcome.artifacts,
                result=outcome.result,
                skipped=outcome.skipped,
            )
            status = "lost-lease" if st is None else st.status
        else:
            assert error is not None
            # The row is shown by `leap status` and `recordings show` unfiltered; a provider's
            # answer quoted in the message may carry a token.
            message = redact(error.message)
            failed = runs.fail_stage(
                ctx,
                claimed.stage_id,
                worker,
                message,
                retryable=retryable,
                exit_code=error.exit_code,
            )
            if failed is None:
                status = "lost-lease"
            else:
                st, delay = failed
                status = "retrying" if delay is not None else "failed"
                level = logging.WARNING if delay is not None else logging.ERROR
                log.log(
                    logging.DEBUG if foreground else level,
                    "stage %s of recording %s %s: %s",
                    claimed.stage.value,
                    claimed.recording_id,
                    status,
                    message,
                )
        # The next stage's message (or the retry's) goes out only after this commit.
        pending = ctx.take_pending()
    _send(enqueue, pending)
    return status


def _send(enqueue: Enqueue, pending: list[tuple[str, dict[str, Any], float | None]]) -> None:
    """Send messages for work already committed. A queue that does not answer loses nothing:
    the stage stays queued in the database and the reconciler sends it again."""
    for name, kwargs, delay in pending:
        try:
            enqueue(name, kwargs, delay)
        except LeapError as exc:
            log.warning("%s %s not sent (the reconciler will): %s", name, kwargs, exc.message)
