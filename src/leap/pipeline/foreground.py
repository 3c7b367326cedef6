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

# Back-offs and batch polls up to this long are waited out in the foreground; a longer wait
# (a quota reset at midnight Pacific) is left to leapd: the stage stays queued until due.
MAX_FOREGROUND_WAIT = 120.0


def run_now(
    runtime: Runtime,
    first_stage_ids: list[int],
    *,
    on_stage: Callable[[int, Progress], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[int, str]:
    """Execute queued stages (and those they lead to) until none is left; returns the last
    outcome per stage id. Short waits happen here; a long one ends the loop ("deferred")."""
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
            if wait > MAX_FOREGROUND_WAIT:
                outcomes[stage_id] = "deferred"
                continue
            if wait > 0:
                sleep(wait)
            hook = (lambda p, s=stage_id: on_stage(s, p)) if on_stage else None
            # The CLI reports the outcome once, as its own line; the runner stays quiet.
            outcomes[stage_id] = runner.execute(
                runtime, stage_id, enqueue, progress_hook=hook, foreground=True
            )
    finally:
        runtime.enqueue = previous
    return outcomes
