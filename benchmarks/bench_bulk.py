"""Bulk-start benchmark: `leap process --template T --dry-run` and the real enqueue over N
recordings (100,000 by default), on SQLite and on PostgreSQL.

Each command runs as a fresh process (as a user runs it) under GNU time for its peak RSS;
the child counts its SQL statements. The baseline, measured in the same run on the same
install, is the path `leap process` took before it worked in pages: one unit of work per
recording (`runs.start_run`), timed over `--baseline` recordings and scaled to N. Memory
flatness: peak RSS at N/10 and at N, for the dry-run and for the real start, side by side
(the real start over N finds the first N/10 already started and starts the rest).

    .venv/bin/python -m benchmarks.bench_bulk [--recordings 100000] [--db sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import insert

from benchmarks.bench_sync import drop_scratch_pg, scratch_pg
from leap.config import load_settings
from leap.context import Runtime, open_context
from leap.db import models as m
from leap.db.migrate import upgrade
from leap.db.scope import Scope
from leap.domain import Role
from leap.queue import make_huey
from leap.services import runs, users
from leap.tasks import TaskQueue

START = datetime(2020, 1, 1, tzinfo=UTC)


def timed(env: dict[str, str], args: list[str], workdir: Path) -> dict[str, float]:
    count_file = workdir / "statements"
    proc_env = {**env, "BENCH_COUNT_FILE": str(count_file)}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            "/usr/bin/time",
            "-f",
            "MAXRSS %M",
            sys.executable,
            "-m",
            "benchmarks.counted",
            *args,
        ],
        env=proc_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 8):
        raise SystemExit(f"leap {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    rss = int(proc.stderr.rsplit("MAXRSS ", 1)[1].split()[0]) / 1024
    return {"wall_s": wall, "rss_mb": rss, "statements": int(count_file.read_text())}


def make_install(workdir: Path, db: str, n: int) -> tuple[Runtime, dict[str, str]]:
    env = {
        **os.environ,
        "LEAP_DATA_DIR": str(workdir),
        "LEAP_CONFIG": str(workdir / "none.toml"),
        "LEAP_SECRET_KEY": Fernet.generate_key().decode(),
    }
    if db == "postgres":
        env["LEAP_DATABASE__URL"] = scratch_pg()
        env["LEAP_QUEUE__BACKEND"] = "postgres"  # the queue several hosts would share
    else:
        env["LEAP_DATABASE__URL"] = f"sqlite:///{workdir / 'leap.db'}"
    os.environ.update(env)
    rt = Runtime.from_settings(load_settings())
    upgrade(rt.engine)
    with open_context(rt, Scope.system_scope()) as ctx:
        # On the unlimited plan: this measures starting runs, not quota refusals.
        user = users.create_user(ctx, "bench", role=Role.ADMIN, plan="enterprise")
    with open_context(rt, Scope.for_user(user.id, is_admin=True)) as ctx:
        src = ctx.repos.sources.add(m.InputSource(name="inbox", kind="local", config={}))
        for name in ("lectures", "baseline"):
            ctx.repos.templates.add(m.Template(name=name))
        tpl = ctx.repos.templates.require_name("lectures")
        rows = [
            {
                "user_id": user.id,
                "source_id": src.id,
                "external_id": f"rec-{i}",
                "title": f"Lecture {i}: time series",
                "start_time": START + timedelta(minutes=i),
                "duration_s": 3600.0,
                "size_bytes": 500_000_000,
                "template_id": tpl.id,
            }
            for i in range(n)
        ]
        for i in range(0, n, 10_000):
            ctx.session.execute(insert(m.Recording), rows[i : i + 10_000])
    rt.bench_user = user.id  # type: ignore[attr-defined]
    return rt, env


def baseline(rt: Runtime, count: int) -> float:
    """Seconds per recording of the old path: one unit of work per started run."""
    uid: int = rt.bench_user  # type: ignore[attr-defined]
    with open_context(rt, Scope.for_user(uid, is_admin=True)) as ctx:
        tpl = ctx.repos.templates.require_name("baseline")
        src = ctx.repos.sources.require_name("inbox")
        ids = [
            ctx.repos.recordings.add(
                m.Recording(
                    source_id=src.id,
                    external_id=f"base-{i}",
                    title="baseline",
                    start_time=START - timedelta(days=1, minutes=i),
                    template_id=tpl.id,
                )
            ).id
            for i in range(count)
        ]
    huey = make_huey(rt.settings)
    queue = TaskQueue(huey, rt)
    rt.enqueue = queue.send
    t0 = time.perf_counter()
    for rid in ids:
        with open_context(rt, Scope.for_user(uid, is_admin=True)) as ctx:
            runs.start_run(ctx, rid)
    elapsed = time.perf_counter() - t0
    huey.flush()
    return elapsed / count


def bench(db: str, n: int, base_n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="leap-bench-bulk-") as tmp:
        workdir = Path(tmp)
        t0 = time.perf_counter()
        rt, env = make_install(workdir, db, n)
        made = time.perf_counter() - t0
        try:
            per_rec = baseline(rt, base_n)
            leap = ["--user", "bench", "--json"]
            small = timed(
                env,
                [*leap, "process", "--template", "lectures", "--limit", str(n // 10), "--dry-run"],
                workdir,
            )
            dry = timed(env, [*leap, "process", "--template", "lectures", "--dry-run"], workdir)
            # The first tenth started alone, then the whole selection (that tenth is now
            # judged "already being processed"): memory at both sizes.
            real_tenth = timed(
                env,
                ["--user", "bench", "process", "--template", "lectures", "--limit", str(n // 10)],
                workdir,
            )
            real = timed(env, ["--user", "bench", "process", "--template", "lectures"], workdir)
            huey = make_huey(rt.settings)
            TaskQueue(huey, rt)
            messages = huey.pending_count()
            with open_context(rt, Scope.system_scope()) as ctx:
                started = ctx.repos.runs.count(status="active")
            huey.flush()
        finally:
            rt.dispose()
            if db == "postgres":
                drop_scratch_pg()
    return {
        "db": db,
        "recordings": n,
        "install_s": made,
        "baseline_s_per_recording": per_rec,
        "baseline_scaled_s": per_rec * n,
        "dry_run_tenth": small,
        "dry_run": dry,
        "enqueue_tenth": real_tenth,
        "enqueue": real,
        "runs_started": started,
        "queue_messages": messages,
    }


def show(r: dict[str, Any]) -> None:
    n = r["recordings"]
    base = r["baseline_scaled_s"]
    print(f"\n== {r['db']}: {n:,} recordings (install made in {r['install_s']:.1f} s)")
    print(
        f"baseline, one unit of work per recording: {r['baseline_s_per_recording'] * 1000:.2f} "
        f"ms each -> {base:.1f} s for {n:,}"
    )
    for label, key in (
        (f"process --dry-run ({n // 10:,})", "dry_run_tenth"),
        (f"process --dry-run ({n:,})", "dry_run"),
        (f"process, real enqueue ({n // 10:,})", "enqueue_tenth"),
        (f"process over {n:,} ({n - n // 10:,} start)", "enqueue"),
    ):
        f = r[key]
        ratio = f["wall_s"] / (base / 10 if "tenth" in key else base)
        print(
            f"{label:36s} {f['wall_s']:6.1f} s  {ratio:5.2f}x baseline  "
            f"{f['statements']:6,} statements  peak RSS {f['rss_mb']:5.0f} MB"
        )
    print(f"runs started: {r['runs_started']:,}; queue messages: {r['queue_messages']:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=2_000)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    if args.db != "both":
        result = bench(args.db, args.recordings, args.baseline)
        show(result)
        print("\nRESULT " + json.dumps(result))
        return
    # One process per database: huey's PostgreSQL storage must be imported in a process
    # whose queue is PostgreSQL (leap.queue imports only the backend it uses).
    results = []
    for db in ("sqlite", "postgres"):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_bulk",
                "--db",
                db,
                "--recordings",
                str(args.recordings),
                "--baseline",
                str(args.baseline),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results.append(json.loads(out.rsplit("RESULT ", 1)[1]))
    for r in results:
        show(r)
    print("\n" + json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
