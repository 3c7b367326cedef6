"""A real `leapd` process: scheduler -> queue -> worker -> database, and a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from leap.config import load_settings
from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.services import system
from tests.conftest import BACKEND


def start_leapd(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "leap.daemon", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def read_until(proc: subprocess.Popen[str], text: str, timeout: float) -> str:
    """leapd's output up to the first line holding `text` (fails after `timeout` s)."""
    lines: list[str] = []
    found = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if text in line:
                found.set()
                return

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    if not found.wait(timeout):
        raise AssertionError(f"leapd never said {text!r}:\n{''.join(lines)}")
    reader.join()
    return "".join(lines)


def wait_until_catching(pid: int, sig: int, timeout: float) -> None:
    """Until process `pid` has a handler for `sig` (Linux: the SigCgt mask in /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:") and int(line.split()[1], 16) >> (sig - 1) & 1:
                return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} never caught signal {sig}")


def heartbeat_count(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> int:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    rt = Runtime.from_settings(load_settings())
    try:
        with open_context(rt, Scope.system_scope()) as ctx:
            return int(system.heartbeat(ctx).get("count", 0))
    finally:
        rt.dispose()


def wait_for_beats(
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    n: int,
    proc: subprocess.Popen[str],
    timeout: float = 20,
) -> int:
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = heartbeat_count(env, monkeypatch)
        if count >= n:
            return count
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    out = stop(proc, signal.SIGKILL)[1]
    raise AssertionError(f"{count} heartbeats, wanted {n}; leapd output:\n{out}")


def stop(
    proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 10
) -> tuple[int, str]:
    """Signal leapd and collect its exit code and output (closing the pipe)."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"leapd did not stop within {timeout} s:\n{out}") from None
    return proc.returncode, out


QUEUES = ["sqlite", "redis"] + (["postgres"] if BACKEND == "postgres" else [])


@pytest.mark.slow
@pytest.mark.parametrize("queue", QUEUES)
def test_heartbeat_through_queue_and_clean_sigterm(
    leap_env: dict[str, str], cli: Any, monkeypatch: pytest.MonkeyPatch, queue: str
) -> None:
    assert cli("init", "--yes").code == 0
    env = {
        **leap_env,
        "LEAP_WORKER__HEARTBEAT_SECONDS": "0.3",
        "LEAP_QUEUE__BACKEND": queue,
        "LEAP_QUEUE__NAME": f"leap-test-{os.getpid()}-{time.monotonic_ns()}",
    }
    if queue == "redis":
        env["LEAP_QUEUE__URL"] = "redis://127.0.0.1:6379/15"
    proc = start_leapd(env)
    wait_for_beats(env, monkeypatch, 3, proc)
    started = time.monotonic()
    code, out = stop(proc)
    elapsed = time.monotonic() - started
    assert code == 0, out
    assert elapsed < 10
    assert "leapd stopped" in out
    assert "Traceback" not in out


@pytest.mark.slow
def test_only_one_scheduler_per_install(
    leap_env: dict[str, str], cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("init", "--yes").code == 0
    env = {**leap_env, "LEAP_WORKER__HEARTBEAT_SECONDS": "0.3"}
    first = start_leapd(env)
    wait_for_beats(env, monkeypatch, 1, first)
    second = start_leapd(env)
    # Wait until the second daemon catches SIGTERM, not a fixed time: on a loaded machine its
    # start-up can outlast any sleep, and a SIGTERM before Huey sets its handlers kills it.
    seen = read_until(second, "another leapd runs the scheduler", timeout=60)
    wait_until_catching(second.pid, signal.SIGTERM, timeout=60)
    code2, out2 = stop(second)
    out2 = seen + out2
    code1, out1 = stop(first)
    assert (code1, code2) == (0, 0), out1 + out2
    assert "another leapd runs the scheduler" in out2
    assert "scheduler started" in out1


def test_leapd_refuses_a_database_behind_head(leap_env: dict[str, str], tmp_path: Any) -> None:
    env = {**leap_env, "LEAP_DATABASE__URL": f"sqlite:///{tmp_path}/data/empty.db"}
    proc = start_leapd(env)
    out, _ = proc.communicate(timeout=30)
    code = proc.returncode
    assert code == 6 and "leap init" in out and "Traceback" not in out
