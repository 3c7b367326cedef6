"""Soak benchmark: N recordings (1,000 by default) with instant stages (download of a tiny
local clip + trim disabled, as bench_pipeline) through real leapd processes, per config:

- sqlite-1:   1 leapd, SQLite database, SQLite queue (one host's install);
- pg-redis-1: 1 leapd, PostgreSQL database (scratch), Redis queue;
- pg-redis-3: 3 leapd processes on the shared PostgreSQL + Redis (the multi-host paths).

Each config is a fresh process with a fresh data dir, database and queue: `leap init`, a
local source of N hard links to one clip, `leap sync`, K leapd started (each its own log)
until `leap --json status --daemon` lists all K alive, then one bulk `leap process
--template all`, and the stage rows are polled until every run is done (a stall, a failed
stage or a dead leapd ends the config with its logs: a finding, not an error to hide).

Figures, from the runs' and stages' own timestamps: wall (first run created -> last run
finished), recordings per minute, p50/p95 run latency (finished - created), first-stage
pickup (started - queued, which under a bulk start includes waiting behind the other runs),
stage hand-off (next started - previous finished); LEAP's SQL statements per recording in
the daemons (each leapd runs under this module's `--leapd` wrapper, which counts statements
with a SQLAlchemy `before_cursor_execute` listener and writes the count on SIGUSR1 and at
exit; Huey's own queue traffic is not SQLAlchemy and is not counted) and in `leap process`;
each leapd's RSS (VmRSS) just before the bulk start and after the last run finished.
`--rounds 2` adds a second bulk start of N new recordings on the same daemons: RSS that
grew in round 1 and stays flat in round 2 is warm-up (caches, pools); growing again, a leak.
The headline figures are round 1's.

Baselines measured in the same run: (1) per config, a no-op Huey task's idle round trip on
the same backend and daemons (enqueue -> its database write visible), the floor of any
pickup; (2) across configs, sqlite-1 (the default install): the other configs' throughput,
latency and statements are printed as ratios to it.

    .venv/bin/python -m benchmarks.bench_soak [--recordings 1000] \
        [--configs sqlite-1,pg-redis-1,pg-redis-3] [--workers 2] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

from benchmarks.bench_pipeline import leap

CONFIGS = {"sqlite-1": ("sqlite", 1), "pg-redis-1": ("pg-redis", 1), "pg-redis-3": ("pg-redis", 3)}
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
STALL_SECONDS = 180.0  # no run finished for this long: stuck


# --- the leapd wrapper (runs in each daemon process) -----------------------------------


def leapd_child(argv: list[str]) -> None:
    """`leapd ARGV` in this process, counting LEAP's SQL statements by kind. The counts go
    to BENCH_COUNT_FILE.<n> on the n-th SIGUSR1 and to BENCH_COUNT_FILE.final at exit."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from leap.daemon.main import main as leapd_main

    kinds: Counter[str] = Counter()
    base = os.environ["BENCH_COUNT_FILE"]
    snaps = [0]

    def seen(_conn: Any, _cursor: Any, statement: str, *_a: Any) -> None:
        kinds[statement.lstrip().split(None, 1)[0].upper()] += 1

    def dump(name: str) -> None:
        tmp = Path(f"{base}.tmp")
        tmp.write_text(json.dumps(dict(kinds)))
        tmp.replace(f"{base}.{name}")

    def on_usr1(*_a: Any) -> None:
        snaps[0] += 1
        dump(str(snaps[0]))

    event.listen(Engine, "before_cursor_execute", seen)
    signal.signal(signal.SIGUSR1, on_usr1)
    try:
        leapd_main(argv)
    finally:
        dump("final")


