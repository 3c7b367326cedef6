"""Each leapd writes its own presence row (services/system.py `present`) every heartbeat, so
`leap status --daemon` lists every live daemon on every host, with its role, queues and
workers; a clean stop removes the row, a kill -9 leaves it to go silent."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from leap.context import Runtime, open_context
from leap.db.base import utcnow
from leap.db.scope import Scope
from leap.services import system
from leap.views import iso

log = logging.getLogger(__name__)


class Presence(threading.Thread):
    def __init__(
        self, runtime: Runtime, facts: dict[str, Any], tick: Callable[[], None] | None = None
    ) -> None:
        """`tick`: called before each beat (leapd tries to take the scheduler over)."""
        super().__init__(name="leapd-presence", daemon=True)
        self.runtime = runtime
        self.tick = tick
        self.facts = {**facts, "started_at": iso(utcnow())}
        self.interval = runtime.settings.worker.heartbeat_seconds
        self._halt = threading.Event()

    def beat(self) -> None:
        try:
            with open_context(self.runtime, Scope.system_scope()) as ctx:
                system.present(ctx, self.facts)
        except Exception as exc:  # a busy database must not stop the daemon; next beat
            log.warning("presence beat failed: %s", exc)

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            if self.tick is not None:
                try:
                    self.tick()
                except Exception as exc:  # e.g. the database away: try again next beat
                    log.warning("scheduler take-over failed: %s", exc)
            self.beat()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        try:
            with open_context(self.runtime, Scope.system_scope()) as ctx:
                system.gone(ctx)
        except Exception as exc:  # the row goes silent instead; harmless
            log.debug("presence row not removed: %s", exc)
