"""Several leapd on one database and queue (issue 18): queue lanes (I/O and CPU stages on
queues of their own, each leapd working the ones it is told), every daemon listed by
`leap status --daemon`, and reconcilers that re-queue a stuck stage once however many
daemons run them."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from huey import MemoryHuey

from leap.config import check_worker_count
from leap.context import Runtime, open_context
from leap.db import models as m
from leap.db.base import utcnow
from leap.db.scope import Scope
from leap.errors import UsageError
from leap.services import reconciler
from leap.specs.lanes import CPU, IO, lane_of, parse_queues, parse_workers, queue_name
from leap.tasks import STAGE, STAGE_BATCH, TaskQueue
from tests import media
from tests.conftest import leap_here, leap_process, make_user
from tests.leapd import runtime_for, start_leapd, stop, wait_until

# ---------------------------------------------------------------- lanes (pure)


@pytest.mark.parametrize(
    ("stage", "config", "lane"),
    [
        ("download", {}, IO),
        ("trim", {}, CPU),
        ("transcribe", {"transcription": {"provider": "local"}}, CPU),
        ("transcribe", {"transcription": {"provider": "fireworks"}}, IO),
        ("transcribe", {"transcription": "broken"}, IO),
        ("transcribe", {}, IO),
        ("topics", {}, IO),
        ("subtitles", {}, IO),
        ("upload", {}, IO),
    ],
)
def test_lane_of(stage: str, config: dict[str, Any], lane: str) -> None:
    assert lane_of(stage, config) == lane


def test_queue_names_and_options() -> None:
    assert queue_name("leap", IO) == "leap" and queue_name("leap", CPU) == "leap-cpu"
    assert parse_queues("io") == ("io",)
    assert parse_queues(" CPU , io,cpu ") == ("cpu", "io")
    assert parse_workers("3", ("io", "cpu"), check_worker_count) == {"io": 3, "cpu": 3}
    assert parse_workers("io=4,cpu=1", ("io", "cpu"), check_worker_count) == {"io": 4, "cpu": 1}
    for bad, fragment in (
        ("", "name at least one"),
        ("io,gpu", "unknown queue 'gpu'"),
    ):
        with pytest.raises(UsageError, match=fragment):
            parse_queues(bad)
    for bad, fragment in (
        ("gpu=2", "unknown queue 'gpu'"),
        ("io=many", "whole number"),
        ("io=0", "from 1 to 64"),
        (",", "give a number"),
    ):
        with pytest.raises(UsageError, match=fragment):
            parse_workers(bad, ("io",), check_worker_count)


def test_leapd_refuses_bad_queue_options_in_one_line(leap_env: dict[str, str]) -> None:
    import subprocess
    import sys

    for args, fragment in (
        (["--queues", "gpu"], "--queues: unknown queue 'gpu'"),
        (["--workers", "cpu=99"], "--workers must be from 1 to 64"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "leap.daemon", *args],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip() == f"error: {proc.stderr.strip()[7:]}"
        assert fragment in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- routing


def _stages(runtime: Runtime, names: list[str], config: dict[str, Any]) -> list[int]:
    make_user(runtime, "alice")
    with open_context(runtime, Scope.system_scope()) as ctx:
        uid = ctx.repos.users.require_name("alice").id
    with open_context(runtime, Scope.for_user(uid)) as ctx:
        src = ctx.repos.sources.add(m.InputSource(name="in", kind="local", config={}))
        ids = []
        for i, name in enumerate(names):
            rec = ctx.repos.recordings.add(
                m.Recording(source_id=src.id, external_id=f"r{i}", title="t", start_time=utcnow())
            )
            run = ctx.repos.runs.add(
                m.PipelineRun(recording_id=rec.id, stages=[name], config=config)
            )
            st = ctx.repos.stages.add(
                m.StageResult(run_id=run.id, recording_id=rec.id, name=name, position=0)
            )
            ids.append(st.id)
    return ids


def test_stage_messages_go_to_their_lane(runtime: Runtime) -> None:
    ids = _stages(
        runtime,
        ["download", "trim", "transcribe", "upload"],
        {"transcription": {"provider": "local"}},
    )
    io, cpu = MemoryHuey("t-io", results=False), MemoryHuey("t-cpu", results=False)
    queue = TaskQueue(io, runtime, cpu)
    for sid in ids:
        queue.send(STAGE, {"stage_id": sid})
    assert [msg.kwargs["stage_id"] for msg in io.pending()] == [ids[0], ids[3]]
    assert [msg.kwargs["stage_id"] for msg in cpu.pending()] == [ids[1], ids[2]]
    assert queue.pending_count() == 4
    # A page's fan-out: one query for the lanes of all its stages, the same routing.
    io.flush()
    cpu.flush()
    queue.send(STAGE_BATCH, {"stage_ids": ids})
    io.execute(io.dequeue())
    assert sorted(msg.kwargs["stage_id"] for msg in io.pending()) == [ids[0], ids[3]]
    assert sorted(msg.kwargs["stage_id"] for msg in cpu.pending()) == [ids[1], ids[2]]
    assert all(set(msg.kwargs) == {"stage_id"} for msg in [*io.pending(), *cpu.pending()])


def test_without_a_cpu_queue_everything_stays_on_one(runtime: Runtime) -> None:
    ids = _stages(runtime, ["trim"], {})
    io = MemoryHuey("t-one", results=False)
    TaskQueue(io, runtime).send(STAGE, {"stage_id": ids[0]})
    assert io.pending_count() == 1


# ---------------------------------------------------------------- reconcilers


def test_reconcilers_of_several_daemons_requeue_each_stuck_stage_once(
    runtime: Runtime,
) -> None:
    ids = _stages(runtime, ["download"] * 12, {})
    old = utcnow() - timedelta(minutes=10)
    with open_context(runtime, Scope.system_scope()) as ctx:
        for i, sid in enumerate(ids):
            if i % 2:  # running under a worker of another host that went silent
                values = {"status": "running", "lease_owner": "gone-host:1:1", "heartbeat_at": old}
            else:  # queued, its message lost
                values = {"status": "queued", "queued_at": old}
            ctx.repos.stages.update_where({**values, "max_attempts": 5}, id=sid)
    sent: list[int] = []
    lock = threading.Lock()

    def enqueue(name: str, kwargs: dict[str, Any], delay: float | None) -> None:
        with lock:
            sent.append(int(kwargs["stage_id"]))

    runtime.enqueue = enqueue
    gate = threading.Barrier(3)

    def one(_: int) -> int:
        gate.wait()
        with open_context(runtime, Scope.system_scope()) as ctx:
            return reconciler.reconcile(ctx)

    with ThreadPoolExecutor(3) as pool:
        counts = list(pool.map(one, range(3)))
    assert sum(counts) == 12, counts
    assert sorted(sent) == sorted(ids)  # each once, whichever daemon did it


# ---------------------------------------------------------------- two daemons, two lanes


TEMPLATE = """
name = "lectures"
[match]
regex = [".+"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
stages = ["download", "trim"]
[processing.trim]
min_keep_s = 5
"""


@pytest.mark.slow
def test_an_io_daemon_and_a_cpu_daemon_share_the_work_by_lane(
    leap_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    first = media.make_silence_tone_silence(inbox / "talk 1.mp4", lead=6, tone=8, tail=6)
    for i in range(2, 5):
        (inbox / f"talk {i}.mp4").write_bytes(first.read_bytes())
    (tmp_path / "t.toml").write_text(TEMPLATE)
    env = {
        **leap_env,
        "LEAP_SYNC__LOCAL_SETTLE_SECONDS": "0",
        "LEAP_WORKER__HEARTBEAT_SECONDS": "0.5",
        "LEAP_WORKER__SHUTDOWN_TIMEOUT": "2",
        "LEAP_QUEUE__MAX_DELAY": "0.2",
    }
    for args in (
        ("init", "--yes"),
        ("source", "add", "local", "inbox", str(inbox)),
        ("template", "add", "--file", str(tmp_path / "t.toml")),
        ("sync",),
    ):
        res = leap_here(*args, env=env)
        assert res.code == 0, (args, res.stderr)
    logs = {lane: tmp_path / f"leapd-{lane}.log" for lane in ("io", "cpu")}
    procs = {
        lane: start_leapd(env, logs[lane], "--queues", lane, "--workers", "2")
        for lane in ("io", "cpu")
    }
    rt = runtime_for(env, monkeypatch)
    try:
        listed = wait_until(
            lambda: leap_here("--json", "status", "--daemon", env=env).json()["daemons"],
            lambda ds: sum(1 for d in ds if d["alive"]) == 2,
            30,
            "both daemons listed",
            logs["io"],
        )
        assert sorted(tuple(d["queues"]) for d in listed) == [("cpu",), ("io",)]
        assert {d["workers"] for d in listed} == {2}
        assert leap_process("process", "--template", "lectures", env=env).code == 0
        rows = wait_until(
            lambda: _stage_rows(rt),
            lambda rows: len(rows) == 8 and all(r[2] == "done" for r in rows),
            120,
            "4 recordings downloaded and trimmed",
            logs["cpu"],
        )
    finally:
        codes = {lane: stop(p) for lane, p in procs.items()}
    assert codes == {"io": 0, "cpu": 0}
    ran = {lane: _executed(logs[lane]) for lane in logs}
    by_name = {sid: name for sid, name, _ in rows}
    assert {by_name[s] for s in ran["io"]} == {"download"}
    assert {by_name[s] for s in ran["cpu"]} == {"trim"}
    assert len(ran["io"]) == len(ran["cpu"]) == 4
    # A clean stop removes each daemon's row.
    assert leap_here("--json", "status", "--daemon", env=env).json()["daemons"] == []
    rt.dispose()


def _stage_rows(rt: Runtime) -> list[tuple[int, str, str]]:
    with open_context(rt, Scope.system_scope()) as ctx:
        return [(s.id, s.name, s.status) for s in ctx.repos.stages.list()]


def _executed(log: Path) -> set[int]:
    """Stage ids this daemon ran to an end ("stage 5: done" in its log)."""
    return {int(n) for n in re.findall(r"stage (\d+): done", log.read_text())}


@pytest.mark.slow
def test_when_the_scheduler_daemon_dies_another_takes_the_scheduler_over(
    leap_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    from leap.services import system

    env = {
        **leap_env,
        "LEAP_WORKER__HEARTBEAT_SECONDS": "0.3",
        "LEAP_WORKER__SHUTDOWN_TIMEOUT": "2",
        "LEAP_QUEUE__MAX_DELAY": "0.2",
    }
    assert leap_here("init", "--yes", env=env).code == 0
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    first = start_leapd(env, logs[0])
    listed = wait_until(
        lambda: leap_here("--json", "status", "--daemon", env=env).json()["daemons"],
        lambda ds: any(d["alive"] and d["scheduler"] for d in ds),
        30,
        "the first leapd to hold the scheduler",
        logs[0],
    )
    second = start_leapd(env, logs[1])
    rt = runtime_for(env, monkeypatch)
    try:
        listed = wait_until(
            lambda: leap_here("--json", "status", "--daemon", env=env).json()["daemons"],
            lambda ds: sum(1 for d in ds if d["alive"]) == 2,
            30,
            "both daemons",
            logs[1],
        )
        assert [d["pid"] for d in listed if d["scheduler"]] == [first.pid]
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        wait_until(
            lambda: leap_here("--json", "status", "--daemon", env=env).json()["daemons"],
            lambda ds: any(d["alive"] and d["scheduler"] and d["pid"] == second.pid for d in ds),
            30,
            "the second leapd to take the scheduler over",
            logs[1],
        )

        def beats() -> int:
            with open_context(rt, Scope.system_scope()) as ctx:
                return int(system.heartbeat(ctx).get("count", 0))

        now = beats()
        wait_until(beats, lambda n: n >= now + 3, 30, "heartbeats from the new scheduler", logs[1])
    finally:
        assert stop(second) == 0
        rt.dispose()
    assert "took over the scheduler" in logs[1].read_text()
