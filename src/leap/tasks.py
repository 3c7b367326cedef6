"""Thin Huey task wrappers: parse the message, open a context, call one service.

Task names are explicit and stable: a renamed task would be dropped by a consumer running
an older release ("not found in TaskRegistry").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from huey import Huey

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.services import system

log = logging.getLogger(__name__)

HEARTBEAT = "leap.heartbeat"


class TaskQueue:
    """Huey with LEAP's tasks registered; `send(name, kwargs)` enqueues by name."""

    def __init__(self, huey: Huey, runtime: Runtime) -> None:
        self.huey = huey
        self.runtime = runtime
        self._tasks: dict[str, Callable[..., Any]] = {}
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

    def send(self, name: str, kwargs: dict[str, Any]) -> None:
        try:
            task = self._tasks[name]
        except KeyError:
            raise ValueError(f"unknown task {name}") from None
        task(**kwargs)

    @property
    def names(self) -> list[str]:
        return sorted(self._tasks)
