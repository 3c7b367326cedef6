"""One rotating refresh token, three processes that need it at the same moment: two `leapd`
downloading Zoom recordings and a `leap sync`, all holding an access token Zoom has just
revoked. Zoom's user OAuth rotates the refresh token on every use, so a second refresh with
the old one would fail with invalid_grant and kill the credential. The credential's row
lock (services.token_store) must let exactly one process refresh, and the others use what
it saved (docs/internals.md, "One refresh at a time")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from leap.context import open_context
from leap.db.scope import Scope
from tests.conftest import leap_here, leap_process
from tests.fakes import oauth_browser
from tests.fakes.server import serve
from tests.fakes.zoom import FakeZoom
from tests.leapd import runtime_for, start_leapd, stop, wait_until

pytestmark = pytest.mark.slow

TEMPLATE = """
name = "lectures"
[match]
regex = [".+"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
stages = ["download"]
"""
BROWSER = f"{sys.executable} {Path(oauth_browser.__file__).resolve()} %s"


@pytest.fixture
def zoom() -> Iterator[tuple[FakeZoom, str]]:
    fake = FakeZoom(user_email="teacher@uni.example")
    meetings = fake.generate_meetings(
        6,
        datetime(2026, 2, 1, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),
        seed=11,
        user_email="teacher@uni.example",
    )
    for n, m in enumerate(meetings):
        for f in m.files:
            f.status = "completed"
            fake.set_file_content(f.key, os.urandom(64 * 1024 + n))
    with serve(fake.handler) as base:
        yield fake, base


def test_three_processes_one_refresh(
    zoom: tuple[FakeZoom, str],
    leap_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, base = zoom
    env = {
        **leap_env,
        "LEAP_ZOOM__API_BASE_URL": f"{base}/v2",
        "LEAP_ZOOM__OAUTH_BASE_URL": base,
        "ZOOM_SECRET": fake.client_secret,
        "BROWSER": BROWSER,
        "LEAP_WORKER__COUNT": "2",
        "LEAP_QUEUE__MAX_DELAY": "0.2",
        "LEAP_WORKER__SHUTDOWN_TIMEOUT": "2",
    }
    (tmp_path / "t.toml").write_text(TEMPLATE)
    assert leap_here("init", "--yes", env=env).code == 0
    connected = leap_process(
        "oauth",
        "zoom",
        "z",
        "--client-id",
        fake.client_id,
        "--client-secret-env",
        "ZOOM_SECRET",
        env=env,
    )
    assert connected.code == 0, connected.stderr
    for args in (
        ("source", "add", "zoom", "uni", "--credential", "z", "--zoom-user", "me"),
        ("template", "add", "--file", str(tmp_path / "t.toml")),
        ("sync", "--from", "2026-02-01", "--to", "2026-02-28"),
    ):
        res = leap_here(*args, env=env)
        assert res.code == 0, (args, res.stderr)
    queued = leap_process("--json", "process", "--template", "lectures", env=env)
    assert queued.code == 0, queued.stderr
    ids = [r["recording_id"] for r in json.loads(queued.stdout)]
    assert len(ids) == 6

    # Every access token dies at once, and a refresh takes a while to answer: all three
    # processes get a 401 and ask for a refresh within that window.
    fake.expire_all_tokens()
    fake.token_delay = 1.5
    before = fake.refreshes
    logs = [tmp_path / "leapd-1.log", tmp_path / "leapd-2.log"]
    daemons = [start_leapd(env, log) for log in logs]
    sync = subprocess.Popen(
        [sys.executable, "-m", "leap.cli", "sync", "--from", "2026-02-01", "--to", "2026-02-28"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    rt = runtime_for(env, monkeypatch)
    try:
        _out, err = sync.communicate(timeout=120)
        assert sync.returncode == 0, err

        def downloads() -> list[Any]:
            with open_context(rt, Scope.system_scope()) as ctx:
                return [s.status for s in ctx.repos.stages.list(name="download")]

        wait_until(
            downloads,
            lambda s: len(s) == 6 and all(x == "done" for x in s),
            120,
            "every download done",
            logs[0],
        )
    finally:
        for proc in daemons:
            stop(proc)
    # One refresh for three processes; had two spent the rotating refresh token, the
    # second would have got invalid_grant and marked the credential dead.
    assert fake.refreshes - before == 1
    with open_context(rt, Scope.system_scope()) as ctx:
        cred = ctx.repos.credentials.find(name="z")
        assert cred is not None and cred.status == "active", cred and cred.status_reason
    rt.dispose()