def leap_child(argv: list[str]) -> None:
    """`leap ARGV` here, its statement counts to BENCH_COUNT_FILE.final (as bench_bulk)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from leap.cli.app import main as leap_main

    kinds: Counter[str] = Counter()

    def seen(_conn: Any, _cursor: Any, statement: str, *_a: Any) -> None:
        kinds[statement.lstrip().split(None, 1)[0].upper()] += 1

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        leap_main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:
        code = 0
    Path(os.environ["BENCH_COUNT_FILE"] + ".final").write_text(json.dumps(dict(kinds)))
    sys.exit(code)


def total(kinds: dict[str, int]) -> int:
    return sum(kinds.values())


def writes(kinds: dict[str, int]) -> int:
    return sum(kinds.get(k, 0) for k in ("INSERT", "UPDATE", "DELETE"))


# --- one config (runs in a fresh process) -----------------------------------------------


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def snapshot(procs: list[subprocess.Popen[bytes]], count_base: list[Path], n: int) -> list[Any]:
    """The n-th statement-count snapshot of every leapd (SIGUSR1, then its file)."""
    for p in procs:
        p.send_signal(signal.SIGUSR1)
    out = []
    for base in count_base:
        path = Path(f"{base}.{n}")
        deadline = time.monotonic() + 30
        while not path.exists():
            if time.monotonic() > deadline:
                raise SystemExit(f"no statement snapshot {path}")
            time.sleep(0.02)
        out.append(json.loads(path.read_text()))
    return out


def fresh_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    if client.dbsize():
        raise SystemExit(f"{url} is not empty: pick another with --redis-db (it is flushed)")
    client.close()


def flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"


def soak_round(
    rt: Any,
    procs: list[subprocess.Popen[bytes]],
    logs: list[Path],
    counts: list[Path],
    work: Path,
    n: int,
    r: int,
) -> dict[str, Any]:
    """One bulk start of N new recordings, until every run is over: RSS, statements."""
    out: dict[str, Any] = {}
    before = snapshot(procs, counts, 2 * r - 1)
    out["rss_before_kb"] = [rss_kb(p.pid) for p in procs]
    enqueue_count = work / f"enqueue-{r}"
    bulk = ["process", "--template", "all"]
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_soak", "--leap", *bulk],
        env={**os.environ, "BENCH_COUNT_FILE": str(enqueue_count)},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    out["enqueue_wall_s"] = time.monotonic() - t0
    if proc.returncode not in (0, 8):
        raise SystemExit(f"leap process failed ({proc.returncode}): {proc.stderr[-2000:]}")
    out["enqueue_statements"] = total(json.loads(Path(f"{enqueue_count}.final").read_text()))
    problem = wait_done(rt, procs, logs, n * r)
    if problem:
        out["problem"] = problem
    out["observed_wall_s"] = time.monotonic() - t0
    after = snapshot(procs, counts, 2 * r)
    out["rss_after_kb"] = [rss_kb(p.pid) for p in procs]
    out["rss_peak_kb"] = [rss_kb(p.pid, "VmHWM") for p in procs]
    per = [{k: a.get(k, 0) - b.get(k, 0) for k in a} for a, b in zip(after, before, strict=True)]
    out["daemon_statements"] = [total(p) for p in per]
    out["daemon_writes"] = [writes(p) for p in per]
    out["daemon_statement_kinds"] = dict(sum((Counter(p) for p in per), Counter()))
    return out


def run_config(
    name: str, n: int, workers: int, redis_db: int, samples: int, rounds: int
) -> dict[str, Any]:
    from cryptography.fernet import Fernet
    from tests import media

    from benchmarks.bench_sync import drop_scratch_pg, scratch_pg

    kind, daemons = CONFIGS[name]
    work = Path(tempfile.mkdtemp(prefix=f"leap-bench-soak-{name}-"))
    inbox = work / "inbox"
    inbox.mkdir()
    clip = media.make_video(work / "clip.mp4", 2)
    for i in range(n):
        os.link(clip, inbox / f"lecture {i:05d}.mp4")
    env = {
        "LEAP_DATA_DIR": str(work / "data"),
        "LEAP_CONFIG": str(work / "none.toml"),
        "LEAP_SECRET_KEY": Fernet.generate_key().decode(),
        "LEAP_SYNC__LOCAL_SETTLE_SECONDS": "0",
        "LEAP_WORKER__COUNT": str(workers),
    }
    redis_url = f"redis://127.0.0.1:6379/{redis_db}"
    if kind == "pg-redis":
        fresh_redis(redis_url)
        env["LEAP_DATABASE__URL"] = scratch_pg()
        env["LEAP_QUEUE__BACKEND"] = "redis"
        env["LEAP_QUEUE__URL"] = redis_url
    os.environ.update(env)
    result: dict[str, Any] = {"config": name, "daemons": daemons, "recordings": n}
    procs: list[subprocess.Popen[bytes]] = []
    logs = [work / f"leapd-{i}.log" for i in range(daemons)]
    counts = [work / f"statements-{i}" for i in range(daemons)]
    rt = None
    try:
        (work / "t.toml").write_text(TEMPLATE)
        leap("init", "--yes")
        leap("source", "add", "local", "inbox", str(inbox))
        leap("template", "add", "--file", str(work / "t.toml"))
        leap("sync")

        from benchmarks.bench_pipeline import queue_floor
        from leap.config import load_settings
        from leap.context import Runtime, open_context
        from leap.db.scope import Scope
        from leap.queue import make_huey
        from leap.tasks import TaskQueue

        rt = Runtime.from_settings(load_settings())
        with open_context(rt, Scope.system_scope()) as ctx:
            result["recordings_synced"] = ctx.repos.recordings.count()
        lanes = ["--workers", str(workers)]
        for i in range(daemons):
            with logs[i].open("ab") as fh:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "benchmarks.bench_soak", "--leapd", *lanes],
                        env={**os.environ, "BENCH_COUNT_FILE": str(counts[i])},
                        stdout=fh,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                )
        wait_alive(procs, logs)
        queue = TaskQueue(make_huey(rt.settings), rt)
        floor = queue_floor(rt, queue, samples)
        result["noop_roundtrip_s"] = floor

        seen: set[int] = set()
        result["rounds"] = []
        for r in range(1, rounds + 1):
            if r > 1:  # N more recordings, the same way; the bulk start skips the done ones
                for i in range(n * (r - 1), n * r):
                    os.link(clip, inbox / f"lecture {i:05d}.mp4")
                leap("sync")
            out = soak_round(rt, procs, logs, counts, work, n, r)
            with open_context(rt, Scope.system_scope()) as ctx:
                ids = {run.id for run in ctx.repos.runs.list()} - seen
            seen |= ids
            out.update(measure(rt, ids))
            result["rounds"].append(out)
            if out.get("problem"):
                result["problem"] = f"round {r}: {out['problem']}"
                break
        result.update({k: v for k, v in result["rounds"][0].items() if k != "problem"})
    finally:
        codes = []
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                codes.append(p.wait(timeout=60))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait())
        result["exit_codes"] = codes
        if rt is not None:
            rt.dispose()
        if kind == "pg-redis":
            drop_scratch_pg()
            flush_redis(redis_url)
    bad = [c for c in codes if c != 0]
    if bad or "problem" in result:
        result["logs"] = {str(log): tail(log) for log in logs}
        result["workdir"] = str(work)  # kept for the post-mortem
    else:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return result


def wait_alive(procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    pids = {p.pid for p in procs}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for p, log in zip(procs, logs, strict=True):
            if p.poll() is not None:
                raise SystemExit(f"leapd {p.pid} exited {p.returncode} at start:\n{tail(log)}")
        shown = json.loads(leap("--json", "status", "--daemon"))
        alive = {int(d["pid"]) for d in shown.get("daemons", []) if d.get("alive")}
        if pids <= alive:
            return
        time.sleep(0.3)
    raise SystemExit("the daemons were not all listed alive within 60 s")


def wait_done(rt: Any, procs: list[subprocess.Popen[bytes]], logs: list[Path], n: int) -> str:
    """Poll until N runs exist and none is active; '' or what went wrong."""
    from leap.context import open_context
    from leap.db.scope import Scope

    last_change = time.monotonic()
    last = (-1, -1)
    while True:
        for p, log in zip(procs, logs, strict=True):
            if p.poll() is not None:
                return f"leapd {p.pid} ({log.name}) exited {p.returncode} mid-run"
        with open_context(rt, Scope.system_scope()) as ctx:
            runs = ctx.repos.runs.count()
            active = ctx.repos.runs.count(status="active")
        if runs >= n and active == 0:
            return ""
        if (runs, active) != last:
            last, last_change = (runs, active), time.monotonic()
        elif time.monotonic() - last_change > STALL_SECONDS:
            return f"stalled: {runs} runs, {active} active, no change for {STALL_SECONDS:.0f} s"
        time.sleep(0.5)


def measure(rt: Any, ids: set[int]) -> dict[str, Any]:
    """Figures of the runs `ids`, from their own and their stages' timestamps."""
    from leap.context import open_context
    from leap.db.models import StageResult
    from leap.db.scope import Scope

    by_run: dict[int, list[Any]] = {}
    with open_context(rt, Scope.system_scope()) as ctx:
        runs = [r for r in ctx.repos.runs.list() if r.id in ids]
        for s in ctx.repos.stages.list(order_by=(StageResult.run_id, StageResult.position)):
            if s.run_id in ids:
                by_run.setdefault(s.run_id, []).append(s)
        statuses = Counter(r.status for r in runs)
        stage_statuses = Counter(s.status for rows in by_run.values() for s in rows)
        done = [r for r in runs if r.status == "done" and r.finished_at is not None]
        ends = {r.id: r.finished_at for r in done if r.finished_at is not None}
        latency = [(ends[r.id] - r.created_at).total_seconds() for r in done]
        pickup: list[float] = []
        handoff: list[float] = []
        inside: list[float] = []
        for r in done:
            rows = by_run.get(r.id, [])
            if rows and rows[0].started_at and rows[0].queued_at:
                pickup.append((rows[0].started_at - rows[0].queued_at).total_seconds())
            inside += [
                (x.finished_at - x.started_at).total_seconds()
                for x in rows
                if x.finished_at and x.started_at
            ]
            for prev, nxt in pairwise(rows):
                if nxt.started_at and prev.finished_at:
                    handoff.append((nxt.started_at - prev.finished_at).total_seconds())
        wall = (
            (max(ends.values()) - min(r.created_at for r in runs)).total_seconds()
            if ends
            else float("nan")
        )
    return {
        "runs": len(runs),
        "run_statuses": dict(statuses),
        "stage_statuses": dict(stage_statuses),
        "done": len(done),
        "wall_s": wall,
        "latency_s": latency,
        "pickup_s": pickup,
        "handoff_s": handoff,
        "stage_s": inside,
    }


