"""Usage report and admin statistics benchmark: `leap admin stats overview | users | quotas`
and `leap usage NAME --by metric|template|day` over 1,000 users and 1,000,000 usage events
(docs/usage.md), on SQLite and on PostgreSQL. Target: under 2 s each.

Each command runs as a fresh process (as an admin runs it), three times, and its median
time is shown; the child counts its SQL statements. Two baselines are measured in the same
run on the same install: the start-up floor (`leap whoami`, a process that reads one row)
and the per-user path the statistics avoid, one unit of work per user summing that user's
period (services/quotas.used, as `leap quota show NAME` does), timed over every user.

    .venv/bin/python -m benchmarks.bench_usage [--users 1000] [--events 1000000]
        [--db sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet

from benchmarks.bench_sync import drop_scratch_pg, scratch_pg
from leap.config import load_settings
from leap.context import Runtime, open_context
from leap.db import models as m
from leap.db.migrate import upgrade
from leap.db.scope import Scope
from leap.domain import Role
from leap.services import quotas, users
from leap.specs.quota import period

ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Tokyo",
    "Australia/Sydney",
    "America/Los_Angeles",
)
PLANS = ("free", "plus", "pro", "enterprise")
# Kind, weight, amount range.
MIX = (
    ("recordings", 20, (1, 1)),
    ("transcription_minutes", 20, (1, 90)),
    ("local_transcription_minutes", 20, (1, 90)),
    ("llm_tokens", 30, (500, 20_000)),
    ("youtube_uploads", 5, (1, 1)),
    ("vk_uploads", 5, (1, 1)),
)
ERRORS = (
    ("download", "HTTP 404 from Zoom: meeting {i} is gone", 1),
    ("transcribe", "HTTP 429 from Fireworks: slow down ({i})", 1),
    ("upload", "re-authenticate yt-{i}", 5),
)
TARGET_S = 2.0
# Each command runs this many times; its median is shown.
REPEAT = 3


def timed(env: dict[str, str], args: list[str], workdir: Path) -> dict[str, float]:
    """The median wall time of REPEAT fresh processes (a shared machine is noisy)."""
    runs = sorted((_once(env, args, workdir) for _ in range(REPEAT)), key=lambda r: r["wall_s"])
    return runs[len(runs) // 2]


def _once(env: dict[str, str], args: list[str], workdir: Path) -> dict[str, float]:
    count_file = workdir / "statements"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.counted", *args],
        env={**env, "BENCH_COUNT_FILE": str(count_file)},
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"leap {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return {
        "wall_s": wall,
        "statements": int(count_file.read_text()),
        "stdout_bytes": len(proc.stdout),
    }


def _fmt(value: datetime) -> str:
    """A UTC instant as SQLAlchemy stores it in SQLite."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def seed(rt: Runtime, n_users: int, n_events: int, now: datetime) -> dict[str, Any]:
    """The admin `bench` and `n_users` users on every plan and six timezones, each with a
    source, 3 templates, 10 recordings (a run each, some failed, some in progress), custom
    limits for some, and `n_events` usage events over the last year."""
    rnd = random.Random(17)
    with open_context(rt, Scope.system_scope()) as ctx:
        users.create_user(ctx, "bench", role=Role.ADMIN)
        plan_ids = {p.name: p.id for p in ctx.repos.plans.list()}
    names = [f"u{i:05d}" for i in range(n_users)]
    eng = rt.engine
    with eng.begin() as conn:
        conn.execute(
            m.User.__table__.insert(),
            [
                {
                    "name": name,
                    "role": "user",
                    "timezone": ZONES[i % len(ZONES)],
                    "plan_id": plan_ids[PLANS[i % len(PLANS)]],
                    "disabled": i % 50 == 49,
                    "created_at": now - timedelta(days=rnd.randint(1, 700), hours=i % 24),
                }
                for i, name in enumerate(names)
            ],
        )
        ids = [
            uid
            for (uid,) in conn.exec_driver_sql(
                "SELECT id FROM users WHERE name <> 'bench' ORDER BY name"
            )
        ]
        conn.execute(
            m.QuotaOverride.__table__.insert(),
            [
                {"user_id": uid, "key": "recordings_per_month", "value": 20.0, "until": until}
                for i, uid in enumerate(ids)
                if i % 10 == 0
                for until in [now + timedelta(days=30) if i % 20 == 0 else now - timedelta(days=1)]
            ],
        )
        conn.execute(
            m.InputSource.__table__.insert(),
            [{"user_id": uid, "name": "inbox", "kind": "local", "config": {}} for uid in ids],
        )
        src = dict(conn.exec_driver_sql("SELECT user_id, id FROM input_sources").all())
        conn.execute(
            m.Template.__table__.insert(),
            [{"user_id": uid, "name": f"course-{k}"} for uid in ids for k in range(3)],
        )
        tpls: dict[int, list[int]] = {}
        for uid, tid in conn.exec_driver_sql("SELECT user_id, id FROM templates ORDER BY id"):
            tpls.setdefault(uid, []).append(tid)
        conn.execute(
            m.Recording.__table__.insert(),
            [
                {
                    "user_id": uid,
                    "source_id": src[uid],
                    "external_id": f"r{k}",
                    "start_time": now - timedelta(days=k),
                    "template_id": None if k == 9 else tpls[uid][k % 3],
                    "status": "failed" if k == 0 else "downloading" if k == 1 else "ready",
                }
                for uid in ids
                for k in range(10)
            ],
        )
        recs: dict[int, list[int]] = {}
        for uid, rid in conn.exec_driver_sql("SELECT user_id, id FROM recordings ORDER BY id"):
            recs.setdefault(uid, []).append(rid)
        conn.execute(
            m.PipelineRun.__table__.insert(),
            [
                {
                    "user_id": uid,
                    "recording_id": rid,
                    "status": "failed" if k == 0 else "active" if k == 1 else "done",
                    "created_at": now - timedelta(days=k),
                    "updated_at": now - timedelta(days=k),
                }
                for uid in ids
                for k, rid in enumerate(recs[uid])
            ],
        )
        stage_rows = []
        for run_id, uid, rid, status in conn.exec_driver_sql(
            "SELECT id, user_id, recording_id, status FROM pipeline_runs"
        ):
            for pos, name in enumerate(("download", "trim", "transcribe", "upload")):
                st, error, result = "done", None, {}
                if status == "failed" and pos == uid % 3:
                    stage, text, code = ERRORS[uid % 3]
                    name, st, error, result = (
                        stage,
                        "failed",
                        text.format(i=rid),
                        {"exit_code": code},
                    )
                elif (status == "failed" and pos > uid % 3) or (status == "active" and pos > 0):
                    break
                stage_rows.append(
                    {
                        "user_id": uid,
                        "run_id": run_id,
                        "recording_id": rid,
                        "name": name,
                        "position": pos,
                        "status": st if status != "active" else "running",
                        "error": error,
                        "result": result,
                    }
                )
        conn.execute(m.StageResult.__table__.insert(), stage_rows)
    t0 = time.perf_counter()
    kinds = [k for k, _, _ in MIX]
    weights = [w for _, w, _ in MIX]
    spans = dict((k, span) for k, _, span in MIX)
    year = 365 * 24 * 3600

    def events() -> Any:
        for kind in rnd.choices(kinds, weights, k=n_events):
            uid = ids[rnd.randrange(n_users)]
            lo, hi = spans[kind]
            rid = recs[uid][rnd.randrange(10)] if rnd.random() < 0.7 else None
            at = now - timedelta(seconds=rnd.randrange(year))
            yield uid, kind, float(rnd.randint(lo, hi)), rid, at

    if eng.dialect.name == "postgresql":
        raw = eng.raw_connection()
        try:
            cur = raw.cursor()
            with cur.copy(  # type: ignore[attr-defined]
                "COPY usage_events (user_id, kind, amount, recording_id, detail, at) FROM STDIN"
            ) as copy:
                for uid, kind, amount, rid, at in events():
                    copy.write_row((uid, kind, amount, rid, "{}", at))
            raw.commit()
            cur.execute("ANALYZE")
            raw.commit()
        finally:
            raw.close()
    else:
        with eng.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO usage_events (user_id, kind, amount, recording_id, detail, at) "
                "VALUES (?, ?, ?, ?, '{}', ?)",
                [(u, k, a, r, _fmt(at)) for u, k, a, r, at in events()],
            )
            conn.exec_driver_sql("ANALYZE")
    return {"events_s": time.perf_counter() - t0, "user_ids": ids, "names": names}


