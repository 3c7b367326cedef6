"""`leap process --now`: run a recording's stages in this process, no daemon needed, through
the same claim/heartbeat/finish path the workers use."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

from leap.context import Runtime
from leap.pipeline import runner
from leap.pipeline.stage_api import Progress

MAX_RETRY_WAIT = 600.0


def run_now(
    runtime: Runtime,
    first_stage_ids: list[int],
    *,
    on_stage: Callable[[int, Progress], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[int, str]:
    """Execute queued stages (and those they lead to) until none is left; returns the last
    outcome per stage id. Retries wait their back-off here, bounded by MAX_RETRY_WAIT."""
    work: deque[tuple[int, float]] = deque((sid, 0.0) for sid in first_stage_ids)
    outcomes: dict[int, str] = {}

    def enqueue(name: str, kwargs: dict[str, Any], delay: float | None) -> None:
        if name == "leap.stage":
            work.append((int(kwargs["stage_id"]), time.monotonic() + (delay or 0.0)))

    previous = runtime.enqueue
    runtime.enqueue = enqueue
    try:
        while work:
            stage_id, not_before = work.popleft()
            wait = not_before - time.monotonic()
            if wait > 0:
                sleep(min(wait, MAX_RETRY_WAIT))
            hook = (lambda p, s=stage_id: on_stage(s, p)) if on_stage else None
            outcomes[stage_id] = runner.execute(runtime, stage_id, enqueue, progress_hook=hook)
    finally:
        runtime.enqueue = previous
    return outcomes
