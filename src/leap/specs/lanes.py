"""Queue lanes (README.md, "Several hosts"): I/O-bound stages (downloads, uploads,
API calls) and CPU-bound ones (ffmpeg's cut and audio extraction, local transcription) go to
separate queues, each consumed by its own worker threads, so a host with a GPU or many cores
can take the heavy work while a small one moves bytes. Pure: no queue, no database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from leap.errors import UsageError

IO, CPU = "io", "cpu"
LANES = (IO, CPU)


def lane_of(stage: str, config: Mapping[str, Any]) -> str:
    """Where a stage's message goes: trim (ffmpeg) and a local transcription work the CPU;
    everything else mostly waits on the network or the disk."""
    if stage == "trim":
        return CPU
    if stage == "transcribe":
        section = config.get("transcription")
        provider = section.get("provider") if isinstance(section, Mapping) else None
        return CPU if provider == "local" else IO
    return IO


def queue_name(base: str, lane: str) -> str:
    """The Huey queue of a lane: the I/O lane keeps the queue's own name, so messages a
    release without lanes sent are still read."""
    return base if lane == IO else f"{base}-{lane}"


def parse_queues(text: str) -> tuple[str, ...]:
    """`--queues io,cpu` (either, or both; order kept, duplicates dropped)."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not names:
        raise UsageError("--queues: name at least one of io, cpu")
    for name in names:
        if name not in LANES:
            raise UsageError(f"--queues: unknown queue '{name[:20]}' (io, cpu)")
    return tuple(dict.fromkeys(names))


def parse_workers(text: str, lanes: tuple[str, ...], check: Any) -> dict[str, int]:
    """`--workers N` (every lane N) or `--workers io=4,cpu=1`; `check(n)` says why a count
    is refused (config.check_worker_count)."""
    out: dict[str, int] = {}
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UsageError("--workers: give a number, or io=N,cpu=N")
    for part in parts:
        lane, sep, value = part.partition("=")
        if not sep:
            lane, value = "", part
        lane = lane.strip().lower()
        if lane and lane not in LANES:
            raise UsageError(f"--workers: unknown queue '{lane[:20]}' (io, cpu)")
        try:
            count = int(value)
        except ValueError:
            raise UsageError(
                f"--workers must be a whole number of worker threads, not {value[:20]!r}"
            ) from None
        if problem := check(count):
            raise UsageError(f"--workers {problem}")
        for one in [lane] if lane else list(lanes):
            out[one] = count
    return out
