"""The upload stage against a fake YouTube on loopback: one video per target, rendered
metadata, quota deferral then completion, a dead credential failing only its own target."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete

from leap.config import load_settings
from leap.context import Runtime, open_context
from leap.db.base import utcnow
from leap.db.models import YouTubeQuotaUsage
from leap.db.scope import Scope
from leap.pipeline.foreground import run_now
from tests import media
from tests.fakes.server import DropConnection, serve
from tests.fakes.youtube import FakeYouTube

YT_PRESET = """name = "yt"
platform = "youtube"
credential = "chan"
[metadata]
privacy = "unlisted"
title = "{title} — {record_time:DD.MM.YYYY}"
tags = ["lecture", "{template}"]
"""
FOLDER_PRESET = """name = "folder"
platform = "local"
[metadata]
path = "{root}/{{title}}"
"""
TEMPLATE = """name = "talks"
presets = ["yt", "folder"]
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


@pytest.fixture
def youtube() -> Iterator[tuple[FakeYouTube, str]]:
    fake = FakeYouTube()
    with serve(fake.handler) as base:
        yield fake, base


@pytest.fixture
def ready(
    leap_env: dict[str, str],
    cli: Any,
    tmp_path: Path,
    youtube: tuple[FakeYouTube, str],
    monkeypatch: pytest.MonkeyPatch,
) -> int:
    fake, base = youtube
    monkeypatch.setenv("LEAP_SYNC__LOCAL_SETTLE_SECONDS", "0")
    monkeypatch.setenv("LEAP_YOUTUBE__API_BASE_URL", f"{base}/youtube/v3")
    monkeypatch.setenv("LEAP_YOUTUBE__UPLOAD_BASE_URL", f"{base}/upload/youtube/v3")
    monkeypatch.setenv("LEAP_YOUTUBE__TOKEN_URI", f"{base}/token")
    media.make_video(tmp_path / "inbox" / "talk one 2026-04-02.mp4", 2)
    media.make_video(tmp_path / "inbox" / "talk two 2026-04-01.mp4", 2)
    (tmp_path / "au.json").write_text(
        json.dumps(
            {
                "client_id": fake.client_id,
                "client_secret": fake.client_secret,
                "refresh_token": fake.refresh_token,
            }
        )
    )
    (tmp_path / "yt.toml").write_text(YT_PRESET)
    (tmp_path / "f.toml").write_text(FOLDER_PRESET.format(root=tmp_path / "out"))
    (tmp_path / "t.toml").write_text(TEMPLATE)
    for args in (
        ("init", "--yes"),
        ("credentials", "add", "youtube", "chan", "--from-file", str(tmp_path / "au.json")),
        ("preset", "add", "--file", str(tmp_path / "yt.toml")),
        ("preset", "add", "--file", str(tmp_path / "f.toml")),
        ("template", "add", "--file", str(tmp_path / "t.toml")),
        ("source", "add", "local", "in", str(tmp_path / "inbox")),
        ("sync",),
    ):
        res = cli(*args)
        assert res.code == 0, (args, res.stderr)
    return int(cli("--json", "recordings", "list").json()[0]["id"])


def targets(cli: Any, rid: int) -> dict[str, dict[str, Any]]:
    rec = cli("--json", "recordings", "show", str(rid)).json()
    return {t["preset"]: t for t in rec["targets"]}


def test_publishes_once_with_rendered_metadata(
    ready: int, cli: Any, youtube: tuple[FakeYouTube, str]
) -> None:
    fake, _ = youtube
    res = cli("--json", "process", str(ready), "--now")
    assert res.code == 0, res.stderr
    t = targets(cli, ready)
    assert t["yt"]["status"] == "uploaded" and t["yt"]["url"].startswith("https://youtu.be/")
    assert t["folder"]["status"] == "uploaded"
    assert fake.video_count == 1
    [video] = fake.videos.values()
    rec = cli("--json", "recordings", "show", str(ready)).json()
    assert rec["status"] == "ready"
    source = Path(rec["artifacts"]["source"])
    assert video.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    sent = video.resource["snippet"]
    assert sent["title"] == "talk one — 02.04.2026"
    assert "talks" in sent["tags"] and any(tag.startswith("leap-") for tag in sent["tags"])
    # Forced re-processing of other stages never uploads a second video.
    assert cli("process", str(ready), "--now", "--stages", "trim").code == 0
    assert cli("process", str(ready), "--now", "--stages", "upload").code == 0
    assert fake.video_count == 1


