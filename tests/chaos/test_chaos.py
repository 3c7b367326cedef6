"""Chaos: N recordings go from a local folder through download, trim and upload to fake
YouTube and VK on loopback while a driver thread `kill -9`s a random leapd at random moments
and restarts it, and the fakes inject 429s, 5xx, dropped connections, partially accepted
chunks, uploads stored but unanswered, and expired tokens. Random, but from one seed, printed
in every failure message (LEAP_CHAOS_SEED=N repeats a run's choices; the timings of processes
do not repeat).

When the driver stops and the daemons drain: every recording is published exactly once on
each platform, every stage is done, no temporary file is left in the media dir, usage equals
the work done, and `leap doctor --deep` passes.

Short forms run in scripts/test: three leapd on PostgreSQL with the Redis queue (the
PostgreSQL leg), one leapd on SQLite with its SQLite queue (the SQLite leg). The long form
(50 recordings, a kill every few seconds) runs with LEAP_CHAOS_LONG=1 (docs/operations.md,
"Chaos tests")."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.services import doctor
from leap.specs.consistency import temporary_kind
from tests import media
from tests.conftest import BACKEND, leap_here, put_on_plan
from tests.fakes.server import serve
from tests.fakes.vk import FakeVK
from tests.fakes.youtube import FakeYouTube
from tests.leapd import runtime_for, start_leapd

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

# Read at import: the leap_env fixture clears every other LEAP_* variable.
LONG = bool(os.environ.get("LEAP_CHAOS_LONG"))
SEED = int(os.environ["LEAP_CHAOS_SEED"]) if os.environ.get("LEAP_CHAOS_SEED") else None
REDIS_URL = os.environ.get("LEAP_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
MB = 1024 * 1024

YT_PRESET = """name = "yt"
platform = "youtube"
credential = "chan"
[metadata]
privacy = "unlisted"
title = "{title}"
"""
VK_PRESET = """name = "vk"
platform = "vk"
credential = "vkc"
[metadata]
title = "{title}"
wallpost = false
"""
# Stage retries quicker than the defaults (5 s, doubling): kills and faults cost attempts,
# and a short form must end in about a minute.
TEMPLATE = """name = "talks"
presets = ["yt", "vk"]
[match]
keywords = ["talk"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
stages = ["download", "trim", "upload"]
[processing.trim]
enabled = false
[processing.retries]
max_attempts = 12
base_delay_s = 0.5
max_delay_s = 2.0
"""


@dataclass
class Plan:
    recordings: int
    daemons: int
    workers: int
    kills: int  # at most this many; the driver stops earlier when the work is done
    kill_every: tuple[float, float]  # seconds between kills
    fault_every: tuple[float, float]  # seconds between faults
    faults: int  # at most this many, one armed at a time (a fault waits for a request)
    timeout: float  # for the whole run, kills included


SHORT_PG = Plan(8, 3, 2, 4, (0.5, 1.5), (0.2, 0.6), 24, 75)
SHORT_SQLITE = Plan(6, 1, 3, 4, (0.5, 1.2), (0.2, 0.6), 20, 75)
LONG_PG = Plan(50, 3, 2, 60, (1.0, 4.0), (0.1, 0.4), 300, 900)


@dataclass
class Chaos:
    """What happened: for the report and the failure messages."""

    seed: int
    kills: int = 0
    kills_mid_stage: int = 0  # kills of a daemon that held a running stage
    restarts: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    events: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.events.append(f"{time.monotonic():.1f} {line}")

    def summary(self) -> str:
        faults = ", ".join(f"{k}={v}" for k, v in sorted(self.faults.items()))
        return (
            f"seed {self.seed} (LEAP_CHAOS_SEED={self.seed} repeats it): {self.kills} kills "
            f"({self.kills_mid_stage} mid-stage), {self.restarts} restarts, faults: {faults}"
        )


# ------------------------------------------------------------------------ the fault injector


def fault_kinds(yt: FakeYouTube, vk: FakeVK) -> dict[str, Callable[[random.Random], None]]:
    """One fault each, armed for the next matching request."""
    return {
        "yt_429": lambda r: yt.inject_error(
            r.choice(["upload_start", "upload_put"]), 429, "rateLimitExceeded"
        ),
        "yt_5xx": lambda r: yt.inject_error(
            r.choice(["upload_start", "upload_put"]), r.choice([500, 503]), "backendError"
        ),
        "yt_drop": lambda r: yt.inject_drop(r.choice(["upload_start", "upload_put"])),
        "yt_partial_chunk": lambda r: yt.drop_mid_body(r.randrange(1, MB)),
        # Tokens older than 2 s: one issued since (a refresh just made) keeps working, as it
        # would with a real lifetime; LEAP rightly takes a fresh token refused for a revoke.
        "yt_token_expiry": lambda r: yt.expire_tokens_older_than(2.0),
        "vk_5xx": lambda r: vk.inject_5xx(r.choice(["api", "upload"]), status=r.choice([502, 503])),
        "vk_drop": lambda r: vk.inject_drop(r.choice(["api", "upload"])),
        "vk_429": lambda r: vk.inject_api_error(6),  # "too many requests per second"
        "vk_stored_unanswered": lambda r: vk.drop_after_upload(),
        "vk_token_expiry": lambda r: vk.expire_access_tokens_older_than(2.0),
    }


def armed(yt: FakeYouTube, vk: FakeVK) -> int:
    """Faults injected that no request has met yet."""
    with yt._lock:
        n = sum(len(q) for q in yt._faults.values()) + len(yt._mid_body_drops)
    with vk._lock:
        return n + sum(len(q) for q in vk._faults.values()) + vk._drop_after_upload


def clear_faults(yt: FakeYouTube, vk: FakeVK) -> None:
    """Disarm what no request took, so `leap doctor`'s credential calls see healthy fakes."""
    with yt._lock:
        for q in yt._faults.values():
            q.clear()
        yt._mid_body_drops.clear()
    with vk._lock:
        for q in vk._faults.values():
            q.clear()
        vk._drop_after_upload = 0


# ------------------------------------------------------------------------ the daemons


class Daemons:
    def __init__(self, env: dict[str, str], logs: Path, count: int, chaos: Chaos) -> None:
        self.env, self.logs, self.chaos = env, logs, chaos
        self.procs: list[subprocess.Popen[bytes]] = []
        self.lock = threading.Lock()
        for i in range(count):
            self.procs.append(start_leapd(env, self.log(i)))

    def log(self, i: int) -> Path:
        return self.logs / f"leapd-{i}.log"

    def kill(self, i: int, rt: Runtime) -> None:
        with self.lock:
            proc = self.procs[i]
            held = running_owned_by(rt, proc.pid)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)  # reaped: the reconciler sees the pid gone, not a zombie
        self.chaos.kills += 1
        self.chaos.kills_mid_stage += bool(held)
        self.chaos.say(f"kill -9 leapd-{i} pid {proc.pid}, holding stages {held}")

    def restart(self, i: int) -> None:
        with self.lock:
            self.procs[i] = start_leapd(self.env, self.log(i))
        self.chaos.restarts += 1
        self.chaos.say(f"restarted leapd-{i} as pid {self.procs[i].pid}")

    def stop_all(self) -> None:
        with self.lock:
            for proc in self.procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in self.procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)

    def tails(self) -> str:
        return "".join(
            f"\n--- leapd-{i} log (tail) ---\n" + self.log(i).read_text(errors="replace")[-2500:]
            for i in range(len(self.procs))
            if self.log(i).exists()
        )


