"""Publishing end to end through a real `leapd`, with fake YouTube and VK on loopback: ten
recordings published to both with rendered metadata; a dead YouTube credential failing only
its own targets; quota exhaustion deferring, then completing after a reset; and `kill -9`
in the middle of a 500 MB upload, after which a restart resumes from the confirmed offset and
ends with exactly one video."""

from __future__ import annotations

import hashlib
import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from leap.context import Runtime, open_context
from leap.db.base import utcnow
from leap.db.models import YouTubeQuotaUsage
from leap.db.scope import Scope
from tests import media
from tests.fakes.server import serve
from tests.fakes.vk import FakeVK
from tests.fakes.youtube import FakeYouTube
from tests.leapd import runtime_for, start_leapd, stop, wait_until

pytestmark = pytest.mark.slow

YT_PRESET = """name = "{name}"
platform = "youtube"
credential = "{credential}"
[metadata]
privacy = "unlisted"
title = "{{title}} — {{record_time:DD.MM.YYYY}}"
description = "Recorded {{record_time:DD.MM.YYYY hh:mm}}, {{duration}}."
tags = ["lecture", "{{template}}"]
"""
VK_PRESET = """name = "vk"
platform = "vk"
credential = "vkc"
[metadata]
title = "{title} ({record_time:DD.MM.YY})"
privacy_view = "all"
wallpost = false
"""
TEMPLATE = """name = "talks"
presets = [{presets}]
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
MB = 1024 * 1024


@dataclass
class Platforms:
    youtube: FakeYouTube
    vk: FakeVK
    env: dict[str, str]
    vk_read_delay: float = 0.0  # seconds per MiB the VK server pauses while reading a body


@pytest.fixture
def platforms(leap_env: dict[str, str]) -> Iterator[Platforms]:
    yt, vk = FakeYouTube(), FakeVK()
    box: list[Platforms] = []
    with (
        serve(yt.handler) as yt_base,
        serve(vk.handler, read_delay=lambda: box[0].vk_read_delay) as vk_base,
    ):
        env = {
            **leap_env,
            "LEAP_YOUTUBE__API_BASE_URL": f"{yt_base}/youtube/v3",
            "LEAP_YOUTUBE__UPLOAD_BASE_URL": f"{yt_base}/upload/youtube/v3",
            "LEAP_YOUTUBE__TOKEN_URI": f"{yt_base}/token",
            "LEAP_VK__API_BASE_URL": f"{vk_base}/method",
            "LEAP_VK__ID_BASE_URL": vk_base,
            "LEAP_SYNC__LOCAL_SETTLE_SECONDS": "0",
            # A Google project with a quota extension: the default ledger allows 6 uploads a
            # day (10,000 units at 1,600 per insert) and would hold the rest until midnight.
            "LEAP_YOUTUBE__DAILY_UPLOADS": "100",
            "LEAP_YOUTUBE__DAILY_UNITS": "1000000",
            "LEAP_WORKER__COUNT": "3",
            "LEAP_QUEUE__MAX_DELAY": "0.2",
            "LEAP_WORKER__RECONCILE_SECONDS": "1",
            "LEAP_WORKER__SHUTDOWN_TIMEOUT": "2",
        }
        box.append(Platforms(yt, vk, env))
        yield box[0]


def install(
    cli: Any,
    tmp_path: Path,
    p: Platforms,
    monkeypatch: pytest.MonkeyPatch,
    *,
    presets: list[str],
    recordings: int,
    dead_youtube: bool = False,
) -> None:
    """One user with a local inbox of `recordings` clips and a template naming `presets`."""
    for k, v in p.env.items():
        monkeypatch.setenv(k, v)
    inbox = tmp_path / "inbox"
    if recordings:
        first = media.make_video(inbox / "talk 01 2026-04-01.mp4", 1)
        for i in range(2, recordings + 1):  # the same clip, other names: ffmpeg runs once
            (inbox / f"talk {i:02d} 2026-04-{i:02d}.mp4").write_bytes(first.read_bytes())
    yt = p.youtube
    good = {"client_id": yt.client_id, "client_secret": yt.client_secret}
    (tmp_path / "chan.json").write_text(json.dumps(good | {"refresh_token": yt.refresh_token}))
    (tmp_path / "old.json").write_text(json.dumps(good | {"refresh_token": "revoked-token"}))
    tokens = p.vk.issue_tokens(device_id="dev-1") | {
        "device_id": "dev-1",
        "client_id": p.vk.client_id,
    }
    (tmp_path / "vk.json").write_text(json.dumps(tokens))
    (tmp_path / "yt.toml").write_text(YT_PRESET.format(name="yt", credential="chan"))
    (tmp_path / "old.toml").write_text(YT_PRESET.format(name="yt-old", credential="old"))
    (tmp_path / "vk.toml").write_text(VK_PRESET)
    names = ", ".join(f'"{n}"' for n in presets)
    (tmp_path / "t.toml").write_text(TEMPLATE.format(presets=names))
    steps: list[tuple[str, ...]] = [
        ("init", "--yes"),
        ("credentials", "add", "youtube", "chan", "--from-file", str(tmp_path / "chan.json")),
        ("credentials", "add", "vk", "vkc", "--from-file", str(tmp_path / "vk.json")),
        ("preset", "add", "--file", str(tmp_path / "yt.toml")),
        ("preset", "add", "--file", str(tmp_path / "vk.toml")),
    ]
    if dead_youtube:
        steps += [
            ("credentials", "add", "youtube", "old", "--from-file", str(tmp_path / "old.json")),
            ("preset", "add", "--file", str(tmp_path / "old.toml")),
        ]
    steps += [
        ("template", "add", "--file", str(tmp_path / "t.toml")),
        ("source", "add", "local", "in", str(inbox)),
        ("sync",),
    ]
    for args in steps:
        res = cli(*args)
        assert res.code == 0, (args, res.stderr)


def process_all(cli: Any) -> list[int]:
    res = cli("--json", "process", "--template", "talks")
    assert res.code == 0, res.stderr
    return [int(r["recording_id"]) for r in res.json()]


def targets(cli: Any, rid: int) -> dict[str, dict[str, Any]]:
    rec = cli("--json", "recordings", "show", str(rid)).json()
    return {t["preset"]: t for t in rec["targets"]}


def stage_rows(rt: Runtime) -> list[dict[str, Any]]:
    with open_context(rt, Scope.system_scope()) as ctx:
        return [
            {
                "id": s.id,
                "rec": s.recording_id,
                "name": s.name,
                "status": s.status,
                "attempts": s.attempts,
                "not_before": s.not_before,
            }
            for s in ctx.repos.stages.list()
        ]


def due_now(rt: Runtime, waiting: list[dict[str, Any]], log: Path, what: str) -> None:
    """The waiting stages' time has come (a reset, simulated): leapd finishes every stage."""
    with open_context(rt, Scope.system_scope()) as ctx:
        for r in waiting:
            ctx.repos.stages.update_where(
                {"not_before": utcnow(), "queued_at": utcnow() - timedelta(minutes=5)},
                id=r["id"],
            )
    wait_until(
        lambda: stage_rows(rt),
        lambda rows: all(r["status"] == "done" for r in rows),
        120,
        what,
        log,
    )


