"""End to end through a real `leapd`: 20 Zoom recordings downloaded and trimmed concurrently,
and `kill -9` of leapd during downloads and during trims, then a restart that finishes the
work without truncated artifacts or duplicated stages."""

from __future__ import annotations

import hashlib
import json
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.media.ffmpeg import locate, probe
from tests import media
from tests.conftest import leap_here, leap_process
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
stages = ["download", "trim"]
[processing.trim]
min_keep_s = 5
"""


class Throttle:
    """Slows the fake CDN down so that a kill lands in the middle of a download."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.gone = False  # the CDN answers 404 (the file was deleted at Zoom)

    def wrap(self, handler: Any) -> Any:
        def handle(request: httpx.Request) -> httpx.Response:
            if self.gone and "/cdn/" in request.url.path:
                return httpx.Response(404, text="NoSuchKey")
            response = handler(request)
            if "/cdn/" not in request.url.path or self.delay <= 0:
                return response
            body = response.read()
            delay = self.delay

            def slow() -> Iterator[bytes]:
                for i in range(0, len(body), 16384):
                    time.sleep(delay)
                    yield body[i : i + 16384]

            return httpx.Response(response.status_code, headers=response.headers, content=slow())

        return handle


@pytest.fixture
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("clip") / "lecture.mp4"
    media.make_silence_tone_silence(path, lead=6, tone=8, tail=6)
    return path.read_bytes()


@pytest.fixture
def zoom(clip: bytes) -> Iterator[tuple[FakeZoom, str, Throttle]]:
    fake = FakeZoom(user_email="teacher@uni.example")
    meetings = fake.generate_meetings(
        40,
        datetime(2026, 2, 1, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),
        seed=5,
        user_email="teacher@uni.example",
    )
    for m in meetings:
        for f in m.files:
            if f.file_type == "MP4":
                f.status = "completed"
                fake.set_file_content(f.key, clip)
    throttle = Throttle()
    with serve(throttle.wrap(fake.handler)) as base:
        yield fake, base, throttle


def install(leap_env: dict[str, str], tmp_path: Path, base: str) -> dict[str, str]:
    env = {
        **leap_env,
        "LEAP_ZOOM__API_BASE_URL": f"{base}/v2",
        "LEAP_ZOOM__OAUTH_BASE_URL": base,
        "ZOOM_SECRET": "zoom-client-secret",
        "LEAP_WORKER__COUNT": "4",
        "LEAP_QUEUE__MAX_DELAY": "0.2",
        "LEAP_WORKER__RECONCILE_SECONDS": "1",
        "LEAP_WORKER__SHUTDOWN_TIMEOUT": "2",
    }
    (tmp_path / "t.toml").write_text(TEMPLATE)
    for args in (
        ("init", "--yes"),
        (
            "credentials",
            "add",
            "zoom-s2s",
            "z",
            "--account-id",
            "zoom-account-id",
            "--client-id",
            "zoom-client-id",
            "--client-secret-env",
            "ZOOM_SECRET",
        ),
        ("source", "add", "zoom", "uni", "--credential", "z", "--zoom-user", "teacher@uni.example"),
        ("template", "add", "--file", str(tmp_path / "t.toml")),
        ("sync", "--from", "2026-02-01", "--to", "2026-02-28"),
    ):
        res = leap_here(*args, env=env)
        assert res.code == 0, (args, res.stderr)
    return env


def snapshot(rt: Runtime) -> list[dict[str, Any]]:
    with open_context(rt, Scope.system_scope()) as ctx:
        return [
            {
                "id": s.id,
                "rec": s.recording_id,
                "name": s.name,
                "status": s.status,
                "attempts": s.attempts,
                "progress": s.progress,
                "result": s.result,
                "artifacts": s.artifacts,
            }
            for s in ctx.repos.stages.list()
        ]


def wait_for(rt: Runtime, predicate: Any, timeout: float, what: str, log: Path) -> None:
    wait_until(lambda: snapshot(rt), predicate, timeout, what, log)


def all_done(rows: list[dict[str, Any]]) -> bool:
    return bool(rows) and all(r["status"] == "done" for r in rows)


def process(env: dict[str, str], limit: int) -> list[int]:
    res = leap_process(
        "--json", "process", "--template", "lectures", "--limit", str(limit), env=env
    )
    assert res.code == 0, res.stderr
    return [r["recording_id"] for r in json.loads(res.stdout)]