def running_owned_by(rt: Runtime, pid: int) -> list[int]:
    with open_context(rt, Scope.system_scope()) as ctx:
        return [
            s.id
            for s in ctx.repos.stages.list(status="running")
            if (s.lease_owner or "").split(":")[1:2] == [str(pid)]
        ]


def stage_rows(rt: Runtime) -> list[tuple[int, int, str, str, int, str | None]]:
    with open_context(rt, Scope.system_scope()) as ctx:
        return [
            (s.id, s.recording_id, s.name, s.status, s.attempts, s.error)
            for s in ctx.repos.stages.list()
        ]


# ------------------------------------------------------------------------ the install


@dataclass
class World:
    env: dict[str, str]
    yt: FakeYouTube
    vk: FakeVK
    tmp: Path


@pytest.fixture
def world(leap_env: dict[str, str], tmp_path: Path) -> Iterator[World]:
    yt, vk = FakeYouTube(), FakeVK()
    yt.put_delay = 0.15  # a chunk takes a moment: kills land mid-upload
    box: list[float] = [0.1]  # VK reads a body's MiB this slowly, for the same reason
    with serve(yt.handler) as yt_base, serve(vk.handler, read_delay=lambda: box[0]) as vk_base:
        env = {
            **leap_env,
            "LEAP_YOUTUBE__API_BASE_URL": f"{yt_base}/youtube/v3",
            "LEAP_YOUTUBE__UPLOAD_BASE_URL": f"{yt_base}/upload/youtube/v3",
            "LEAP_YOUTUBE__TOKEN_URI": f"{yt_base}/token",
            "LEAP_YOUTUBE__UPLOAD_CHUNK_MB": "1",
            "LEAP_YOUTUBE__DAILY_UPLOADS": "1000",
            "LEAP_YOUTUBE__DAILY_UNITS": "10000000",
            "LEAP_VK__API_BASE_URL": f"{vk_base}/method",
            "LEAP_VK__ID_BASE_URL": vk_base,
            "LEAP_SYNC__LOCAL_SETTLE_SECONDS": "0",
            "LEAP_QUEUE__MAX_DELAY": "0.2",
            "LEAP_WORKER__RECONCILE_SECONDS": "1",
            "LEAP_WORKER__STAGE_HEARTBEAT_SECONDS": "0.5",
            "LEAP_WORKER__LEASE_SECONDS": "15",
            "LEAP_WORKER__SHUTDOWN_TIMEOUT": "2",
        }
        yield World(env, yt, vk, tmp_path)