def test_quota_defers_then_completes_after_the_reset(
    ready: int, cli: Any, runtime: Runtime, youtube: tuple[FakeYouTube, str]
) -> None:
    fake, _ = youtube
    fake.inject_error("upload_start", 403, "quotaExceeded", n=1)
    runtime.enqueue = lambda *_: None
    with open_context(runtime, Scope.system_scope()) as ctx:
        from leap.services import runs

        run = runs.start_run(ctx, ready)
        first = ctx.repos.stages.next_queued(run.id)
        assert first is not None
    outcomes = run_now(runtime, [first.id], sleep=lambda _s: None)
    t = targets(cli, ready)
    assert t["yt"]["status"] == "deferred" and t["folder"]["status"] == "uploaded"
    assert "waiting" in outcomes.values() or fake.video_count == 0
    assert fake.video_count == 0
    # The quota resets: the waiting stage becomes due, and the next pass publishes.
    with open_context(runtime, Scope.system_scope()) as ctx:
        upload = next(s for s in ctx.repos.stages.list(run_id=run.id) if s.name == "upload")
        assert upload.status == "queued" and upload.not_before is not None
        assert upload.not_before > utcnow() + timedelta(minutes=5)
        ctx.repos.stages.update_where({"not_before": utcnow()}, id=upload.id)
        ctx.session.execute(delete(YouTubeQuotaUsage))  # a new Pacific day: counters at 0
    run_now(runtime, [upload.id], sleep=lambda _s: None)
    t = targets(cli, ready)
    assert t["yt"]["status"] == "uploaded" and fake.video_count == 1
    assert cli("--json", "recordings", "show", str(ready)).json()["status"] == "ready"


def test_dead_credential_fails_only_its_target(
    ready: int, cli: Any, youtube: tuple[FakeYouTube, str]
) -> None:
    fake, _ = youtube
    fake.invalid_grant = True
    res = cli("process", str(ready), "--now")
    # 5: re-authenticate (docs/cli.md, "Exit codes")
    assert res.code == 5 and "Traceback" not in res.stderr
    assert "re-authenticate" in res.stderr
    t = targets(cli, ready)
    assert t["yt"]["status"] == "failed" and "re-authenticate" in t["yt"]["error"]
    assert t["folder"]["status"] == "uploaded"
    creds = cli("--json", "credentials", "list").json()
    assert creds[0]["status"] == "needs_reauth"
    # Re-authenticated: a retry publishes the failed target only.
    fake.invalid_grant = False
    assert cli("retry", str(ready)).code == 0