def settled(rows: list[dict[str, Any]]) -> bool:
    """Nothing queued to run now and nothing running."""
    now = utcnow()
    return bool(rows) and all(
        r["status"] in ("done", "failed", "skipped", "cancelled")
        or (r["status"] == "queued" and r["not_before"] is not None and r["not_before"] > now)
        for r in rows
    )


def test_ten_recordings_published_to_youtube_and_vk(
    cli: Any, tmp_path: Path, platforms: Platforms, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(cli, tmp_path, platforms, monkeypatch, presets=["yt", "vk"], recordings=10)
    log = tmp_path / "leapd.log"
    rt = runtime_for(platforms.env, monkeypatch)
    proc = start_leapd(platforms.env, log)
    try:
        ids = process_all(cli)
        assert len(ids) == 10
        wait_until(
            lambda: stage_rows(rt),
            lambda rows: len(rows) == 30 and all(r["status"] == "done" for r in rows),
            240,
            "10 recordings published",
            log,
        )
    finally:
        assert stop(proc) == 0
    yt, vk = platforms.youtube, platforms.vk
    assert yt.video_count == 10 and vk.video_count == 10
    assert len(yt.sessions) == 10 and len(vk.saved_params) == 10  # nothing started twice
    digest = hashlib.sha256((tmp_path / "inbox" / "talk 01 2026-04-01.mp4").read_bytes())
    assert {v.sha256 for v in yt.videos.values()} == {digest.hexdigest()}
    titles = sorted(v.resource["snippet"]["title"] for v in yt.videos.values())
    assert titles == [f"talk {i:02d} — {i:02d}.04.2026" for i in range(1, 11)]
    some = next(iter(yt.videos.values())).resource
    assert some["status"]["privacyStatus"] == "unlisted"
    assert some["snippet"]["description"].startswith("Recorded ")
    assert "talks" in some["snippet"]["tags"]
    assert sorted(p["name"] for p in vk.saved_params) == [
        f"talk {i:02d} ({i:02d}.04.26)" for i in range(1, 11)
    ]
    for rid in ids:
        t = targets(cli, rid)
        assert t["yt"]["status"] == "uploaded" and t["yt"]["url"].startswith("https://youtu.be/")
        assert t["vk"]["status"] == "uploaded" and "video" in t["vk"]["url"]
    assert all(r["attempts"] == 1 for r in stage_rows(rt))
    # Usage equals the work done (docs/quotas.md): a recording and one upload per platform
    # each, settled (no reservation left open).
    with open_context(rt, Scope.system_scope()) as ctx:
        events = [(e.kind, e.recording_id, e.amount, e.detail) for e in ctx.repos.usage.list()]
    for kind in ("recordings", "youtube_uploads", "vk_uploads"):
        assert sorted(rid for k, rid, _, _ in events if k == kind) == sorted(ids), kind
    assert len(events) == 30 and all(amount == 1 for _, _, amount, _ in events)
    assert not any(detail.get("reserved") for *_, detail in events)
    rt.dispose()


def test_a_dead_youtube_credential_fails_only_its_targets(
    cli: Any, tmp_path: Path, platforms: Platforms, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(
        cli,
        tmp_path,
        platforms,
        monkeypatch,
        presets=["yt", "yt-old", "vk"],
        recordings=3,
        dead_youtube=True,
    )
    log = tmp_path / "leapd.log"
    rt = runtime_for(platforms.env, monkeypatch)
    proc = start_leapd(platforms.env, log)
    try:
        ids = process_all(cli)
        wait_until(lambda: stage_rows(rt), settled, 180, "every run to finish", log)
        assert proc.poll() is None  # the daemon carries on
    finally:
        assert stop(proc) == 0
    assert platforms.youtube.video_count == 3 and platforms.vk.video_count == 3
    for rid in ids:
        t = targets(cli, rid)
        assert t["yt"]["status"] == "uploaded" and t["vk"]["status"] == "uploaded"
        assert t["yt-old"]["status"] == "failed"
        assert t["yt-old"]["error"].startswith("re-authenticate old: ")
        rec = cli("--json", "recordings", "show", str(rid)).json()
        assert rec["status"] == "failed" and "re-authenticate" in rec["error"]
    creds = {c["name"]: c["status"] for c in cli("--json", "credentials", "list").json()}
    assert creds == {"chan": "active", "old": "needs_reauth", "vkc": "active"}
    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "revoked-token" not in text
    errors = [line for line in text.splitlines() if " ERROR " in line and "re-authenticate" in line]
    assert len(errors) >= 3  # one line per failed target
    rt.dispose()


def test_quota_exhaustion_defers_then_completes_after_the_reset(
    cli: Any, tmp_path: Path, platforms: Platforms, monkeypatch: pytest.MonkeyPatch
) -> None:
    platforms.env["LEAP_WORKER__COUNT"] = "1"  # one upload at a time: a deterministic order
    install(cli, tmp_path, platforms, monkeypatch, presets=["yt", "vk"], recordings=3)
    yt = platforms.youtube
    yt.inject_error("upload_start", 403, "quotaExceeded", n=1)
    log = tmp_path / "leapd.log"
    rt = runtime_for(platforms.env, monkeypatch)
    proc = start_leapd(platforms.env, log)
    try:
        ids = process_all(cli)
        rows = wait_until(lambda: stage_rows(rt), settled, 180, "uploads to wait", log)
        uploads = [r for r in rows if r["name"] == "upload"]
        assert len(uploads) == 3 and all(r["status"] == "queued" for r in uploads)
        assert all(r["not_before"] > utcnow() + timedelta(minutes=5) for r in uploads)
        # YouTube said quotaExceeded once; the ledger kept the other two from asking again.
        assert yt.requests["upload_start"] == 1 and yt.video_count == 0
        assert platforms.vk.video_count == 3  # VK has its own quota: not held back
        for rid in ids:
            assert targets(cli, rid)["yt"]["status"] == "deferred"
        quota = cli("--json", "quota", "youtube").json()
        assert sorted(d["recording_id"] for d in quota["deferred"]) == sorted(ids)

        # Midnight Pacific, simulated: a new day's counters, and the waits are due.
        with open_context(rt, Scope.system_scope()) as ctx:
            ctx.session.execute(delete(YouTubeQuotaUsage))
        due_now(rt, uploads, log, "the deferred uploads to finish")
    finally:
        assert stop(proc) == 0
    assert yt.video_count == 3 and platforms.vk.video_count == 3
    assert len(platforms.vk.saved_params) == 3  # VK targets were not published again
    for rid in ids:
        t = targets(cli, rid)
        assert t["yt"]["status"] == "uploaded" and t["vk"]["status"] == "uploaded"
    rt.dispose()


def test_our_upload_quota_defers_uploads_to_the_reset_and_never_fails_them(
    cli: Any, tmp_path: Path, platforms: Platforms, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LEAP's own quota (docs/quotas.md): past the user's YouTube uploads, leapd parks the
    targets until the period resets instead of failing them; VK, not limited, goes on."""
    platforms.env["LEAP_WORKER__COUNT"] = "1"
    install(cli, tmp_path, platforms, monkeypatch, presets=["yt", "vk"], recordings=4)
    me = cli("--json", "whoami").json()["name"]
    assert cli("user", "set-quota", me, "youtube_uploads_per_month=2").code == 0
    log = tmp_path / "leapd.log"
    rt = runtime_for(platforms.env, monkeypatch)
    proc = start_leapd(platforms.env, log)
    try:
        ids = process_all(cli)
        rows = wait_until(lambda: stage_rows(rt), settled, 180, "uploads to wait", log)
        waiting = [r for r in rows if r["name"] == "upload" and r["status"] == "queued"]
        assert len(waiting) == 2
        assert all(r["not_before"] > utcnow() + timedelta(hours=1) for r in waiting)
        assert platforms.youtube.video_count == 2 and platforms.vk.video_count == 4
        held = [targets(cli, rid)["yt"] for rid in ids]
        deferred = [t for t in held if t["status"] == "deferred"]
        assert len(deferred) == 2
        assert "quota youtube_uploads_per_month reached: 2 of 2 used (custom)" in str(
            deferred[0]["error"]
        )
        # The period resets (simulated: a higher limit, and the waits are due).
        assert cli("user", "set-quota", me, "youtube_uploads_per_month=10").code == 0
        due_now(rt, waiting, log, "the held uploads to finish")
    finally:
        assert stop(proc) == 0
    assert platforms.youtube.video_count == 4 and platforms.vk.video_count == 4
    with open_context(rt, Scope.system_scope()) as ctx:
        events = [(e.kind, e.detail) for e in ctx.repos.usage.list()]
    assert sum(1 for k, _ in events if k == "youtube_uploads") == 4
    assert not any(d.get("reserved") for _, d in events)
    rt.dispose()


def target_row(rt: Runtime, platform: str) -> dict[str, Any]:
    """The one target of `platform` (all None before the upload stage creates it)."""
    with open_context(rt, Scope.system_scope()) as ctx:
        found = [t for t in ctx.repos.targets.list() if t.platform == platform]
        if not found:
            return {"status": None, "session": None, "offset": 0, "attempts": 0, "slot": None}
        [t] = found
        return {
            "status": t.status,
            "session": t.upload_session_uri,
            "offset": t.upload_offset,
            "attempts": t.attempts,
            "slot": (t.sent_metadata or {}).get("vk_slot"),
        }


def test_kill_9_mid_500_mb_upload_resumes_with_exactly_one_video(
    cli: Any, tmp_path: Path, platforms: Platforms, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = 500 * MB
    chunk = 8 * MB
    media.pad_mp4(media.make_video(tmp_path / "inbox" / "talk big 2026-04-20.mp4", 1), size)
    platforms.env["LEAP_YOUTUBE__UPLOAD_CHUNK_MB"] = str(chunk // MB)
    install(cli, tmp_path, platforms, monkeypatch, presets=["yt"], recordings=0)
    yt = platforms.youtube
    yt.put_delay = 0.1  # about 0.1 s per 8 MiB chunk: the kill lands mid-upload
    log = tmp_path / "leapd.log"
    rt = runtime_for(platforms.env, monkeypatch)
    proc = start_leapd(platforms.env, log)
    try:
        [rid] = process_all(cli)
        at_kill = wait_until(
            lambda: target_row(rt, "youtube"),
            lambda t: 4 * chunk <= t["offset"] < size - 8 * chunk,
            180,
            "the upload to be under way",
            log,
        )
    finally:
        stop(proc, signal.SIGKILL)
    time.sleep(1.0)  # a chunk whose body the fake had read when leapd died still lands
    puts_before = len(yt.chunk_ranges)
    assert yt.video_count == 0 and at_kill["session"]
    server_offset = yt.sessions[next(iter(yt.sessions))].offset
    assert server_offset >= at_kill["offset"]  # the server may hold one chunk more

    yt.put_delay = 0.0
    proc = start_leapd(platforms.env, log)
    try:
        wait_until(
            lambda: target_row(rt, "youtube"),
            lambda t: t["status"] == "uploaded",
            240,
            "the upload to finish after the restart",
            log,
        )
        wait_until(
            lambda: stage_rows(rt),
            lambda rows: all(r["status"] == "done" for r in rows),
            60,
            "the run to finish",
            log,
        )
    finally:
        assert stop(proc) == 0
    assert yt.video_count == 1 and len(yt.sessions) == 1  # the same session, one video
    resumed = yt.chunk_ranges[puts_before:]
    assert resumed[0][1] == server_offset  # from the server's confirmed offset, not from 0
    sent = sum(last - first + 1 for _, first, last in yt.chunk_ranges)
    assert sent <= size + chunk  # at most the chunk in flight at the kill went twice
    source = tmp_path / "inbox" / "talk big 2026-04-20.mp4"
    digest = hashlib.sha256()
    with source.open("rb") as fh:
        while block := fh.read(4 * MB):
            digest.update(block)
    [video] = yt.videos.values()
    assert video.sha256 == digest.hexdigest() and video.size == size
    t = targets(cli, rid)["yt"]
    assert t["status"] == "uploaded" and target_row(rt, "youtube")["attempts"] == 2
    rt.dispose()


def test_kill_9_mid_vk_upload_reuses_the_slot_with_exactly_one_video(
    cli: Any, tmp_path: Path, platforms: Platforms, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VK has no resume: after the kill the whole file goes again, to the slot saved before the
    first byte, so there is one video and no empty slot left behind."""
    size = 64 * MB
    media.pad_mp4(media.make_video(tmp_path / "inbox" / "talk vk 2026-04-21.mp4", 1), size)
    install(cli, tmp_path, platforms, monkeypatch, presets=["vk"], recordings=0)
    vk = platforms.vk
    platforms.vk_read_delay = 0.1  # about 6 s to read the 64 MiB body: the kill lands inside
    log = tmp_path / "leapd.log"
    rt = runtime_for(platforms.env, monkeypatch)
    proc = start_leapd(platforms.env, log)
    try:
        [rid] = process_all(cli)
        wait_until(
            lambda: target_row(rt, "vk"),
            lambda t: t["slot"] is not None,
            120,
            "the VK slot to be saved",
            log,
        )
        time.sleep(1.0)  # some MiB of the body are read
    finally:
        stop(proc, signal.SIGKILL)
    assert vk.video_count == 0 and len(vk.saved_params) == 1

    platforms.vk_read_delay = 0.0
    proc = start_leapd(platforms.env, log)
    try:
        wait_until(
            lambda: target_row(rt, "vk"),
            lambda t: t["status"] == "uploaded",
            120,
            "the VK upload to finish after the restart",
            log,
        )
    finally:
        assert stop(proc) == 0
    assert vk.video_count == 1 and len(vk.saved_params) == 1  # the same slot: nothing empty
    [video] = vk.videos.values()
    assert video.size == size and video.uploads == 1
    t = targets(cli, rid)["vk"]
    assert t["status"] == "uploaded" and t["url"].endswith(f"{video.owner_id}_{video.video_id}")
    rt.dispose()
