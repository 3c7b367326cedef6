"""Thin Huey task wrappers: parse the message, open a context, call one service.

Task names are explicit and stable: a renamed task would be dropped by a consumer running
an older release ("not found in TaskRegistry").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.pipeline import runner
from leap.services import reconciler, runs, system

if TYPE_CHECKING:
    from huey import Huey

log = logging.getLogger(__name__)

HEARTBEAT = "leap.heartbeat"
STAGE = runs.STAGE_TASK
RECONCILE = "leap.reconcile"


class TaskQueue:
    """Huey with LEAP's tasks registered; `send(name, kwargs)` enqueues by name."""

    def __init__(self, huey: Huey, runtime: Runtime) -> None:
        self.huey = huey
        self.runtime = runtime
        self._tasks: dict[str, Any] = {}  # huey TaskWrapper: call to enqueue, .schedule()
        self._register()

    def _task(self, name: str, fn: Callable[..., None], **options: Any) -> None:
        self._tasks[name] = self.huey.task(name=name, **options)(fn)

    def _register(self) -> None:
        runtime = self.runtime

        def heartbeat(source: str = "scheduler") -> None:
            with open_context(runtime, Scope.system_scope()) as ctx:
                count = system.beat(ctx, source)
            log.info("heartbeat %d from %s", count, source)

        self._task(HEARTBEAT, heartbeat, retries=0)

        def stage(stage_id: int) -> None:
            # No Huey retries: the database decides (attempts, back-off, leases).
            outcome = runner.execute(runtime, stage_id, self.send)
            log.info("stage %s: %s", stage_id, outcome)

        self._task(STAGE, stage, retries=0)

        def reconcile() -> None:
            with open_context(runtime, Scope.system_scope()) as ctx:
                count = reconciler.reconcile(ctx)
            if count:
                log.info("reconciler re-queued %d stage(s)", count)

        self._task(RECONCILE, reconcile, retries=0)

    def send(self, name: str, kwargs: dict[str, Any], delay: float | None = None) -> None:
        try:
            task = self._tasks[name]
        except KeyError:
            raise ValueError(f"unknown task {name}") from None
        if delay:
            task.schedule(kwargs=kwargs, delay=delay)
        else:
            task(**kwargs)

    @property
    def names(self) -> list[str]:
        return sorted(self._tasks)
