"""A re-run after a crash just works: `leap process ID --now` (and `leap retry ID --now`)
takes over a run whose process was killed or that waits for a leapd that is not there, and
queueing with no leapd says so."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from leap.context import Runtime
from tests.conftest import leap_here, leap_process
from tests.fakes.zoom import FakeZoom
from tests.leapd import runtime_for
from tests.test_pipeline_daemon import (
    Throttle,
    check_outputs,
    clip,
    install,
    snapshot,
    zoom,
)

__all__ = ["clip", "zoom"]  # fixtures, shared with tests/test_pipeline_daemon.py


def first_id(env: dict[str, str]) -> int:
    res = leap_here("--json", "recordings", "list", "--limit", "1", env=env)
    assert res.code == 0, res.stderr
    return int(json.loads(res.stdout)[0]["id"])


def wait_rows(rt: Runtime, predicate: Any, timeout: float, what: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = snapshot(rt)
        if predicate(rows):
            return rows
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {snapshot(rt)}")


def test_a_live_run_is_refused_and_after_kill_9_the_same_command_resumes_it(
    leap_env: dict[str, str],
    tmp_path: Path,
    zoom: tuple[FakeZoom, str, Throttle],
    clip: bytes,
    monkeypatch: Any,
) -> None:
    _, base, throttle = zoom
    env = install(leap_env, tmp_path, base)
    rt = runtime_for(env, monkeypatch)
    rid = first_id(env)
    throttle.delay = 0.25  # a download of several seconds
    proc = subprocess.Popen(
        [sys.executable, "-m", "leap.cli", "process", str(rid), "--now"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_rows(
            rt,
            lambda rows: any(r["name"] == "download" and r["status"] == "running" for r in rows),
            60,
            "the download to start",
        )
        # While that process lives (its heartbeat is fresh), its run is not taken.
        busy = leap_process("process", str(rid), "--now", env=env)
        assert busy.code == 7, busy.stderr  # Conflict
        assert "is being processed right now" in busy.stderr and "download" in busy.stderr
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    throttle.delay = 0.0
    # Not refused as "already being processed": the dead process's stage is taken over at
    # once (its pid is gone), with no wait for the lease to run out and no leapd.
    res = leap_process("process", str(rid), "--now", env=env)
    assert res.code == 0, res.stderr
    assert f"recording {rid}: resuming run" in res.stderr
    assert "download had been left running by a process that stopped" in res.stderr
    check_outputs(rt, clip, [rid])
    rows = [r for r in snapshot(rt) if r["rec"] == rid]
    download = next(r for r in rows if r["name"] == "download")
    assert download["attempts"] == 2  # once killed, once here
    assert len(rows) == 2  # one run: the same stages, resumed, not a second run
    rt.dispose()


def test_queueing_without_leapd_says_so_and_now_runs_the_queued_run(
    leap_env: dict[str, str],
    tmp_path: Path,
    zoom: tuple[FakeZoom, str, Throttle],
    clip: bytes,
    monkeypatch: Any,
) -> None:
    _, base, _ = zoom
    env = install(leap_env, tmp_path, base)
    rt = runtime_for(env, monkeypatch)
    rid = first_id(env)
    res = leap_process("process", str(rid), env=env)
    assert res.code == 0, res.stderr
    assert "no leapd is running" in res.stderr
    assert f"leap process {rid} --now" in res.stderr
    # Asked again without --now: refused (it is queued), pointing at --now.
    again = leap_process("process", str(rid), "--wait", env=env, timeout=30)
    assert again.code == 7, again.stderr
    assert f"'leap process {rid} --now' resumes it" in again.stderr
    # --wait with no leapd would wait for ever: it says so and returns.
    other = int(
        json.loads(leap_process("--json", "recordings", "list", "--limit", "2", env=env).stdout)[1][
            "id"
        ]
    )
    waited = leap_process("process", str(other), "--wait", env=env, timeout=30)
    assert waited.code == 0, waited.stderr
    assert "no leapd is running" in waited.stderr
    # The queued run is the one --now runs: no second run.
    now = leap_process("process", str(rid), "--now", env=env)
    assert now.code == 0, now.stderr
    assert "it was waiting in the queue" in now.stderr
    check_outputs(rt, clip, [rid])
    assert len([r for r in snapshot(rt) if r["rec"] == rid]) == 2
    rt.dispose()


def test_retry_now_runs_the_failed_stage_here(
    leap_env: dict[str, str],
    tmp_path: Path,
    zoom: tuple[FakeZoom, str, Throttle],
    clip: bytes,
    monkeypatch: Any,
) -> None:
    _, base, throttle = zoom
    env = install(leap_env, tmp_path, base)
    rt = runtime_for(env, monkeypatch)
    rid = first_id(env)
    throttle.gone = True  # the download fails
    failed = leap_process("process", str(rid), "--now", env=env)
    assert failed.code != 0, failed.stderr
    throttle.gone = False
    res = leap_process("retry", str(rid), "--now", env=env)
    assert res.code == 0, res.stderr
    assert "no leapd is running" not in res.stderr
    check_outputs(rt, clip, [rid])
    rt.dispose()