def install(w: World, recordings: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One user, `recordings` clips of 3 MiB (three YouTube chunks) in a local inbox, a
    template publishing each to YouTube and VK. Returns the titles."""
    inbox = w.tmp / "inbox"
    first = media.pad_mp4(media.make_video(inbox / "talk 001.mp4", 1), 3 * MB)
    titles = [f"talk {i:03d}" for i in range(1, recordings + 1)]
    for title in titles[1:]:
        (inbox / f"{title}.mp4").write_bytes(first.read_bytes())
    yt, vk = w.yt, w.vk
    chan = {"client_id": yt.client_id, "client_secret": yt.client_secret}
    (w.tmp / "chan.json").write_text(json.dumps(chan | {"refresh_token": yt.refresh_token}))
    tokens = vk.issue_tokens(device_id="dev-1") | {"device_id": "dev-1", "client_id": vk.client_id}
    (w.tmp / "vk.json").write_text(json.dumps(tokens))
    (w.tmp / "yt.toml").write_text(YT_PRESET.format(title="{title}"))
    (w.tmp / "vk.toml").write_text(VK_PRESET.format(title="{title}"))
    (w.tmp / "t.toml").write_text(TEMPLATE)
    for args in (
        ("init", "--yes"),
        ("credentials", "add", "youtube", "chan", "--from-file", str(w.tmp / "chan.json")),
        ("credentials", "add", "vk", "vkc", "--from-file", str(w.tmp / "vk.json")),
        ("preset", "add", "--file", str(w.tmp / "yt.toml")),
        ("preset", "add", "--file", str(w.tmp / "vk.toml")),
        ("template", "add", "--file", str(w.tmp / "t.toml")),
        ("source", "add", "local", "in", str(inbox)),
        ("sync",),
    ):
        res = leap_here(*args, env=w.env)
        assert res.code == 0, (args, res.stderr)
    rt = runtime_for(w.env, monkeypatch)
    try:
        put_on_plan(rt, "admin", "enterprise")  # volume, not quotas, is under test here
    finally:
        rt.dispose()
    return titles


@pytest.fixture
def redis_queue(world: World) -> Iterator[None]:
    """The Redis queue under a name of this run's own, its keys removed before and after."""
    import redis

    name = f"leap-chaos-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(REDIS_URL)

    def flush() -> None:
        keys = list(client.scan_iter(match=f"*{name}*"))
        if keys:
            client.delete(*keys)

    flush()
    world.env.update(
        {"LEAP_QUEUE__BACKEND": "redis", "LEAP_QUEUE__URL": REDIS_URL, "LEAP_QUEUE__NAME": name}
    )
    try:
        yield
    finally:
        flush()
        client.close()


# ------------------------------------------------------------------------ the run


def run_chaos(w: World, plan: Plan, monkeypatch: pytest.MonkeyPatch) -> Chaos:
    seed = SEED if SEED is not None else random.SystemRandom().randrange(10**6)
    chaos = Chaos(seed)
    rng = random.Random(seed)
    fault_rng = random.Random(seed + 1)
    titles = install(w, plan.recordings, monkeypatch)
    w.env["LEAP_WORKER__COUNT"] = str(plan.workers)
    rt = runtime_for(w.env, monkeypatch)
    started = time.monotonic()
    daemons = Daemons(w.env, w.tmp, plan.daemons, chaos)
    stop = threading.Event()
    errors: list[BaseException] = []
    total = 3 * plan.recordings

    def all_done() -> bool:
        rows = stage_rows(rt)
        return len(rows) == total and all(r[3] == "done" for r in rows)

    def driver() -> None:
        try:
            while chaos.kills < plan.kills and not stop.wait(rng.uniform(*plan.kill_every)):
                if all_done():
                    return
                i = rng.randrange(plan.daemons)
                daemons.kill(i, rt)
                if stop.wait(rng.uniform(0.2, 1.0)):
                    daemons.restart(i)
                    return
                daemons.restart(i)
        except BaseException as exc:  # surfaced in the test's failure
            errors.append(exc)

    kinds = fault_kinds(w.yt, w.vk)
    names = sorted(kinds)

    def injector() -> None:
        try:
            while sum(chaos.faults.values()) < plan.faults:
                if stop.wait(fault_rng.uniform(*plan.fault_every)):
                    return
                if armed(w.yt, w.vk):
                    continue  # one at a time: a burst would only exhaust the retries
                kind = fault_rng.choice(names)
                kinds[kind](fault_rng)
                chaos.faults[kind] += 1
        except BaseException as exc:
            errors.append(exc)

    def fail(what: str) -> str:
        rows = [r for r in stage_rows(rt) if r[3] != "done"]
        return (
            f"{what}; {chaos.summary()}\nstages not done: {rows[:20]}\n"
            + "\n".join(chaos.events[-30:])
            + daemons.tails()
        )

    threads = [threading.Thread(target=driver), threading.Thread(target=injector)]
    try:
        res = leap_here("--json", "process", "--template", "talks", env=w.env)
        assert res.code == 0, res.stderr
        assert len(json.loads(res.stdout)) == plan.recordings
        for t in threads:
            t.start()
        deadline = started + plan.timeout
        while not all_done():
            failed = [r for r in stage_rows(rt) if r[3] in ("failed", "cancelled")]
            assert not failed, fail(f"stages failed: {failed}")
            assert time.monotonic() < deadline, fail(f"not done in {plan.timeout:g} s")
            time.sleep(0.3)
        chaos.say(f"all done after {time.monotonic() - started:.1f} s")
    finally:
        stop.set()
        for t in threads:
            if t.is_alive():
                t.join(30)
        daemons.stop_all()
    assert not errors, fail(f"the driver or the injector failed: {errors!r}")
    clear_faults(w.yt, w.vk)
    check_outcome(w, rt, titles, chaos, fail)
    rt.dispose()
    chaos.say(f"checked after {time.monotonic() - started:.1f} s")
    # Shown with -s or -rA: what the run did.
    print(f"{plan.recordings} recordings, {plan.daemons} leapd: {chaos.summary()}")
    print("\n".join(e for e in chaos.events if "kill" not in e and "restarted" not in e))
    return chaos


def check_outcome(
    w: World, rt: Runtime, titles: list[str], chaos: Chaos, fail: Callable[[str], str]
) -> None:
    yt, vk = w.yt, w.vk
    # Exactly once per destination, counted by the platforms themselves.
    yt_titles = Counter(v.resource["snippet"]["title"] for v in yt.videos.values())
    vk_titles = Counter(v.params.get("name") for v in vk.videos.values() if v.uploaded)
    assert yt_titles == Counter(titles), fail(f"YouTube videos per title: {yt_titles}")
    assert vk_titles == Counter(titles), fail(f"VK videos per title: {vk_titles}")
    assert yt.video_count == len(titles) and vk.video_count == len(titles)
    with open_context(rt, Scope.system_scope()) as ctx:
        targets = [(t.recording_id, t.platform, t.status) for t in ctx.repos.targets.list()]
        events = [(e.kind, e.recording_id, e.amount, e.detail) for e in ctx.repos.usage.list()]
        rec_ids = sorted(r.id for r in ctx.repos.recordings.list())
    assert sorted(targets) == sorted(
        (rid, p, "uploaded") for rid in rec_ids for p in ("youtube", "vk")
    ), fail(f"targets: {targets}")
    # Usage equals the work done (docs/quotas.md): nothing counted twice, nothing left
    # reserved by a kill.
    for kind in ("recordings", "youtube_uploads", "vk_uploads"):
        got = sorted(rid for k, rid, _, _ in events if k == kind)
        assert got == rec_ids, fail(f"usage {kind}: {got}")
    assert len(events) == 3 * len(rec_ids), fail(f"usage events: {events}")
    assert all(amount == 1 for _, _, amount, _ in events), fail(f"usage: {events}")
    assert not any((d or {}).get("reserved") for *_, d in events), fail(f"reserved: {events}")
    # Every stage done, no temporary file anywhere under the media dir.
    rows = stage_rows(rt)
    assert all(r[3] == "done" for r in rows), fail("stages")
    chaos.say(f"stage attempts: {Counter(r[4] for r in rows)}")
    media_dir = Path(w.env["LEAP_DATA_DIR"]) / "media"
    leftovers = [p for p in media_dir.rglob("*") if temporary_kind(p.name)]
    assert not leftovers, fail(f"temporary files left: {leftovers}")
    # And the install says it is consistent: the checks `leap doctor --deep` runs (its
    # other checks, e.g. loading the local model, are not what this test is about;
    # tests/test_doctor_deep.py runs the command itself).
    checks = {c.name: c for c in doctor.consistency_checks(rt)}
    bad = {k: c.detail for k, c in checks.items() if not c.ok}
    assert not bad, fail(f"leap doctor --deep: {bad}")
    assert sum(k.startswith(doctor.CONSISTENCY_PREFIX) for k in checks) == 6


# ------------------------------------------------------------------------ the tests


@pytest.mark.skipif(BACKEND != "postgres", reason="the PostgreSQL leg runs it (LEAP_TEST_DB)")
def test_three_daemons_on_postgres_and_redis_survive_kills_and_faults(
    world: World, redis_queue: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    chaos = run_chaos(world, SHORT_PG, monkeypatch)
    assert chaos.kills >= 2, chaos.summary()  # the work outlasted at least two kills


@pytest.mark.skipif(BACKEND != "sqlite", reason="the SQLite leg runs it (LEAP_TEST_DB)")
def test_one_daemon_on_sqlite_survives_kills_and_faults(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    chaos = run_chaos(world, SHORT_SQLITE, monkeypatch)
    assert chaos.kills >= 2, chaos.summary()


@pytest.mark.skipif(not LONG, reason="the long form: LEAP_CHAOS_LONG=1 (docs/operations.md)")
@pytest.mark.skipif(BACKEND != "postgres", reason="on PostgreSQL: LEAP_TEST_DB=postgres")
def test_long_form_fifty_recordings_many_kills(
    world: World, redis_queue: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_chaos(world, LONG_PG, monkeypatch)
