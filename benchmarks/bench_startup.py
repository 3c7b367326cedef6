"""Start-up benchmark: how long `leap` takes before it does anything, and its peak memory.

Each command runs N times as a fresh process (the way a user or a script runs it); the best
wall time and the peak RSS are reported, with the wall time as a ratio to the baseline
measured in the same run: `python -c pass` in the same interpreter. `recordings list` runs
on an install holding 10,000 recordings (SQLite, inserted once), listing the default page.

    .venv/bin/python -m benchmarks.bench_startup [--runs 5] [--recordings 10000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert

from leap.config import load_settings
from leap.context import Runtime, open_context
from leap.db.models import InputSource, Recording
from leap.db.scope import Scope
from leap.services import users


def timed(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Best wall time (s) and peak RSS (MB) over `runs` fresh processes. RSS comes from
    GNU time: a child's own rusage would count the pages it shared with this parent at fork."""
    best, peak = float("inf"), 0.0
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "MAXRSS %M", *cmd],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
        kib = int(proc.stderr.rsplit("MAXRSS ", 1)[1].split()[0])
        best = min(best, elapsed)
        peak = max(peak, kib / 1024)
    return best, peak


def seed(env: dict[str, str], count: int) -> None:
    leap = [sys.executable, "-m", "leap.cli"]
    subprocess.run([*leap, "init", "--yes"], env=env, check=True, capture_output=True)
    os.environ.update(env)
    settings = load_settings(env["LEAP_CONFIG"])
    runtime = Runtime.from_settings(settings)
    with open_context(runtime, Scope.system_scope()) as ctx:
        admin = users.list_users(ctx)[0]
        src = ctx.repos.sources.add(
            InputSource(user_id=admin.id, name="bench", kind="local", config={"path": "/tmp"})
        )
        start = datetime(2025, 1, 1, tzinfo=UTC)
        rows = [
            {
                "user_id": admin.id,
                "source_id": src.id,
                "external_id": f"rec-{i}",
                "title": f"Lecture {i}: time series and forecasting",
                "start_time": start + timedelta(hours=i),
                "duration_s": 3600.0,
                "size_bytes": 500_000_000,
            }
            for i in range(count)
        ]
        ctx.session.execute(insert(Recording), rows)
    runtime.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--recordings", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leap-bench-startup-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        env = {
            **os.environ,
            "LEAP_DATA_DIR": str(data),
            "LEAP_CONFIG": str(data / "leap.toml"),
            "COLUMNS": "120",
        }
        env.pop("LEAP_DATABASE_URL", None)
        t0 = time.perf_counter()
        seed(env, args.recordings)
        print(f"install with {args.recordings} recordings made in {time.perf_counter() - t0:.1f} s")
        leap = [sys.executable, "-m", "leap.cli"]
        base, base_rss = timed([sys.executable, "-c", "pass"], env, args.runs)
        print(f"baseline `python -c pass`: {base * 1000:.0f} ms, {base_rss:.0f} MB")
        for label, cmd in (
            ("leap --help", [*leap, "--help"]),
            ("leap --version", [*leap, "--version"]),
            ("leap secrets --help", [*leap, "secrets", "--help"]),
            ("leap whoami", [*leap, "whoami"]),
            (f"leap recordings list ({args.recordings})", [*leap, "recordings", "list"]),
            (
                "leap --json recordings list --limit 1000",
                [*leap, "--json", "recordings", "list", "--limit", "1000"],
            ),
        ):
            wall, rss = timed(cmd, env, args.runs)
            print(
                f"{label:45s} {wall * 1000:6.0f} ms  {wall / base:5.1f}x baseline  "
                f"peak RSS {rss:4.0f} MB"
            )


if __name__ == "__main__":
    main()