def test_the_ledger_defers_without_calling_youtube(
    ready: int, cli: Any, youtube: tuple[FakeYouTube, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, _ = youtube
    monkeypatch.setenv("LEAP_YOUTUBE__DAILY_UPLOADS", "1")
    ids = [r["id"] for r in cli("--json", "recordings", "list").json()]
    assert len(ids) == 2
    assert cli("process", str(ids[0]), "--now").code == 0
    starts = fake.requests["upload_start"]
    # The second publish does not fit today: it waits for midnight Pacific, no API call.
    cli("process", str(ids[1]), "--now")  # returns once the stage is waiting
    assert fake.requests["upload_start"] == starts and fake.video_count == 1
    assert targets(cli, ids[1])["yt"]["status"] == "deferred"
    quota = cli("--json", "quota", "youtube").json()
    assert quota["projects"][0]["uploads"] == "1/1"
    assert [d["recording_id"] for d in quota["deferred"]] == [ids[1]]


@pytest.fixture
def vk_ready(
    leap_env: dict[str, str], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, int]]:
    from tests.fakes.vk import FakeVK

    fake = FakeVK()
    with serve(fake.handler) as base:
        monkeypatch.setenv("LEAP_SYNC__LOCAL_SETTLE_SECONDS", "0")
        monkeypatch.setenv("LEAP_VK__API_BASE_URL", f"{base}/method")
        monkeypatch.setenv("LEAP_VK__ID_BASE_URL", base)
        media.make_video(tmp_path / "inbox" / "talk vk.mp4", 2)
        tokens = fake.issue_tokens(device_id="dev-1") | {
            "device_id": "dev-1",
            "client_id": fake.client_id,
        }
        (tmp_path / "vk.json").write_text(json.dumps(tokens))
        (tmp_path / "p.toml").write_text(
            'name = "vkp"\nplatform = "vk"\ncredential = "vkc"\n[metadata]\n'
            'title = "{title}"\nprivacy_view = "all"\nwallpost = true\n'
        )
        (tmp_path / "t.toml").write_text(TEMPLATE.replace('["yt", "folder"]', '["vkp"]'))
        for args in (
            ("init", "--yes"),
            ("credentials", "add", "vk", "vkc", "--from-file", str(tmp_path / "vk.json")),
            ("preset", "add", "--file", str(tmp_path / "p.toml")),
            ("template", "add", "--file", str(tmp_path / "t.toml")),
            ("source", "add", "local", "in", str(tmp_path / "inbox")),
            ("sync",),
        ):
            res = cli(*args)
            assert res.code == 0, (args, res.stderr)
        yield fake, int(cli("--json", "recordings", "list").json()[0]["id"])


def test_vk_publishes_once(cli: Any, vk_ready: tuple[Any, int]) -> None:
    fake, rid = vk_ready
    assert cli("process", str(rid), "--now").code == 0
    t = targets(cli, rid)["vkp"]
    assert t["status"] == "uploaded" and "/video" in t["url"]
    assert fake.video_count == 1
    assert fake.saved_params[0]["name"] == "talk vk"
    assert cli("process", str(rid), "--now", "--stages", "upload").code == 0
    assert fake.video_count == 1 and len(fake.saved_params) == 1


def test_vk_retry_reuses_the_slot_or_takes_a_new_one_when_its_url_expired(
    cli: Any, vk_ready: tuple[Any, int]
) -> None:
    fake, rid = vk_ready
    fake.inject_5xx("upload", status=400)  # the first upload fails for good
    assert cli("process", str(rid), "--now").code == 1
    t = targets(cli, rid)["vkp"]
    assert t["status"] == "failed" and fake.video_count == 0 and len(fake.saved_params) == 1
    # The retry sends the file to the slot saved before: still one slot, now one video.
    fake.inject_5xx("upload", status=400)
    assert cli("process", str(rid), "--now", "--stages", "upload").code == 1
    assert len(fake.saved_params) == 1
    fake.expire_upload_urls()  # too late for that slot: VK refuses its URL, a new one is made
    assert cli("process", str(rid), "--now", "--stages", "upload").code == 0
    assert targets(cli, rid)["vkp"]["status"] == "uploaded"
    assert fake.video_count == 1 and len(fake.saved_params) == 2


def test_extras_after_the_upload_run_once_across_a_retry(
    ready: int, cli: Any, tmp_path: Path, youtube: tuple[FakeYouTube, str]
) -> None:
    """An unverified channel's thumbnail refusal is a warning; a playlist failure fails the
    target with the video's URL, and the retry adds the playlist item without re-uploading
    or re-sending the thumbnail."""
    fake, _ = youtube
    fake.unverified_channel = True
    owner = cli("--json", "whoami").json()["id"]
    thumb = load_settings().media_path / f"user_{owner}" / "thumbnails" / "lecture.png"
    thumb.parent.mkdir(parents=True)
    thumb.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)  # found by name in the user's folder
    preset = YT_PRESET + 'thumbnail = "thumbnails/lecture.png"\nplaylist_id = "PLlectures"\n'
    (tmp_path / "yt.toml").write_text(preset)
    assert cli("preset", "edit", "yt", "--file", str(tmp_path / "yt.toml")).code == 0
    fake.inject_error("playlist_items_insert", 404, "playlistNotFound", n=1)
    res = cli("process", str(ready), "--now")
    assert res.code == 1 and "Traceback" not in res.stderr
    t = targets(cli, ready)["yt"]
    assert t["status"] == "failed" and "the video is up (https://youtu.be/" in t["error"]
    assert t["warnings"] and t["warnings"][0].startswith("thumbnail: youtube refused")
    assert fake.video_count == 1 and fake.requests["thumbnails_set"] == 1
    assert cli("process", str(ready), "--now", "--stages", "upload").code == 0
    t = targets(cli, ready)["yt"]
    assert t["status"] == "uploaded", t
    assert fake.video_count == 1 and fake.requests["upload_start"] == 1
    assert fake.requests["thumbnails_set"] == 1  # not sent again
    assert [p for p, _ in fake.playlist_items] == ["PLlectures"]


