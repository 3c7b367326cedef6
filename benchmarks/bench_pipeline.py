"""Orchestration benchmark: a real leapd (2 workers, SQLite queue) runs N recordings of a
tiny local clip through download + trim.

Reports, from the stage rows' own timestamps (so the stages' work does not count):
- hand-off: next stage started - previous stage finished (commit, enqueue, pickup, claim);
- idle pickup: a single run's first stage started - run created, on an idle daemon;
against a baseline measured in the same run: a no-op Huey task's idle pickup.

    .venv/bin/python -m benchmarks.bench_pipeline [--recordings 100] [--max-delay 0.5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from tests import media

from leap.config import load_settings
from leap.context import Runtime, open_context
from leap.db.models import PipelineRun, StageResult
from leap.db.scope import Scope
from leap.queue import make_huey
from leap.services import system
from leap.tasks import HEARTBEAT, TaskQueue

TEMPLATE = """name = "all"
[match]
regex = [".+"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
stages = ["download", "trim"]
[processing.trim]
enabled = false
"""


def leap(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "leap.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise SystemExit(f"leap {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def wait_runs(rt: Runtime, n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open_context(rt, Scope.system_scope()) as ctx:
            runs = ctx.repos.runs.list()
            if len(runs) >= n and all(r.status != "active" for r in runs):
                return
        time.sleep(0.05)
    raise SystemExit("timed out waiting for runs")


def queue_floor(rt: Runtime, queue: TaskQueue, samples: int) -> list[float]:
    """A no-op task's pickup on the idle daemon: enqueue -> the task's write is visible."""
    out = []
    for _ in range(samples):
        time.sleep(2.0)  # let the consumer's polling back off to its idle delay
        with open_context(rt, Scope.system_scope()) as ctx:
            before = int(system.heartbeat(ctx).get("count", 0))
        t0 = time.monotonic()
        queue.send(HEARTBEAT, {"source": "bench"})
        while True:
            with open_context(rt, Scope.system_scope()) as ctx:
                if int(system.heartbeat(ctx).get("count", 0)) > before:
                    break
            time.sleep(0.002)
        out.append(time.monotonic() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--recordings", type=int, default=100)
    ap.add_argument("--max-delay", type=float, default=0.5)
    ap.add_argument("--idle-samples", type=int, default=5)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="leap-bench-pipe-"))
    inbox = work / "inbox"
    inbox.mkdir()
    clip = media.make_video(work / "clip.mp4", 2)
    for i in range(args.recordings + args.idle_samples):
        os.link(clip, inbox / f"lecture {i:03d}.mp4")
    env = {
        "LEAP_DATA_DIR": str(work / "data"),
        "LEAP_CONFIG": str(work / "none.toml"),
        "LEAP_SECRET_KEY": Fernet.generate_key().decode(),
        "LEAP_SYNC__LOCAL_SETTLE_SECONDS": "0",
        "LEAP_WORKER__COUNT": "2",
        "LEAP_QUEUE__MAX_DELAY": str(args.max_delay),
        "LEAP_WORKER__HEARTBEAT_SECONDS": "3600",
    }
    os.environ.update(env)
    (work / "t.toml").write_text(TEMPLATE)
    leap("init", "--yes")
    leap("source", "add", "local", "inbox", str(inbox))
    leap("template", "add", "--file", str(work / "t.toml"))
    leap("sync")
    rt = Runtime.from_settings(load_settings())
    with open_context(rt, Scope.system_scope()) as ctx:
        ids = sorted(r.id for r in ctx.repos.recordings.list())
    queue = TaskQueue(make_huey(rt.settings), rt)
    log = (work / "leapd.log").open("wb")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "leap.daemon"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.5)
        floor = queue_floor(rt, queue, args.idle_samples)
        idle: list[float] = []
        for rid in ids[: args.idle_samples]:
            time.sleep(2.0)
            leap("process", str(rid))
            wait_runs(rt, len(idle) + 1, 60)
            with open_context(rt, Scope.system_scope()) as ctx:
                run = ctx.repos.runs.latest_for(rid)
                assert run is not None
                first = ctx.repos.stages.list(run_id=run.id, order_by=(StageResult.position,))[0]
                assert first.started_at is not None
                idle.append((first.started_at - run.created_at).total_seconds())
        t0 = time.monotonic()
        leap("process", *map(str, ids[args.idle_samples :]))
        wait_runs(rt, len(ids), 600)
        wall = time.monotonic() - t0
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        log.close()
    handoffs, pickups, busy, stages = measure(rt, ids[args.idle_samples :])
    overhead = (wall * 2 - busy) / stages  # 2 workers: worker time outside any stage
    rt.dispose()
    shutil.rmtree(work, ignore_errors=True)

    base = statistics.median(floor)
    print(
        f"pipeline benchmark: {len(ids) - args.idle_samples} recordings x 2 stages, "
        f"2 workers, SQLite queue, max_delay {args.max_delay} s"
    )
    print(
        f"baseline: no-op task idle pickup median {base * 1000:.0f} ms "
        f"(p95 {pct(floor, 0.95) * 1000:.0f} ms)"
    )
    print(
        f"idle daemon, single run: first stage started {statistics.median(idle) * 1000:.0f} ms "
        f"after the run was created (median of {len(idle)}; max {max(idle) * 1000:.0f} ms) "
        f"= {statistics.median(idle) / base:.2f}x baseline"
    )
    print(
        f"orchestration overhead per stage (2 workers x wall - time inside stages, / "
        f"{stages} stages): {overhead * 1000:.1f} ms; stages themselves averaged "
        f"{busy / stages * 1000:.0f} ms"
    )
    print(
        "stage hand-off under load (includes waiting behind other runs' stages): median "
        f"{statistics.median(handoffs) * 1000:.1f} ms, "
        f"mean {statistics.mean(handoffs) * 1000:.1f} ms, p95 {pct(handoffs, 0.95) * 1000:.1f} ms "
        f"({len(handoffs)} hand-offs)"
    )
    print(
        f"first-stage pickup under load (queueing behind other work included): median "
        f"{statistics.median(pickups) * 1000:.0f} ms"
    )
    print(
        f"wall: {wall:.2f} s for {len(ids) - args.idle_samples} runs "
        f"({wall / (len(ids) - args.idle_samples) * 1000:.0f} ms per run)"
    )


def measure(rt: Runtime, ids: list[int]) -> tuple[list[float], list[float], float, int]:
    handoffs: list[float] = []
    pickups: list[float] = []
    busy = 0.0
    count = 0
    with open_context(rt, Scope.system_scope()) as ctx:
        for rid in ids:
            run: PipelineRun | None = ctx.repos.runs.latest_for(rid)
            assert run is not None and run.status == "done", (rid, run and run.status)
            rows: list[Any] = ctx.repos.stages.list(run_id=run.id, order_by=(StageResult.position,))
            pickups.append((rows[0].started_at - run.created_at).total_seconds())
            for r in rows:
                busy += (r.finished_at - r.started_at).total_seconds()
                count += 1
            for prev, nxt in pairwise(rows):
                handoffs.append((nxt.started_at - prev.finished_at).total_seconds())
    return handoffs, pickups, busy, count


if __name__ == "__main__":
    main()
