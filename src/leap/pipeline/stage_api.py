"""The contract between the engine and a stage: what a stage gets and what it returns."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from leap.context import Runtime
from leap.db.scope import Scope
from leap.domain import Stage
from leap.errors import BadSetting, LeapError, StorageError
from leap.pipeline.workspace import Workspace

T = TypeVar("T", int, float)


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
    # Set once the stage has ended: None while it runs, then True (done) or False (failed).
    done: bool | None = None

    def __call__(self, fraction: float, note: str = "") -> None:
        if self.cancel.is_set():
            raise Cancelled("cancelled")
        self.fraction = max(0.0, min(1.0, fraction))
        if note:
            self.note = note

    def settle(self, *, done: bool) -> None:
        """The stage ended. A success is whole whatever it last reported (a reused output
        reports nothing; trim with its cut on disk stops at 30 %); a failure is marked as
        such, so no display takes its last fraction for work done."""
        self.done = done
        if done:
            self.fraction = 1.0


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


def section(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The run's processing table `name` ("trim"); BadSetting when a layer replaced it with a
    plain value (`trim = false` in a template)."""
    value = config.get(name)
    if not isinstance(value, Mapping):
        raise BadSetting(f"processing setting {name} = {value!r}: expected a table of settings")
    return value


def setting(
    config: Mapping[str, Any],
    key: str,
    kind: type[T],
    default: T | None = None,
    *,
    positive: bool = False,
) -> T:
    """The run's processing setting `key` ("trim.noise_db") as an int or float. Absent or
    null gives `default`; a value that is no finite number (a template may hold any TOML
    value) raises BadSetting naming the key and the value, not a ValueError deep in a stage."""
    node: Any = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if node is None and default is not None:
        return default
    # bool is an int to Python, but `noise_db = true` is a mistake, not 1 dB.
    if isinstance(node, bool) or not isinstance(node, int | float) or not math.isfinite(node):
        raise BadSetting(f"processing setting {key} = {node!r}: expected a number")
    value = kind(node)
    if positive and value <= 0:
        raise BadSetting(f"processing setting {key} = {node!r}: expected a number above 0")
    return value


def storage_error(exc: OSError, path: Path | str | None = None, doing: str = "") -> StorageError:
    """One line for an OS error on a file LEAP manages: the path (the one the OS names, else
    `path`), what LEAP was doing, and the OS's reason ("Permission denied")."""
    where = exc.filename if exc.filename is not None else path
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    head = f"{doing} {where}" if doing and where is not None else (doing or str(where or ""))
    return StorageError(f"{head}: {reason}" if head else reason)