def per_user_baseline(rt: Runtime, ids: list[int], now: datetime) -> float:
    """Seconds for the per-user path over every user: one unit of work each, reading the
    user and summing their period (services/quotas.used: one GROUP BY per user)."""
    t0 = time.perf_counter()
    for uid in ids:
        with open_context(rt, Scope.for_user(uid)) as ctx:
            user = ctx.repos.users.require(uid)
            start, end = period(user.created_at, now, ZoneInfo(user.timezone))
            quotas.used(ctx, user, start, end)
    return time.perf_counter() - t0


def bench(db: str, n_users: int, n_events: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="leap-bench-usage-") as tmp:
        workdir = Path(tmp)
        env = {
            **os.environ,
            "LEAP_DATA_DIR": str(workdir),
            "LEAP_CONFIG": str(workdir / "none.toml"),
            "LEAP_SECRET_KEY": Fernet.generate_key().decode(),
        }
        if db == "postgres":
            env["LEAP_DATABASE__URL"] = scratch_pg()
        else:
            env["LEAP_DATABASE__URL"] = f"sqlite:///{workdir / 'leap.db'}"
        os.environ.update(env)
        rt = Runtime.from_settings(load_settings())
        try:
            upgrade(rt.engine)
            now = datetime.now(UTC)
            t0 = time.perf_counter()
            seeded = seed(rt, n_users, n_events, now)
            made = time.perf_counter() - t0
            floor = timed(env, ["--user", "bench", "whoami"], workdir)
            per_user = per_user_baseline(rt, seeded["user_ids"], now)
            one = seeded["names"][1]
            admin = ["--user", "bench", "--json"]
            runs = {
                "admin stats overview": timed(env, [*admin, "admin", "stats", "overview"], workdir),
                "admin stats quotas": timed(env, [*admin, "admin", "stats", "quotas"], workdir),
                "admin stats users": timed(env, [*admin, "admin", "stats", "users"], workdir),
            }
            for by in ("metric", "template", "day"):
                runs[f"usage --by {by}"] = timed(
                    env, ["--user", one, "--json", "usage", "--by", by], workdir
                )
            runs["usage NAME (admin) --by day"] = timed(
                env, [*admin, "usage", one, "--by", "day"], workdir
            )
        finally:
            rt.dispose()
            if db == "postgres":
                drop_scratch_pg()
    return {
        "db": db,
        "users": n_users,
        "events": n_events,
        "install_s": made,
        "events_insert_s": seeded["events_s"],
        "startup_floor": floor,
        "per_user_baseline_s": per_user,
        "runs": runs,
    }


def show(r: dict[str, Any]) -> None:
    floor, base = r["startup_floor"]["wall_s"], r["per_user_baseline_s"]
    print(
        f"\n== {r['db']}: {r['users']:,} users, {r['events']:,} usage events "
        f"(install made in {r['install_s']:.1f} s, events in {r['events_insert_s']:.1f} s)"
    )
    said = r["startup_floor"]["statements"]
    print(f"start-up floor, leap whoami: {floor:.2f} s ({said} statements)")
    print(
        f"per-user baseline (a unit of work and a GROUP BY per user, in-process): "
        f"{base:.2f} s for {r['users']:,} users"
    )
    for label, f in r["runs"].items():
        verdict = "ok" if f["wall_s"] < TARGET_S else f"OVER {TARGET_S:.0f} s"
        extra = f"  {f['wall_s'] / base:5.2f}x per-user" if label.startswith("admin") else ""
        print(
            f"{label:30s} {f['wall_s']:6.2f} s  {f['wall_s'] - floor:5.2f} s over the floor"
            f"{extra}  {f['statements']:3d} statements  {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    dbs = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    results = [bench(db, args.users, args.events) for db in dbs]
    for r in results:
        show(r)
    print("\n" + json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
