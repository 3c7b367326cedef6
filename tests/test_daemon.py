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


class Daemon:
    """A `leapd` process whose output a thread keeps reading, so that its pipe never fills
    (a full pipe blocks every log call in leapd, the worker threads' included) and tests wait
    for a line rather than for a time."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "leap.daemon", *args],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        self.pid = self.proc.pid
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait_for_eof(self) -> None:
        self._reader.join()
        assert self.proc.stdout is not None
        self.proc.stdout.close()

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        """A leapd expected to exit by itself: its exit code and whole output."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"leapd still ran after {timeout} s:\n{self.output}") from None
        self.wait_for_eof()
        return code, self.output

    def wait_for_line(self, text: str, timeout: float) -> None:
        """Until leapd has said `text`; fails at once if it exited, else after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(text in ln for ln in self._lines):
                left = deadline - time.monotonic()
                if left <= 0 or (not self._reader.is_alive()):
                    raise AssertionError(f"leapd never said {text!r}:\n{''.join(self._lines)}")
                self._changed.wait(min(left, 1.0))


def start_leapd(env: dict[str, str], *args: str) -> Daemon:
    return Daemon(env, *args)


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
    daemon: Daemon,
    timeout: float = 120,
) -> int:
    """Until the database holds `n` heartbeats. `timeout` only bounds a hang: a loaded
    machine may take long to start leapd, and nothing here assumes how long."""
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = heartbeat_count(env, monkeypatch)
        if count >= n:
            return count
        if daemon.poll() is not None:
            break
        time.sleep(0.2)
    out = stop(daemon, signal.SIGKILL)[1]
    raise AssertionError(f"{count} heartbeats, wanted {n}; leapd output:\n{out}")


def stop(daemon: Daemon, sig: int = signal.SIGTERM, timeout: float = 120) -> tuple[int, str]:
    """Signal leapd and collect its exit code and whole output."""
    if daemon.poll() is None:
        daemon.proc.send_signal(sig)
    try:
        daemon.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        daemon.proc.kill()
        daemon.finish()
        raise AssertionError(f"leapd did not stop within {timeout} s:\n{daemon.output}") from None
    return daemon.finish()


SHUTDOWN_TIMEOUT = 60.0
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
        # Idle workers stop at once; one that waited out this timeout would show in `elapsed`
        # however busy the machine is (a fixed "under 10 s" assumed an idle one).
        "LEAP_WORKER__SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
    }
    if queue == "redis":
        env["LEAP_QUEUE__URL"] = "redis://127.0.0.1:6379/15"
    daemon = start_leapd(env)
    wait_for_beats(env, monkeypatch, 3, daemon)
    started = time.monotonic()
    code, out = stop(daemon, timeout=SHUTDOWN_TIMEOUT * 2)
    elapsed = time.monotonic() - started
    assert code == 0, out
    assert elapsed < SHUTDOWN_TIMEOUT, out
    assert "leapd stopped" in out
    assert "Traceback" not in out


@pytest.mark.slow
def test_only_one_scheduler_per_install(
    leap_env: dict[str, str], cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("init", "--yes").code == 0
    env = {**leap_env, "LEAP_WORKER__HEARTBEAT_SECONDS": "0.3"}
    first = start_leapd(env)
    # Conditions, never durations: the first holds the lock once its scheduler has beaten.
    first.wait_for_line("scheduler started", timeout=120)
    wait_for_beats(env, monkeypatch, 1, first)
    second = start_leapd(env)
    # Until the second catches SIGTERM: a SIGTERM before Huey sets its handler kills it.
    second.wait_for_line("another leapd runs the scheduler", timeout=120)
    wait_until_catching(second.pid, signal.SIGTERM, timeout=120)
    code2, out2 = stop(second)
    code1, out1 = stop(first)
    assert (code1, code2) == (0, 0), out1 + out2
    assert "scheduler started" not in out2
    assert out1.count("scheduler started") == 1


def test_leapd_refuses_a_database_behind_head(leap_env: dict[str, str], tmp_path: Any) -> None:
    env = {**leap_env, "LEAP_DATABASE__URL": f"sqlite:///{tmp_path}/data/empty.db"}
    code, out = start_leapd(env).finish()
    assert code == 6 and "leap init" in out and "Traceback" not in out


@pytest.mark.parametrize("value", ["0", "-3", "100000"])
def test_workers_out_of_range_is_one_line_naming_the_option(
    leap_env: dict[str, str], value: str
) -> None:
    code, out = start_leapd(leap_env, "--workers", value).finish()
    assert code == 2, out
    assert out.splitlines() == [
        f"error: --workers must be from 1 to 64 worker threads, not {value}"
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--workers", "abc"],
            "error: --workers must be a whole number of worker threads, not 'abc'",
        ),
        (["--role", "boss"], "error: --role must be all, worker or scheduler, not 'boss'"),
        (["--wrkers", "2"], "error: unrecognized arguments: --wrkers 2 (leapd --help)"),
    ],
)
def test_bad_leapd_flags_are_one_line(
    leap_env: dict[str, str], args: list[str], expected: str
) -> None:
    code, out = start_leapd(leap_env, *args).finish()
    assert (code, out.splitlines()) == (2, [expected])


@pytest.mark.parametrize("value", ["0", "100000"])
def test_a_bad_worker_count_setting_is_one_line_naming_the_key(
    leap_env: dict[str, str], value: str
) -> None:
    Path(leap_env["LEAP_CONFIG"]).write_text(f"[worker]\ncount = {value}\n")
    code, out = start_leapd(leap_env).finish()
    assert code == 6, out
    [line] = out.splitlines()
    assert line.startswith("error: ") and "'worker.count'" in line and "from 1 to 64" in line