def check_outputs(rt: Runtime, clip: bytes, ids: list[int]) -> None:
    digest = hashlib.sha256(clip).hexdigest()
    tools = locate()
    with open_context(rt, Scope.system_scope()) as ctx:
        for rid in ids:
            rec = ctx.repos.recordings.require(rid)
            assert rec.status == "processed", (rid, rec.status, rec.error)
            assert rec.active_run_id is None
            done = {s.name: s for s in ctx.repos.stages.list(recording_id=rid, status="done")}
            assert set(done) == {"download", "trim"}
            source = Path(done["download"].artifacts["source"])
            assert hashlib.sha256(source.read_bytes()).hexdigest() == digest  # not truncated
            for kind in ("trimmed", "audio"):
                info = probe(tools, Path(done["trim"].artifacts[kind]))
                assert info.duration_s > 5
            leftovers = [
                p.name
                for p in source.parent.iterdir()
                if p.name.startswith(".") or p.name.endswith(".part") or p.name.endswith(".json")
            ]
            assert leftovers == []


def test_twenty_recordings_download_and_trim_concurrently(
    leap_env: dict[str, str],
    tmp_path: Path,
    zoom: tuple[FakeZoom, str, Throttle],
    clip: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, base, _ = zoom
    env = install(leap_env, tmp_path, base)
    log = tmp_path / "leapd.log"
    proc = start_leapd(env, log)
    rt = runtime_for(env, monkeypatch)
    try:
        ids = process(env, 20)
        assert len(ids) == 20
        wait_for(rt, lambda rows: len(rows) == 40 and all_done(rows), 180, "20 runs", log)
    finally:
        assert stop(proc) == 0
    check_outputs(rt, clip, ids)
    rows = snapshot(rt)
    assert all(r["attempts"] == 1 for r in rows)  # nothing ran twice
    # Interleaving: with 4 workers some trims started before the last download finished.
    rt.dispose()


def test_kill_9_during_downloads_and_trims_then_restart_finishes(
    leap_env: dict[str, str],
    tmp_path: Path,
    zoom: tuple[FakeZoom, str, Throttle],
    clip: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, base, throttle = zoom
    env = install(leap_env, tmp_path, base)
    log = tmp_path / "leapd.log"
    rt = runtime_for(env, monkeypatch)

    # 1) kill -9 in the middle of downloads.
    throttle.delay = 0.25  # several seconds per file
    proc = start_leapd(env, log)
    ids = process(env, 6)

    def downloading(rows: list[dict[str, Any]]) -> bool:
        return any(r["name"] == "download" and r["status"] == "running" for r in rows)

    wait_for(rt, downloading, 60, "a download in progress", log)
    time.sleep(1.5)  # some bytes reach the .part file (16 KiB every 0.25 s)
    stop(proc, signal.SIGKILL)
    killed = {r["id"] for r in snapshot(rt) if r["status"] == "running"}
    assert killed, "the kill landed while nothing ran"

    # 2) restart, and kill -9 again while trims run (accurate trims re-encode: slower).
    throttle.delay = 0.0
    assert (
        leap_process(
            "recordings", "config", str(ids[-1]), "--set", "trim.accurate=true", env=env
        ).code
        == 0
    )
    proc = start_leapd(env, log)

    def trimming(rows: list[dict[str, Any]]) -> bool:
        return any(r["name"] == "trim" and r["status"] == "running" for r in rows)

    wait_for(rt, trimming, 90, "a trim in progress", log)
    stop(proc, signal.SIGKILL)
    killed |= {r["id"] for r in snapshot(rt) if r["status"] == "running"}

    # 3) restart: the reconciler re-queues what the dead process held; everything finishes.
    proc = start_leapd(env, log)
    try:
        wait_for(rt, lambda rows: len(rows) == 12 and all_done(rows), 180, "all runs", log)
    finally:
        assert stop(proc) == 0
    check_outputs(rt, clip, ids)
    rows = {r["id"]: r for r in snapshot(rt)}
    for sid in killed:
        assert rows[sid]["attempts"] >= 2  # re-run after the crash
        assert "worker process died" in " ".join(rows[sid]["result"].get("requeued", []))
    for sid, r in rows.items():
        if sid not in killed:
            assert r["attempts"] == 1, r  # a finished stage never ran again
    resumed = [
        r
        for r in rows.values()
        if r["name"] == "download" and r["id"] in killed and r["result"].get("resumed_from", 0) > 0
    ]
    assert resumed, "no interrupted download resumed from the bytes it had"
    rt.dispose()
