"""Driving a real `leapd` from end-to-end tests: start it as a process, stop or kill it, read
the database it writes, and wait for a condition with its log in the failure message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from leap.config import load_settings
from leap.context import Runtime

T = TypeVar("T")


def start_leapd(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    """A real leapd (`args`: its options, e.g. --queues cpu) logging to `log`."""
    with log.open("ab") as fh:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "leap.daemon", *args],
            env={**os.environ, **env},
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout=20)


def runtime_for(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """A Runtime on the same database and settings as the leapd started with `env`."""
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return Runtime.from_settings(load_settings())


def wait_until(
    read: Callable[[], T], predicate: Callable[[T], bool], timeout: float, what: str, log: Path
) -> T:
    """Poll `read()` until `predicate` holds; on timeout fail with the tail of leapd's log."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what}; leapd log:\n"
                + log.read_text(errors="replace")[-4000:]
            )
        time.sleep(0.2)