# --- the parent: every config in its own process, one table ------------------------------


def summarize(r: dict[str, Any]) -> dict[str, Any]:
    n = r["recordings"]
    done = r.get("done", 0)
    s: dict[str, Any] = {"config": r["config"], "daemons": r["daemons"], "done": done}
    s["wall_s"] = r.get("wall_s", float("nan"))
    s["per_min"] = done / s["wall_s"] * 60 if s["wall_s"] and done else float("nan")
    for key in ("latency", "pickup", "handoff", "stage"):
        vals = r.get(f"{key}_s", [])
        s[f"{key}_p50_ms"] = pct(vals, 0.5) * 1000
        s[f"{key}_p95_ms"] = pct(vals, 0.95) * 1000
    floor = r.get("noop_roundtrip_s", [])
    s["noop_p50_ms"] = statistics.median(floor) * 1000 if floor else float("nan")
    s["sql_per_rec"] = sum(r.get("daemon_statements", [])) / n
    s["writes_per_rec"] = sum(r.get("daemon_writes", [])) / n
    s["sql_kinds_per_rec"] = {
        k: round(v / n, 2) for k, v in sorted(r.get("daemon_statement_kinds", {}).items())
    }
    s["enqueue_sql_per_rec"] = r.get("enqueue_statements", 0) / n
    s["enqueue_wall_s"] = r.get("enqueue_wall_s", float("nan"))
    before, after = r.get("rss_before_kb", []), r.get("rss_after_kb", [])
    s["rss_mb"] = [
        (b / 1024, a / 1024, (a - b) / 1024) for b, a in zip(before, after, strict=False)
    ]
    s["stage_statuses"] = r.get("stage_statuses", {})
    s["later_rounds"] = []
    first_after = r.get("rss_after_kb", [])
    for k, rd in enumerate(r.get("rounds", [])[1:], start=2):
        rdone = rd.get("done", 0)
        wall = rd.get("wall_s", float("nan"))
        s["later_rounds"].append(
            {
                "round": k,
                "done": rdone,
                "per_min": rdone / wall * 60 if wall and rdone else float("nan"),
                "latency_p50_ms": pct(rd.get("latency_s", []), 0.5) * 1000,
                "sql_per_rec": sum(rd.get("daemon_statements", [])) / n,
                "rss_after_mb": [a / 1024 for a in rd.get("rss_after_kb", [])],
                "rss_vs_round1_mb": [
                    (a - b) / 1024
                    for a, b in zip(rd.get("rss_after_kb", []), first_after, strict=False)
                ],
            }
        )
    s["exit_codes"] = r.get("exit_codes", [])
    s["problem"] = r.get("problem", "")
    return s


