"""The contract between the engine and a stage: what a stage gets and what it returns."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from leap.context import Runtime
from leap.db.scope import Scope
from leap.domain import Stage
from leap.errors import LeapError
from leap.pipeline.workspace import Workspace


class Cancelled(LeapError):
    """The run was cancelled (or this worker lost its lease) while the stage ran."""


class Waiting(LeapError):
    """The stage handed work to a remote service (a batch job): come back in `delay` s.
    What it needs to resume was saved with `StageContext.save_state` first."""

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass
class Progress:
    """Shared between the stage (writes) and the heartbeat thread (reads, persists)."""

    fraction: float = 0.0
    note: str = ""
    cancel: threading.Event = field(default_factory=threading.Event)

    def __call__(self, fraction: float, note: str = "") -> None:
        if self.cancel.is_set():
            raise Cancelled("cancelled")
        self.fraction = max(0.0, min(1.0, fraction))
        if note:
            self.note = note


@dataclass
class StageContext:
    runtime: Runtime
    scope: Scope  # the recording owner's
    recording_id: int
    run_id: int
    stage: Stage
    config: dict[str, Any]  # the run's resolved processing config
    workspace: Workspace
    progress: Progress
    http: httpx.Client
    # Artifacts of earlier stages (this run or an earlier one): kind -> absolute path.
    artifacts: dict[str, str]
    # Facts earlier stages recorded (e.g. the trim points), by stage name.
    results: dict[str, dict[str, Any]]
    force: bool = False  # redo outputs that exist (settings changed)
    log: Callable[[str], None] = print
    # What this stage saved on earlier attempts (e.g. a batch job id), and a way to save more
    # at once, committed, so a crash right after cannot lose it.
    state: dict[str, Any] = field(default_factory=dict)
    save_state: Callable[[dict[str, Any]], None] = lambda _state: None


@dataclass(frozen=True)
class StageOutcome:
    artifacts: dict[str, str] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False  # nothing to do (e.g. a stage not available yet): reason in result
