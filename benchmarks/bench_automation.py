"""Automation benchmark: how late a firing starts after its planned time, and what an idle
leapd costs.

A fresh SQLite install with one job that fires every minute (cron `* * * * *`, the minimum
interval lowered for the run) and nothing to sync; one leapd runs for `--minutes`. Reported:
per firing, the delay from the planned time to the firing's start (the tick interval,
`automation.tick_seconds`, bounds it, plus the queue's pickup); and leapd's CPU seconds and
RSS over the run, the idle baseline being the same leapd with no job (run first, same
length). Ratios are against that baseline.

    .venv/bin/python -m benchmarks.bench_automation [--minutes 3] [--tick 15]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

from leap.config import load_settings
from leap.context import Runtime, open_context
from leap.db.scope import Scope

JOB = """
name = "every-minute"
[schedule]
kind = "cron"
expr = "* * * * *"
[action]
process = false
"""


def _proc_stats(pid: int) -> tuple[float, float]:
    """CPU seconds (user+system) and RSS (MB) of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss_pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return cpu, rss_pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def run_leapd(env: dict[str, str], seconds: float) -> tuple[float, float]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "leap.daemon"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(5)  # start-up is not idle cost
        cpu0, _ = _proc_stats(proc.pid)
        time.sleep(seconds)
        cpu1, rss = _proc_stats(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return cpu1 - cpu0, rss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--tick", type=float, default=15.0)
    args = ap.parse_args()
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "LEAP_DATA_DIR": f"{tmp}/data",
            "LEAP_CONFIG": f"{tmp}/leap.toml",
            "LEAP_SECRET_KEY": Fernet.generate_key().decode(),
            "LEAP_AUTOMATION__TICK_SECONDS": str(args.tick),
            "LEAP_AUTOMATION__MIN_INTERVAL_MINUTES": "0",
            "LEAP_QUEUE__MAX_DELAY": "1",
        }
        leap = [sys.executable, "-m", "leap.cli"]
        subprocess.run([*leap, "init", "--yes"], env=env, check=True, capture_output=True)
        base_cpu, base_rss = run_leapd(env, seconds)
        (Path(tmp) / "job.toml").write_text(JOB)
        subprocess.run(
            [*leap, "automation", "add", "--file", f"{tmp}/job.toml"],
            env=env,
            check=True,
            capture_output=True,
        )
        cpu, rss = run_leapd(env, seconds)
        os.environ.update({k: v for k, v in env.items() if k.startswith("LEAP_")})
        runtime = Runtime.from_settings(load_settings())
        with open_context(runtime, Scope.system_scope()) as ctx:
            rows = [
                (r.planned_at, r.started_at, r.status) for r in ctx.repos.automation_runs.list()
            ]
        runtime.dispose()
    delays = sorted((s - p).total_seconds() for p, s, _ in rows if p and s)
    print(f"tick {args.tick:g} s, {args.minutes:g} min per leapd run")
    print(f"firings: {len(rows)} ({', '.join(sorted({st for *_, st in rows}))})")
    if delays:
        print(
            f"delay planned -> started: min {delays[0]:.1f} s, median "
            f"{delays[len(delays) // 2]:.1f} s, max {delays[-1]:.1f} s"
        )
    print(f"idle leapd, no job: CPU {base_cpu:.2f} s, RSS {base_rss:.1f} MB (baseline)")
    ratio = cpu / base_cpu if base_cpu else float("nan")
    print(
        f"leapd with the job: CPU {cpu:.2f} s ({ratio:.2f}x), RSS {rss:.1f} MB "
        f"({rss / base_rss:.2f}x)"
    )


if __name__ == "__main__":
    main()
