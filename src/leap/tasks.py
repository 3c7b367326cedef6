"""Thin Huey task wrappers: parse the message, open a context, call one service.

Task names are explicit and stable: a renamed task would be dropped by a consumer running
an older release ("not found in TaskRegistry").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.errors import QueueUnavailable
from leap.logs import log_context, redact
from leap.pipeline import runner
from leap.services import automation, bulk_start, notify, reconciler, runs, system, zoom_trash
from leap.specs import lanes

if TYPE_CHECKING:
    from huey import Huey

log = logging.getLogger(__name__)

HEARTBEAT = "leap.heartbeat"
STAGE = runs.STAGE_TASK
STAGE_BATCH = bulk_start.BATCH_TASK
RECONCILE = "leap.reconcile"
AUTOMATION_TICK = "leap.automation.tick"
AUTOMATION_FIRE = "leap.automation.fire"
NOTIFY_DELIVER = "leap.notify.deliver"
ZOOM_CLEANUP = "leap.zoom.cleanup"
# A stage message's lane, when the sender knows it (never sent to the task itself).
LANE = "_lane"


class TaskQueue:
    """Huey with LEAP's tasks registered; `send(name, kwargs)` enqueues by name.

    With a `cpu` Huey, stage messages are routed by lane (specs/lanes.py): trim and local
    transcription to the CPU queue, everything else to the I/O one (`huey`). Without one,
    every message goes to `huey`."""

    def __init__(self, huey: Huey, runtime: Runtime, cpu: Huey | None = None) -> None:
        self.huey = huey
        self.cpu = cpu
        self.runtime = runtime
        self._tasks: dict[str, Any] = {}  # huey TaskWrapper: call to enqueue, .schedule()
        self._cpu_stage: Any = None
        self._register()

    @classmethod
    def for_settings(cls, runtime: Runtime) -> TaskQueue:
        """Both lanes on the configured backend (leapd, and every `leap` that enqueues)."""
        from leap.queue import make_huey

        settings = runtime.settings
        return cls(make_huey(settings, lanes.IO), runtime, make_huey(settings, lanes.CPU))

    def hueys(self) -> dict[str, Huey]:
        return {lanes.IO: self.huey} | ({lanes.CPU: self.cpu} if self.cpu is not None else {})

    def pending_count(self) -> int:
        return sum(int(h.pending_count()) for h in self.hueys().values())

    def _task(self, name: str, fn: Callable[..., None], **options: Any) -> None:
        self._tasks[name] = self.huey.task(name=name, **options)(fn)
        if name == STAGE and self.cpu is not None:
            self._cpu_stage = self.cpu.task(name=name, **options)(fn)

    def _register(self) -> None:
        runtime = self.runtime

        def heartbeat(source: str = "scheduler") -> None:
            with open_context(runtime, Scope.system_scope()) as ctx:
                count = system.beat(ctx, source)
            # Every few seconds, forever: DEBUG, or an idle leapd's log is nothing but this.
            log.debug("heartbeat %d from %s", count, source)

        self._task(HEARTBEAT, heartbeat, retries=0)

        def stage(stage_id: int) -> None:
            # Every line logged while the stage runs names its recording and stage.
            with log_context(**_stage_fields(runtime, stage_id)):
                # No Huey retries: the database decides (attempts, back-off, leases).
                outcome = runner.execute(runtime, stage_id, self.send)
                log.info("stage %s: %s", stage_id, outcome)

        self._task(STAGE, stage, retries=0)

        def stage_batch(stage_ids: list[int]) -> None:
            # A bulk start sends one message per page of runs (services/bulk_start.py); each
            # first stage becomes its own message here, so every worker can take one. Lost
            # half-way (at-most-once delivery), the rest are queued rows that the reconciler
            # re-sends. The lanes of the whole page are read in one query.
            lane = self._lanes([int(sid) for sid in stage_ids])
            for sid in stage_ids:
                self.send(STAGE, {"stage_id": int(sid), LANE: lane.get(int(sid), lanes.IO)})

        self._task(STAGE_BATCH, stage_batch, retries=0)

        def reconcile() -> None:
            with open_context(runtime, Scope.system_scope()) as ctx:
                count = reconciler.reconcile(ctx)
            if count:
                log.info("reconciler re-queued %d stage(s)", count)

        self._task(RECONCILE, reconcile, retries=0)

        def automation_tick() -> None:
            # Claims due firings in the database and queues each (docs/automation.md).
            claimed = automation.tick(runtime, self.send)
            if claimed:
                log.info("automation: %d firing(s) claimed", claimed)

        self._task(AUTOMATION_TICK, automation_tick, retries=0)

        def automation_fire(run_id: int) -> None:
            automation.fire(runtime, run_id, self.send)

        self._task(AUTOMATION_FIRE, automation_fire, retries=0)

        def notify_deliver(notification_id: int) -> None:
            # Retries and back-off live in the notification's row, not in Huey.
            notify.deliver(runtime, notification_id, self.send)

        self._task(NOTIFY_DELIVER, notify_deliver, retries=0)

        def zoom_cleanup() -> None:
            # Every user's recordings due for Zoom's trash (docs/zoom-cleanup.md); safe in
            # several leapd at once: each recording is claimed in the database.
            done = zoom_trash.run_pass(runtime)
            if done.calls:
                log.info(
                    "zoom cleanup: %d call(s) for %d user(s): %d trashed, %d refused or failed",
                    done.calls,
                    done.users,
                    done.trashed,
                    done.failed,
                )

        self._task(ZOOM_CLEANUP, zoom_cleanup, retries=0)

    def _lanes(self, stage_ids: list[int]) -> dict[int, str]:
        if self.cpu is None or not stage_ids:
            return {}
        with open_context(self.runtime, Scope.system_scope()) as ctx:
            return {
                sid: lanes.lane_of(name, config)
                for sid, name, config in ctx.repos.stages.names_and_configs(stage_ids)
            }

    def send(self, name: str, kwargs: dict[str, Any], delay: float | None = None) -> None:
        kwargs = dict(kwargs)
        lane = kwargs.pop(LANE, None)
        try:
            task = self._tasks[name]
        except KeyError:
            raise ValueError(f"unknown task {name}") from None
        if name == STAGE and self.cpu is not None:
            if lane is None:  # one message: one small query for its stage and run config
                lane = self._lanes([int(kwargs["stage_id"])]).get(int(kwargs["stage_id"]))
            if lane == lanes.CPU:
                task = self._cpu_stage
        try:
            if delay:
                task.schedule(kwargs=kwargs, delay=delay)
            else:
                task(**kwargs)
        except Exception as exc:
            # Redis refusing the connection, PostgreSQL down, a locked or unwritable SQLite
            # file: each client raises its own type. Callers send only after their commit,
            # so the work is safe in the database; they need one clear line to report.
            raise QueueUnavailable(
                f"cannot reach the queue ({self.where}): {_reason(exc)}"
            ) from exc

    @property
    def where(self) -> str:
        """The queue as an operator would find it in leap.toml (its password hidden)."""
        q = self.runtime.settings.queue
        if q.backend == "sqlite":
            return f"sqlite {self.runtime.settings.queue_path}"
        return f"{q.backend} {_without_password(q.url)}" if q.url else q.backend

    @property
    def names(self) -> list[str]:
        return sorted(self._tasks)


def _stage_fields(runtime: Runtime, stage_id: int) -> dict[str, object]:
    with open_context(runtime, Scope.system_scope()) as ctx:
        row = ctx.repos.stages.get(stage_id)
        if row is None:  # gone since it was queued: the runner says so
            return {"stage_id": stage_id}
        return {"recording": row.recording_id, "stage": row.name}


def _without_password(url: str) -> str:
    # redis://:secret@host has no user name, which a generic log pattern does not catch.
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact(text if len(text) <= 200 else text[:199] + "…")