def test_force_publishes_a_new_video_under_a_new_marker_once(
    ready: int, cli: Any, youtube: tuple[FakeYouTube, str]
) -> None:
    fake, _ = youtube
    assert cli("process", str(ready), "--now").code == 0
    first = targets(cli, ready)["yt"]
    assert cli("process", str(ready), "--now", "--stages", "upload", "--force").code == 0
    second = targets(cli, ready)["yt"]
    assert fake.video_count == 2 and second["remote_id"] != first["remote_id"]
    markers = [
        {t for t in v.resource["snippet"]["tags"] if t.startswith("leap-")}
        for v in fake.videos.values()
    ]
    assert len(markers[0] | markers[1]) == 2  # a new idempotency key for the new video
    assert cli("process", str(ready), "--now", "--stages", "upload").code == 0
    assert fake.video_count == 2  # not forced: nothing new


def test_a_credential_marked_dead_is_not_asked_again_until_replaced(
    ready: int, cli: Any, tmp_path: Path, youtube: tuple[FakeYouTube, str]
) -> None:
    fake, _ = youtube
    fake.invalid_grant = True
    assert cli("process", str(ready), "--now").code == 5
    tokens = fake.requests["token"]
    fake.invalid_grant = False  # even though Google would answer now: re-adding is the signal
    res = cli("process", str(ready), "--now", "--stages", "upload")
    assert res.code == 5 and "re-authenticate chan" in res.stderr
    assert fake.requests["token"] == tokens and fake.video_count == 0
    # Re-authenticated: the same credential gets new secrets; the preset keeps using it.
    again = cli("credentials", "add", "youtube", "chan", "--from-file", str(tmp_path / "au.json"))
    assert again.code == 7 and "--replace" in again.stderr  # 7: conflict
    res = cli(
        "credentials",
        "add",
        "youtube",
        "chan",
        "--from-file",
        str(tmp_path / "au.json"),
        "--replace",
    )
    assert res.code == 0, res.stderr
    assert cli("--json", "credentials", "list").json()[0]["status"] == "active"
    assert cli("process", str(ready), "--now", "--stages", "upload").code == 0
    assert targets(cli, ready)["yt"]["status"] == "uploaded" and fake.video_count == 1


def test_preview_is_exactly_what_is_sent(
    ready: int, cli: Any, youtube: tuple[FakeYouTube, str]
) -> None:
    fake, _ = youtube
    res = cli("--json", "recordings", "meta", str(ready), "--preview")
    assert res.code == 0, res.stderr
    preview = {item["preset"]: item["request"] for item in res.json()}
    assert any(t.startswith("leap-") for t in preview["yt"]["snippet"]["tags"])
    assert set(preview["folder"]) == {"folder", "metadata.json"}
    assert cli("process", str(ready), "--now").code == 0
    [video] = fake.videos.values()
    sent = video.resource
    assert sent["snippet"] == preview["yt"]["snippet"]
    assert {k: v for k, v in sent["status"].items() if k != "uploadStatus"} == preview["yt"][
        "status"
    ]


def test_vk_flood_control_defers_the_target(cli: Any, vk_ready: tuple[Any, int]) -> None:
    fake, rid = vk_ready
    fake.inject_api_error(9, methods=("video.save",))
    cli("process", str(rid), "--now")  # returns once the stage is waiting
    t = targets(cli, rid)["vkp"]
    assert t["status"] == "deferred" and "flood control" in t["error"].lower()
    assert fake.video_count == 0 and fake.api_calls.count("video.save") == 1