def show(results: list[dict[str, Any]], workers: int) -> None:
    sums = [summarize(r) for r in results]
    base = next((s for s in sums if s["config"] == "sqlite-1"), sums[0])
    n = results[0]["recordings"]
    print(
        f"\nsoak benchmark: {n:,} recordings x 2 instant stages (download of a tiny local "
        f"clip, trim disabled), {workers} worker(s) per lane per leapd, all on this host"
    )
    print(
        "baselines (same run): no-op Huey task idle round trip on each config's own backend "
        f"and daemons; ratios (x) against {base['config']}"
    )

    def ratio(v: float, b: float) -> str:
        return f"{v / b:.2f}x" if b and b == b and v == v else "-"

    rows: list[tuple[str, list[str]]] = []

    def add(label: str, fmt: str, key: str, with_ratio: bool = True) -> None:
        cells = []
        for s in sums:
            text = fmt.format(s[key])
            if with_ratio and s is not base:
                text += f" ({ratio(s[key], base[key])})"
            cells.append(text)
        rows.append((label, cells))

    add("recordings done", "{:,}", "done", with_ratio=False)
    add("wall, first created -> last done", "{:.1f} s", "wall_s")
    add("recordings per minute", "{:,.0f}", "per_min")
    add("run latency p50 (created -> done)", "{:,.0f} ms", "latency_p50_ms")
    add("run latency p95", "{:,.0f} ms", "latency_p95_ms")
    add("first-stage pickup p50 (queued ->)", "{:,.0f} ms", "pickup_p50_ms")
    add("first-stage pickup p95", "{:,.0f} ms", "pickup_p95_ms")
    add("stage hand-off p50 (done -> next)", "{:,.1f} ms", "handoff_p50_ms")
    add("stage hand-off p95", "{:,.1f} ms", "handoff_p95_ms")
    add("time inside a stage p50", "{:,.1f} ms", "stage_p50_ms")
    add("baseline: no-op task round trip p50", "{:,.1f} ms", "noop_p50_ms")
    rows.append(
        (
            "hand-off p50 / no-op round trip",
            [ratio(s["handoff_p50_ms"], s["noop_p50_ms"]) for s in sums],
        )
    )
    add("SQL statements per recording, leapd", "{:.1f}", "sql_per_rec")
    add("  of which INSERT/UPDATE/DELETE", "{:.1f}", "writes_per_rec")
    add("SQL per recording, leap process", "{:.2f}", "enqueue_sql_per_rec")
    add("leap process (bulk start) wall", "{:.1f} s", "enqueue_wall_s")
    rows.append(
        (
            "RSS before -> after (delta), MB",
            [" | ".join(f"{b:.0f}->{a:.0f} ({d:+.1f})" for b, a, d in s["rss_mb"]) for s in sums],
        )
    )
    for k in range(max(len(s["later_rounds"]) for s in sums)):

        def later(s: dict[str, Any], key: str, fmt: str, k: int = k) -> str:
            lr = s["later_rounds"]
            return fmt.format(lr[k][key]) if k < len(lr) else "-"

        rk = k + 2
        rows.append(
            (f"round {rk}: recordings per minute", [later(s, "per_min", "{:,.0f}") for s in sums])
        )
        rows.append(
            (
                f"round {rk}: run latency p50",
                [later(s, "latency_p50_ms", "{:,.0f} ms") for s in sums],
            )
        )
        rows.append(
            (
                f"round {rk}: SQL per recording, leapd",
                [later(s, "sql_per_rec", "{:.1f}") for s in sums],
            )
        )
        rows.append(
            (
                f"round {rk}: RSS after (vs end of round 1), MB",
                [
                    " | ".join(
                        f"{a:.0f} ({d:+.1f})"
                        for a, d in zip(
                            s["later_rounds"][k]["rss_after_mb"],
                            s["later_rounds"][k]["rss_vs_round1_mb"],
                            strict=False,
                        )
                    )
                    if k < len(s["later_rounds"])
                    else "-"
                    for s in sums
                ],
            )
        )
    rows.append(("leapd exit codes", [",".join(map(str, s["exit_codes"])) for s in sums]))
    width = max(len(label) for label, _ in rows)
    cols = [
        max(len(f"{s['config']} ({s['daemons']} leapd)"), *(len(c[i]) for _, c in rows))
        for i, s in enumerate(sums)
    ]
    head = [f"{s['config']} ({s['daemons']} leapd)" for s in sums]
    print(
        "\n" + " " * width + "  " + "  ".join(h.rjust(w) for h, w in zip(head, cols, strict=True))
    )
    for label, cells in rows:
        print(
            label.ljust(width)
            + "  "
            + "  ".join(c.rjust(w) for c, w in zip(cells, cols, strict=True))
        )
    for r in results:
        if r.get("problem") or any(c != 0 for c in r.get("exit_codes", [])):
            print(f"\n!! {r['config']}: {r.get('problem') or 'a leapd exited non-zero'}")
            print(f"   runs {r.get('run_statuses')}, stages {r.get('stage_statuses')}")
            print(f"   workdir kept: {r.get('workdir')}")
            for log, text in r.get("logs", {}).items():
                print(f"   --- {log} (tail)\n{text}")
    print(
        "\nnote: 2 shared CPU cores, all daemons and the databases on one host: figures are "
        "noisy; compare the ratios, measured in the same run."
    )
    print("RESULT " + json.dumps({"workers": workers, "configs": sums}))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--leapd":
        leapd_child(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--leap":
        leap_child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", type=int, default=1000)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--workers", type=int, default=2, help="leapd --workers (per lane)")
    ap.add_argument("--redis-db", type=int, default=12, help="must be empty; flushed after")
    ap.add_argument("--idle-samples", type=int, default=5)
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="bulk starts of N new recordings each on the same daemons (RSS: warm-up or leak?)",
    )
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one config, print RESULT
    args = ap.parse_args()
    if args.one:
        r = run_config(
            args.one, args.recordings, args.workers, args.redis_db, args.idle_samples, args.rounds
        )
        print("CONFIG " + json.dumps(r))
        return
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    for c in names:
        if c not in CONFIGS:
            raise SystemExit(f"unknown config {c!r}; known: {', '.join(CONFIGS)}")
    results = []
    # One process per config: fresh, and huey.storage imports only that config's backend
    # client (leap.queue), so each must be its own process.
    common = [
        *("--recordings", str(args.recordings), "--workers", str(args.workers)),
        *("--redis-db", str(args.redis_db), "--idle-samples", str(args.idle_samples)),
        *("--rounds", str(args.rounds)),
    ]
    for c in names:
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_soak", "--one", c, *common],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if "CONFIG " not in proc.stdout:
            print(f"!! {c} failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-5000:]}")
            results.append(
                {
                    "config": c,
                    "daemons": CONFIGS[c][1],
                    "recordings": args.recordings,
                    "problem": f"config process failed ({proc.returncode})",
                }
            )
            continue
        results.append(json.loads(proc.stdout.rsplit("CONFIG ", 1)[1]))
        print(f"{c}: {time.monotonic() - t0:.0f} s", file=sys.stderr)
    show(results, args.workers)


if __name__ == "__main__":
    main()
