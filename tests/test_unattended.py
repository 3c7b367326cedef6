"""LEAP running itself, end to end: a real leapd fires two automation jobs it missed while it
was down (once each), one syncs a folder, processes and publishes two recordings to an export
folder, the other fails because its folder is gone; a webhook receiver on loopback gets the
"published" and "automation_failed" notifications, and /metrics, parsed by prometheus_client's
own parser, counts what happened."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from tests import media
from tests.fakes.server import serve
from tests.fakes.webhook import FakeWebhook
from tests.leapd import start_leapd, stop, wait_until

pytestmark = pytest.mark.slow

PRESET = """name = "folder"
platform = "local"
[metadata]
path = "{root}/{{title}}"
"""
TEMPLATE = """name = "talks"
presets = ["folder"]
[match]
keywords = ["talk"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
stages = ["download", "trim", "upload"]
[processing.trim]
enabled = false
"""
JOB = """name = "{name}"
[schedule]
kind = "hours"
every = 1
[action]
sources = ["{source}"]
"""


@pytest.fixture
def hook() -> Iterator[tuple[FakeWebhook, str]]:
    fake = FakeWebhook()
    with serve(fake.handler) as base:
        yield fake, base
        fake.release()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    raise AssertionError(f"{name}{labels} not in /metrics")


def test_a_job_syncs_processes_publishes_and_everyone_hears_of_it(
    leap_env: dict[str, str],
    cli: Any,
    runtime: Runtime,
    tmp_path: Path,
    hook: tuple[FakeWebhook, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    receiver, base = hook
    monkeypatch.setenv("LEAP_SYNC__LOCAL_SETTLE_SECONDS", "0")
    inbox, gone = tmp_path / "inbox", tmp_path / "gone"
    inbox.mkdir()
    gone.mkdir()
    media.make_video(inbox / "talk one.mp4", 2)
    media.make_video(inbox / "talk two.mp4", 2)
    (tmp_path / "p.toml").write_text(PRESET.format(root=tmp_path / "out"))
    (tmp_path / "t.toml").write_text(TEMPLATE)
    (tmp_path / "good.toml").write_text(JOB.format(name="lectures", source="in"))
    (tmp_path / "bad.toml").write_text(JOB.format(name="broken", source="gone"))
    for args in (
        ("init", "--yes"),
        ("preset", "add", "--file", str(tmp_path / "p.toml")),
        ("template", "add", "--file", str(tmp_path / "t.toml")),
        ("source", "add", "local", "in", str(inbox)),
        ("source", "add", "local", "gone", str(gone)),
        ("notify", "add", "ops", "--webhook", f"{base}/hooks/ops"),
        ("automation", "add", "--file", str(tmp_path / "good.toml")),
        ("automation", "add", "--file", str(tmp_path / "bad.toml")),
    ):
        res = cli(*args)
        assert res.code == 0, (args, res.stderr)
    shutil.rmtree(gone)  # the second job's folder disappears: its firing fails
    # leapd was down for the last two planned times of both jobs (the newer within grace).
    with open_context(runtime, Scope.system_scope()) as ctx:
        for job in ctx.repos.automations.list():
            job.last_planned_at = datetime.now(UTC) - timedelta(hours=2, minutes=1)
    port = free_port()
    env = {
        **leap_env,
        "LEAP_SYNC__LOCAL_SETTLE_SECONDS": "0",
        "LEAP_AUTOMATION__TICK_SECONDS": "1",
        "LEAP_QUEUE__MAX_DELAY": "0.2",
        "LEAP_WORKER__SHUTDOWN_TIMEOUT": "2",
        "LEAP_METRICS__ENABLED": "true",
        "LEAP_METRICS__PORT": str(port),
    }
    log = tmp_path / "leapd.log"
    proc = start_leapd(env, log)
    try:

        def events() -> list[str]:
            return sorted(r.json().get("event", "") for r in list(receiver.received))

        wait_until(
            events,
            lambda e: e == ["automation_failed", "published", "published"],
            120,
            "two published and one automation_failed notification",
            log,
        )
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        stop(proc)
    history = {r["job"]: r for r in cli("--json", "automation", "history").json()}
    assert set(history) == {"lectures", "broken"}  # one firing each, though it ticked often
    assert history["lectures"]["status"] == "done"
    assert len(history["lectures"]["summary"]["processed"]) == 2
    assert history["broken"]["status"] == "failed" and "gone" in history["broken"]["error"]
    published = sorted(
        r.json()["title"] for r in receiver.received if r.json()["event"] == "published"
    )
    assert [t.split(" (")[0] for t in published] == ["Published: talk one", "Published: talk two"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["talk one", "talk two"]
    assert metric(scraped, "leap_automation_firings_total", status="done") == 1
    assert metric(scraped, "leap_automation_firings_total", status="failed") == 1
    assert metric(scraped, "leap_uploads_total", platform="local") == 2
    assert metric(scraped, "leap_stages", stage="upload", state="done") == 2
    assert json.dumps([r.path for r in receiver.received]).count("/hooks/ops") == 3