def test_an_outage_longer_than_the_in_stage_retries_retries_the_stage(
    ready: int, cli: Any, runtime: Runtime, youtube: tuple[FakeYouTube, str]
) -> None:
    """8 answers of 503 use up the client's tries (Retry-After: 0 keeps it quick): the
    stage is not failed for good but queued again, and the next pass publishes once."""
    from tests.fakes.youtube import Fault

    fake, _ = youtube
    fake.inject("upload_start", Fault(503, "backendError", retry_after=0), n=8)
    runtime.enqueue = lambda *_: None
    with open_context(runtime, Scope.system_scope()) as ctx:
        from leap.services import runs

        run = runs.start_run(ctx, ready)
        first = ctx.repos.stages.next_queued(run.id)
        assert first is not None
    run_now(runtime, [first.id], sleep=lambda _s: None)
    assert fake.requests["upload_start"] == 8 and fake.video_count == 0
    assert targets(cli, ready)["yt"]["status"] == "failed"  # for now, with the reason
    with open_context(runtime, Scope.system_scope()) as ctx:
        upload = next(s for s in ctx.repos.stages.list(run_id=run.id) if s.name == "upload")
        assert upload.status == "queued" and upload.not_before is not None  # a retry, later
        ctx.repos.stages.update_where({"not_before": utcnow()}, id=upload.id)
    run_now(runtime, [upload.id], sleep=lambda _s: None)
    assert fake.requests["upload_start"] == 9
    quota = cli("--json", "quota", "youtube").json()
    assert quota["projects"][0]["uploads"] == "1/6"  # the retry was not charged again
    assert fake.video_count == 1 and targets(cli, ready)["yt"]["status"] == "uploaded"
    with open_context(runtime, Scope.system_scope()) as ctx:
        upload = next(s for s in ctx.repos.stages.list(run_id=run.id) if s.name == "upload")
        assert upload.status == "done" and upload.attempts == 2


def test_a_forced_run_republishes_once_even_across_a_quota_wait(
    ready: int,
    cli: Any,
    runtime: Runtime,
    tmp_path: Path,
    youtube: tuple[FakeYouTube, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--force resets the targets once per run: after the quota wait the deferred target is
    published, and the one published before the wait is not reset and published again."""
    from leap.services import runs

    fake, _ = youtube
    monkeypatch.setattr(runtime.settings.youtube, "daily_uploads", 1)
    (tmp_path / "yt2.toml").write_text(YT_PRESET.replace('name = "yt"', 'name = "yt2"'))
    assert cli("preset", "add", "--file", str(tmp_path / "yt2.toml")).code == 0
    tpl = TEMPLATE.replace('["yt", "folder"]', '["yt", "yt2", "folder"]')
    (tmp_path / "t2.toml").write_text(tpl)
    assert cli("template", "edit", "talks", "--file", str(tmp_path / "t2.toml")).code == 0
    runtime.enqueue = lambda *_: None
    with open_context(runtime, Scope.system_scope()) as ctx:
        run = runs.start_run(ctx, ready, force=True)
        first = ctx.repos.stages.next_queued(run.id)
        assert first is not None
    run_now(runtime, [first.id], sleep=lambda _s: None)
    t = targets(cli, ready)
    assert (t["yt"]["status"], t["yt2"]["status"]) == ("uploaded", "deferred")
    assert fake.video_count == 1
    with open_context(runtime, Scope.system_scope()) as ctx:  # midnight Pacific
        upload = next(s for s in ctx.repos.stages.list(run_id=run.id) if s.name == "upload")
        ctx.session.execute(delete(YouTubeQuotaUsage))
        ctx.repos.stages.update_where({"not_before": utcnow()}, id=upload.id)
    run_now(runtime, [upload.id], sleep=lambda _s: None)
    t = targets(cli, ready)
    assert (t["yt"]["status"], t["yt2"]["status"]) == ("uploaded", "uploaded")
    assert fake.video_count == 2  # yt was not published a second time


def test_a_playlist_insert_of_unknown_outcome_is_not_repeated(
    ready: int, cli: Any, tmp_path: Path, youtube: tuple[FakeYouTube, str]
) -> None:
    """The insert lands but its answer is lost (the connection drops after the server
    acted): before trying again the client asks the playlist, and adds nothing twice."""
    fake, _ = youtube
    (tmp_path / "yt.toml").write_text(YT_PRESET + 'playlist_id = "PLlectures"\n')
    assert cli("preset", "edit", "yt", "--file", str(tmp_path / "yt.toml")).code == 0
    real = fake._playlist_items_insert
    drops = [1]

    def lands_then_drops(request: Any) -> Any:
        response = real(request)
        if drops[0]:
            drops[0] -= 1
            raise DropConnection
        return response

    fake._playlist_items_insert = lands_then_drops  # type: ignore[method-assign]
    assert cli("process", str(ready), "--now").code == 0
    assert fake.playlist_items == [("PLlectures", next(iter(fake.videos)))]
    assert targets(cli, ready)["yt"]["status"] == "uploaded" and fake.video_count == 1
