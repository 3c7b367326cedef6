"""The approval gate (docs/approval.md): the pure decisions, the fake YouTube's videos.update,
and the upload stage and `leap approve` end to end against the fakes on loopback, on SQLite
and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from leap import states
from leap.config import load_settings
from leap.context import Runtime, open_context
from leap.db.base import utcnow
from leap.db.scope import Scope
from leap.domain import RecordingStatus as S
from leap.domain import Stage
from leap.errors import UsageError
from leap.providers.http import make_http_client
from leap.services import approval as approving
from leap.specs import approval
from leap.specs.approval import Gate, TargetFacts
from leap.specs.preset import parse_preset
from leap.specs.template import parse_template, to_toml
from tests import media
from tests.fakes.server import mock_transport, serve
from tests.fakes.vk import FakeVK
from tests.fakes.youtube import FakeYouTube, Fault

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=2)

# ------------------------------------------------------------------ the upload stage's gate


@pytest.mark.parametrize(
    ("platform", "state", "gated", "started", "publish_at", "gate"),
    [
        ("youtube", None, False, False, None, Gate.PUBLISH),
        ("youtube", None, True, False, None, Gate.PRIVATE),
        ("vk", None, True, False, None, Gate.HOLD),
        ("local", None, True, False, None, Gate.HOLD),
        # Something went out before the gate was turned on: it goes on as it began.
        ("youtube", None, True, True, None, Gate.PUBLISH),
        ("vk", None, True, True, None, Gate.PUBLISH),
        # Awaiting stays held even when the gate was turned off meanwhile.
        ("youtube", "awaiting", False, True, None, Gate.PRIVATE),
        ("vk", "awaiting", False, False, None, Gate.HOLD),
        ("youtube", "approved", True, True, None, Gate.PUBLISH),
        ("vk", "approved", True, False, None, Gate.PUBLISH),
        ("vk", "approved", True, False, LATER, Gate.SCHEDULED),
        ("local", "approved", True, False, LATER, Gate.SCHEDULED),
        ("vk", "approved", True, False, NOW - timedelta(minutes=1), Gate.PUBLISH),
        # YouTube schedules itself (publishAt): the upload never waits for it.
        ("youtube", "approved", True, False, LATER, Gate.PUBLISH),
    ],
)
def test_the_gate_at_upload(
    platform: str,
    state: str | None,
    gated: bool,
    started: bool,
    publish_at: datetime | None,
    gate: Gate,
) -> None:
    got = approval.at_upload(
        platform=platform,
        approval=state,
        gated=gated,
        started=started,
        publish_at=publish_at,
        now=NOW,
    )
    assert got is gate


def test_a_held_youtube_upload_is_private_and_unscheduled() -> None:
    values = {"title": "t", "privacy": "private", "publish_at": "2026-07-01T10:00:00Z"}
    sent, asked = approval.held(values)
    assert sent == {"title": "t", "privacy": "private"}
    assert asked == {"privacy": "private", "publish_at": "2026-07-01T10:00:00Z"}
    assert approval.held({"privacy": "unlisted"}) == (
        {"privacy": "private"},
        {"privacy": "unlisted", "publish_at": None},
    )


# ------------------------------------------------------------------ leap approve's decision


def yt(**kw: Any) -> TargetFacts:
    base: dict[str, Any] = {
        "id": 1,
        "preset": "yt",
        "platform": "youtube",
        "status": "uploaded",
        "approval": "awaiting",
        "video_id": "vid1",
        "credential_id": 7,
        "credential": "chan",
        "sent": {
            "privacy": "private",
            "embeddable": False,
            "license": "creativeCommon",
            "made_for_kids": False,
            approval.ASKED_KEY: {"privacy": "public", "publish_at": None},
        },
    }
    return TargetFacts(**(base | kw))


def vk(**kw: Any) -> TargetFacts:
    base: dict[str, Any] = {
        "id": 2,
        "preset": "vkp",
        "platform": "vk",
        "status": "pending",
        "approval": "awaiting",
        "video_id": None,
        "credential_id": 8,
        "credential": "vkc",
    }
    return TargetFacts(**(base | kw))


def decide(*targets: TargetFacts, running: bool = False, at: datetime | None = None) -> Any:
    return approval.plan(5, "talk", running=running, targets=targets, publish_at=at, now=NOW)


def test_nothing_to_approve_is_a_skip_with_its_reason() -> None:
    assert decide().skip == "nothing awaiting approval"
    assert decide(yt(approval=None)).skip == "nothing awaiting approval"
    assert decide(yt(approval="approved"), vk(approval=None)).skip == "already approved"
    assert decide(yt(), running=True).skip == "running"
    held = decide(yt(status="failed", video_id=None))
    assert held.skip == "not uploaded yet: yt (youtube) is failed" and not held.acts


def test_a_dead_credential_refuses_the_whole_recording() -> None:
    p = decide(yt(), vk(credential_dead=True))
    assert not p.acts and p.steps == () and p.refused is not None
    assert p.refused.startswith("re-authenticate vkc")
    assert p.reason == p.refused


def test_youtube_goes_public_with_its_whole_status() -> None:
    p = decide(yt())
    [step] = p.steps
    assert p.acts and p.reason == "youtube: make public"
    # part=status replaces every mutable field: the ones the upload sent are sent again.
    assert step.status == {
        "privacyStatus": "public",
        "selfDeclaredMadeForKids": False,
        "embeddable": False,
        "license": "creativeCommon",
    }
    assert step.video_id == "vid1" and step.publish_at is None and not step.uploads


@pytest.mark.parametrize(
    ("asked", "reason", "status"),
    [
        ({"privacy": "unlisted"}, "youtube: make unlisted", {"privacyStatus": "unlisted"}),
        ({"privacy": "private"}, "youtube: stays private (its metadata asks for private)", None),
        ({}, "youtube: stays private (its metadata asks for private)", None),
        (
            {"privacy": "private", "publish_at": "2026-06-02T09:00:00+03:00"},
            "youtube: schedule for 2026-06-02T06:00:00Z (its metadata's publish_at)",
            {"privacyStatus": "private", "publishAt": "2026-06-02T06:00:00Z"},
        ),
        (
            {"privacy": "private", "publish_at": "2026-05-01T09:00:00Z"},
            "youtube: make public (its publish_at has passed)",
            {"privacyStatus": "public"},
        ),
    ],
)
def test_youtube_applies_what_its_metadata_asked(
    asked: dict[str, Any], reason: str, status: dict[str, Any] | None
) -> None:
    [step] = decide(yt(sent={approval.ASKED_KEY: asked})).steps
    assert step.note == reason and step.status == status


def test_publish_at_schedules_youtube_and_delays_vk_and_local() -> None:
    p = decide(yt(), vk(), vk(id=3, preset="folder", platform="local", credential=None), at=LATER)
    youtube, vk_step, local = p.steps
    assert youtube.status is not None
    assert youtube.status["privacyStatus"] == "private"
    assert youtube.status["publishAt"] == "2026-06-03T12:00:00Z"
    assert youtube.publish_at == LATER
    assert vk_step.note == "vk: upload at 2026-06-03T12:00:00Z" and vk_step.publish_at == LATER
    assert local.note == "local: export at 2026-06-03T12:00:00Z" and local.uploads
    assert p.reason == "; ".join(s.note for s in p.steps)
    assert decide(vk()).steps[0].note == "vk: upload"


def test_an_update_recorded_before_is_sent_again_unchanged() -> None:
    body = {"privacyStatus": "private", "publishAt": "2026-06-02T00:00:00Z"}
    pending = {"status": body, "note": "schedule for 2026-06-02T00:00:00Z", "publish_at": None}
    [step] = decide(yt(sent={approval.SENT_KEY: pending}), at=LATER).steps
    assert step.status == body  # not LATER: a lost answer never turns into a second outcome
    assert step.note == "youtube: schedule for 2026-06-02T00:00:00Z (finishing an earlier approve)"


def test_publish_at_is_parsed_in_the_users_timezone_and_must_lie_ahead() -> None:
    moscow = ZoneInfo("Europe/Moscow")
    assert approval.parse_when("2026-06-02T10:00", moscow, NOW) == datetime(
        2026, 6, 2, 7, 0, tzinfo=UTC
    )
    assert approval.parse_when("2026-06-02T10:00Z", moscow, NOW) == datetime(
        2026, 6, 2, 10, 0, tzinfo=UTC
    )
    for bad in ("2026-05-30T10:00:00Z", "tomorrow", "2026-13-01", ""):
        with pytest.raises(UsageError, match="--publish-at"):
            approval.parse_when(bad, moscow, NOW)
    with pytest.raises(UsageError, match="does not exist"):  # the clocks skip 02:30 that day
        approval.parse_when("2027-03-28T02:30", ZoneInfo("Europe/Berlin"), NOW)


def test_the_status_machine_knows_awaiting_approval() -> None:
    assert states.done(Stage.UPLOAD, held=True) is S.AWAITING_APPROVAL
    assert states.done(Stage.TRIM, held=True) is S.TRIMMED
    assert states.finished(uploaded=True, held=False) is S.READY
    assert states.finished(uploaded=True, held=True) is S.AWAITING_APPROVAL
    assert states.finished(uploaded=False, held=False) is S.PROCESSED
    assert states.check(S.UPLOADING.value, S.AWAITING_APPROVAL) is S.AWAITING_APPROVAL
    assert states.check(S.AWAITING_APPROVAL.value, S.QUEUED) is S.QUEUED  # the upload run
    assert states.check(S.AWAITING_APPROVAL.value, S.READY) is S.READY  # YouTube approved
    for illegal in (S.UPLOADING, S.FAILED, S.DOWNLOADING):
        with pytest.raises(states.IllegalTransition):
            states.check(S.AWAITING_APPROVAL.value, illegal)
    with pytest.raises(states.IllegalTransition):
        states.check(S.READY.value, S.AWAITING_APPROVAL)


# ------------------------------------------------------------------ the files


def test_the_key_in_preset_and_template_files() -> None:
    spec = parse_preset(
        'name = "p"\nplatform = "vk"\ncredential = "c"\napproval = true\n', origin="p.toml"
    )
    assert spec.approval is True
    with pytest.raises(UsageError, match="approval"):
        parse_preset('name = "p"\nplatform = "local"\napproval = "yes"\n', origin="p.toml")
    with pytest.raises(UsageError, match=r"metadata\.approval: approval is a top-level key"):
        parse_preset('name = "p"\nplatform = "local"\n[metadata]\napproval = true\n', origin="p")
    text = 'name = "t"\napproval = true\n[match]\nkeywords = ["x"]\n'
    tpl = parse_template(text, origin="t.toml")
    assert tpl.approval is True and parse_template(to_toml(tpl), origin="again") == tpl
    assert "approval" not in to_toml(
        parse_template('name = "t"\n[match]\nkeywords = ["x"]\n', origin="t")
    )
    with pytest.raises(UsageError, match="approval is a top-level key"):
        parse_template(
            'name = "t"\n[match]\nkeywords = ["x"]\n[metadata]\napproval = true\n', origin="t"
        )
    with pytest.raises(UsageError, match="approval"):
        parse_template('name = "t"\napproval = 1\n[match]\nkeywords = ["x"]\n', origin="t")


# ------------------------------------------------------------------ the fake's videos.update


@pytest.fixture
def youtube_api() -> Iterator[tuple[FakeYouTube, httpx.Client, str]]:
    fake = FakeYouTube()
    with httpx.Client(transport=mock_transport(fake.handler), base_url="http://yt") as http:
        grant = {
            "grant_type": "refresh_token",
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
            "refresh_token": fake.refresh_token,
        }
        token = http.post("/token", data=grant).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        vid = fake.add_video({"title": "t"})
        fake.videos[vid].resource["status"] = {
            "privacyStatus": "private",
            "embeddable": False,
            "uploadStatus": "processed",
        }
        yield fake, http, vid


def update(http: httpx.Client, vid: str, status: dict[str, Any], part: str = "status") -> Any:
    return http.put("/youtube/v3/videos", params={"part": part}, json={"id": vid, "status": status})


def reason(response: httpx.Response) -> str:
    return str(response.json()["error"]["errors"][0]["reason"])


def test_the_fake_update_replaces_the_whole_status(
    youtube_api: tuple[FakeYouTube, httpx.Client, str],
) -> None:
    fake, http, vid = youtube_api
    res = update(http, vid, {"privacyStatus": "unlisted"})
    assert res.status_code == 200
    status = fake.videos[vid].resource["status"]
    # embeddable was left out: back to its default; read-only fields stay.
    assert status == {
        "privacyStatus": "unlisted",
        "embeddable": True,
        "license": "youtube",
        "publicStatsViewable": True,
        "uploadStatus": "processed",
    }
    assert update(http, vid, {}).status_code == 200  # no privacy: the channel's default
    assert fake.videos[vid].resource["status"]["privacyStatus"] == "public"
    assert fake.updates[vid] == 2


def test_the_fake_update_enforces_publish_at_rules(
    youtube_api: tuple[FakeYouTube, httpx.Client, str],
) -> None:
    fake, http, vid = youtube_api
    ahead = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert reason(update(http, vid, {"privacyStatus": "public", "publishAt": ahead})) == (
        "invalidPublishAt"
    )
    assert reason(update(http, vid, {"privacyStatus": "private", "publishAt": "soon"})) == (
        "invalidPublishAt"
    )
    assert reason(update(http, vid, {"privacyStatus": "secret"})) == "invalidVideoMetadata"
    assert reason(update(http, "nope", {"privacyStatus": "public"})) == "videoNotFound"
    assert reason(update(http, vid, {}, part="snippet")) == "unexpectedPart"
    ok = update(http, vid, {"privacyStatus": "private", "publishAt": ahead})
    assert ok.status_code == 200 and ok.json()["status"]["publishAt"] == ahead
    past = "2020-01-01T00:00:00Z"  # a time gone by publishes at once
    update(http, vid, {"privacyStatus": "private", "publishAt": past})
    assert fake.videos[vid].resource["status"]["privacyStatus"] == "public"
    assert "publishAt" not in fake.videos[vid].resource["status"]
    # Published once, it can no longer be scheduled.
    assert reason(update(http, vid, {"privacyStatus": "private", "publishAt": ahead})) == (
        "invalidPublishAt"
    )
    fake.inject_error("videos_update", 503, "backendError")
    assert update(http, vid, {"privacyStatus": "public"}).status_code == 503
    fake.inject_error("videos_update", 403, "forbidden")
    assert reason(update(http, vid, {"privacyStatus": "public"})) == "forbidden"
    http.headers["Authorization"] = "Bearer expired"
    assert update(http, vid, {"privacyStatus": "public"}).status_code == 401


# ------------------------------------------------------------------ end to end

PRESETS = {
    # Gated by the preset.
    "yt": 'name = "yt"\nplatform = "youtube"\ncredential = "chan"\napproval = true\n'
    '[metadata]\nprivacy = "public"\nlicense = "creativeCommon"\ntitle = "{title}"\n',
    "vkp": 'name = "vkp"\nplatform = "vk"\ncredential = "vkc"\n[metadata]\ntitle = "{title}"\n',
    "open": 'name = "open"\nplatform = "youtube"\ncredential = "chan"\n'
    '[metadata]\nprivacy = "public"\n',
}
TEMPLATE = """name = "{name}"
{gate}presets = ["{preset}"]
[match]
keywords = ["{name}"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
stages = ["download", "trim", "upload"]
[processing.trim]
enabled = false
"""
# Template -> (its preset, whether the template itself holds for approval).
TEMPLATES = {"yttalk": ("yt", False), "vktalk": ("vkp", True), "opentalk": ("open", False)}


@dataclass
class World:
    youtube: FakeYouTube
    vk: FakeVK
    ids: dict[str, int]  # title (the template's name, or "yttalk idle") -> recording id

    def video(self, rid: int, cli: Any) -> Any:
        [target] = targets(cli, rid)
        return self.youtube.videos[target["url"].rsplit("/", 1)[-1]]


@pytest.fixture
def world(
    leap_env: dict[str, str], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[World]:
    yt_fake, vk_fake = FakeYouTube(), FakeVK()
    with serve(yt_fake.handler) as yt_base, serve(vk_fake.handler) as vk_base:
        for key, value in {
            "LEAP_SYNC__LOCAL_SETTLE_SECONDS": "0",
            "LEAP_YOUTUBE__API_BASE_URL": f"{yt_base}/youtube/v3",
            "LEAP_YOUTUBE__UPLOAD_BASE_URL": f"{yt_base}/upload/youtube/v3",
            "LEAP_YOUTUBE__TOKEN_URI": f"{yt_base}/token",
            "LEAP_VK__API_BASE_URL": f"{vk_base}/method",
            "LEAP_VK__ID_BASE_URL": vk_base,
        }.items():
            monkeypatch.setenv(key, value)
        # One recording per template, and one more for yttalk that is never processed.
        for name in [*TEMPLATES, "yttalk idle"]:
            media.make_video(tmp_path / "inbox" / f"{name}.mp4", 1)
        au = {
            "client_id": yt_fake.client_id,
            "client_secret": yt_fake.client_secret,
            "refresh_token": yt_fake.refresh_token,
        }
        (tmp_path / "au.json").write_text(json.dumps(au))
        vk_tokens = vk_fake.issue_tokens(device_id="d")
        (tmp_path / "vk.json").write_text(
            json.dumps(vk_tokens | {"device_id": "d", "client_id": vk_fake.client_id})
        )
        steps: list[tuple[str, ...]] = [
            ("init", "--yes"),
            ("credentials", "add", "youtube", "chan", "--from-file", str(tmp_path / "au.json")),
            ("credentials", "add", "vk", "vkc", "--from-file", str(tmp_path / "vk.json")),
        ]
        for name, text in PRESETS.items():
            (tmp_path / f"{name}.p.toml").write_text(text)
            steps.append(("preset", "add", "--file", str(tmp_path / f"{name}.p.toml")))
        for name, (preset, gate) in TEMPLATES.items():
            body = TEMPLATE.format(name=name, preset=preset, gate="approval = true\n" * gate)
            (tmp_path / f"{name}.t.toml").write_text(body)
            steps.append(("template", "add", "--file", str(tmp_path / f"{name}.t.toml")))
        steps += [("source", "add", "local", "in", str(tmp_path / "inbox")), ("sync",)]
        for args in steps:
            res = cli(*args)
            assert res.code == 0, (args, res.stderr)
        ids = {r["title"]: r["id"] for r in cli("--json", "recordings", "list").json()}
        yield World(yt_fake, vk_fake, ids)


def targets(cli: Any, rid: int) -> list[dict[str, Any]]:
    res = cli("--json", "recordings", "show", str(rid))
    assert res.code == 0, res.stderr
    return list(res.json()["targets"])


def status_of(cli: Any, rid: int) -> str:
    return str(cli("--json", "recordings", "show", str(rid)).json()["status"])


def approvals(cli: Any) -> list[dict[str, Any]]:
    entries = cli("--json", "audit", "list").json()
    return [e for e in entries if e["action"] == "recordings.approve"]


def process(cli: Any, *rids: int) -> None:
    for rid in rids:
        res = cli("process", str(rid), "--now")
        assert res.code == 0, res.stderr


def test_the_gate_holds_and_approve_publishes_once(world: World, cli: Any) -> None:
    yt_id, vk_id, open_id = (world.ids[n] for n in ("yttalk", "vktalk", "opentalk"))
    shown = cli("--json", "preset", "show", "yt").json()
    assert shown["approval"] is True and "approval" not in shown["metadata"]
    assert cli("--json", "template", "show", "vktalk").json()["approval"] is True
    assert "approval = true" in cli("template", "export", "vktalk").stdout
    preview = cli("--json", "recordings", "meta", str(yt_id), "--preview").json()[0]
    assert preview["approval"] == "required"
    assert preview["request"]["status"]["privacyStatus"] == "private"  # what the gate sends
    process(cli, yt_id, vk_id, open_id)

    # YouTube: up as private (no publishAt), awaiting; what the metadata asked is kept.
    [yt_target] = targets(cli, yt_id)
    assert (yt_target["status"], yt_target["approval"]) == ("uploaded", "awaiting")
    video = world.video(yt_id, cli)
    assert video.resource["status"]["privacyStatus"] == "private"
    assert "publishAt" not in video.resource["status"]
    assert status_of(cli, yt_id) == "awaiting_approval"
    # VK: nothing sent, the target waits; the stage finished, it did not fail.
    [vk_target] = targets(cli, vk_id)
    assert (vk_target["status"], vk_target["approval"]) == ("pending", "awaiting")
    assert world.vk.video_count == 0 and world.vk.saved_params == []
    assert status_of(cli, vk_id) == "awaiting_approval"
    stages = cli("--json", "status", str(vk_id)).json()["runs"][0]["stages"]
    assert [s["status"] for s in stages] == ["done", "done", "done"]
    # Not gated: published as asked.
    assert status_of(cli, open_id) == "ready"
    assert world.video(open_id, cli).resource["status"]["privacyStatus"] == "public"

    listed = cli("--json", "recordings", "list", "--awaiting-approval").json()
    assert sorted(r["id"] for r in listed) == sorted([yt_id, vk_id])
    assert {r["status"] for r in listed} == {"awaiting_approval"}
    by_template = ("--json", "recordings", "list", "--awaiting-approval", "--template")
    assert [r["id"] for r in cli(*by_template, "yttalk").json()] == [yt_id]  # not the idle one
    assert cli(*by_template, "opentalk").json() == []

    # Bad input: one line, exit 2, nothing acted on.
    for args in (
        (str(yt_id), "--publish-at", "2001-01-01T00:00:00Z"),
        (str(yt_id), "--publish-at", "next tuesday"),
        (str(yt_id), "--awaiting-approval"),
        (),
    ):
        res = cli("approve", *args)
        assert res.code == 2 and "Traceback" not in res.stderr, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1
    assert "--publish-at" in cli("approve", str(yt_id), "--publish-at", "x").stderr
    assert world.youtube.updates == {} and targets(cli, yt_id)[0]["approval"] == "awaiting"

    # The dry-run says what the run then does, from the same decision.
    idle = world.ids["yttalk idle"]  # never processed: no target at all
    every = ",".join(str(i) for i in (yt_id, vk_id, open_id, idle))
    res = cli("--json", "approve", every, "--dry-run")
    assert res.code == 0, res.stderr
    plan = {r["recording_id"]: r for r in res.json()}
    assert plan[yt_id]["would"] == "approve" and plan[yt_id]["reason"] == "youtube: make public"
    assert plan[vk_id]["would"] == "approve" and plan[vk_id]["reason"] == "vk: upload"
    assert plan[open_id] | {"title": None} == {
        "recording_id": open_id,
        "title": None,
        "would": "skip",
        "reason": "nothing awaiting approval",
    }
    assert plan[idle]["would"] == "skip" and plan[idle]["reason"] == "nothing awaiting approval"
    assert "dry run: 2 would approve; 2 skipped (2 nothing awaiting approval)" in res.stderr
    assert world.youtube.updates == {} and approvals(cli) == []

    res = cli("--json", "approve", every)
    assert res.code == 0, res.stderr
    done = {r["recording_id"]: r for r in res.json()}
    for rid, row in done.items():
        assert (row["result"] == "approved") == (plan[rid]["would"] == "approve")
        assert row["reason"] == plan[rid]["reason"]
    assert done[open_id]["result"] == done[idle]["result"] == "skipped"

    # YouTube: public by one videos.update, its other status fields sent again.
    assert world.youtube.updates == {video.id: 1}
    assert video.resource["status"]["privacyStatus"] == "public"
    assert video.resource["status"]["license"] == "creativeCommon"
    [yt_target] = targets(cli, yt_id)
    assert yt_target["approval"] == "approved" and yt_target["approved_at"]
    assert status_of(cli, yt_id) == "ready"
    # VK: approved, and published by the upload run (taken here as leapd would take it).
    assert done[vk_id]["run_id"] is not None and world.vk.video_count == 0
    [vk_target] = targets(cli, vk_id)
    assert vk_target["approval"] == "approved" and vk_target["status"] == "pending"
    process(cli, vk_id)  # resumes the queued upload run
    assert world.vk.video_count == 1 and len(world.vk.saved_params) == 1
    assert targets(cli, vk_id)[0]["status"] == "uploaded" and status_of(cli, vk_id) == "ready"
    assert cli("--json", "recordings", "list", "--awaiting-approval").json() == []

    # Twice is once: nothing is sent or uploaded again.
    res = cli("--json", "approve", f"{yt_id},{vk_id}")
    assert res.code == 0
    assert [r["reason"] for r in res.json()] == ["already approved"] * 2
    process(cli, vk_id)
    cli("process", str(vk_id), "--now", "--stages", "upload")
    assert world.youtube.updates == {video.id: 1}
    assert world.vk.video_count == 1 and len(world.vk.saved_params) == 1

    entries = approvals(cli)
    assert len(entries) == 2
    first = entries[-1]["detail"]
    assert (first["selected"], first["done"], first["skipped"], first["refused"]) == (4, 2, 2, 0)

    # Another user: the same ids are not found, and nothing is touched.
    assert cli("user", "add", "bob").code == 0
    res = cli("--user", "bob", "--json", "approve", str(yt_id), "--dry-run")
    assert res.json()[0]["reason"] == "not found"
    res = cli("--user", "bob", "approve", str(yt_id))
    assert res.code == 3 and f"recording {yt_id} not found" in res.stderr
    assert world.youtube.updates == {video.id: 1}


def test_publish_at_schedules_youtube_and_holds_vk_until_then(world: World, cli: Any) -> None:
    yt_id, vk_id = world.ids["yttalk"], world.ids["vktalk"]
    process(cli, yt_id, vk_id)
    assert cli("user", "set-timezone", "admin", "Europe/Moscow").code == 0
    when = (datetime.now(ZoneInfo("Europe/Moscow")) + timedelta(days=3)).replace(microsecond=0)
    local = when.replace(tzinfo=None).isoformat()  # no offset: the user's timezone
    res = cli("--json", "approve", f"{yt_id},{vk_id}", "--publish-at", local)
    assert res.code == 0, res.stderr
    utc = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [r["reason"] for r in res.json()] == [
        f"youtube: schedule for {utc}",
        f"vk: upload at {utc}",
    ]
    status = world.video(yt_id, cli).resource["status"]
    assert (status["privacyStatus"], status["publishAt"]) == ("private", utc)
    assert targets(cli, yt_id)[0]["publish_at"] == utc
    # VK has no scheduled publishing: the upload run waits for the time, sending nothing.
    process(cli, vk_id)
    assert world.vk.video_count == 0 and world.vk.saved_params == []
    [vk_target] = targets(cli, vk_id)
    assert (vk_target["approval"], vk_target["publish_at"]) == ("approved", utc)
    runtime = Runtime.from_settings(load_settings())
    try:
        with open_context(runtime, Scope.system_scope()) as ctx:
            [target] = ctx.repos.targets.list(recording_id=vk_id)
            run = ctx.repos.runs.latest_for(vk_id)
            assert run is not None and run.status == "active"
            upload = ctx.repos.stages.find(run_id=run.id, name="upload")
            assert upload is not None and upload.status == "queued"
            assert upload.not_before is not None and upload.not_before > utcnow() + timedelta(
                days=2
            )
            # The time comes.
            target.publish_at = utcnow() - timedelta(seconds=1)
            upload.not_before = utcnow()
    finally:
        runtime.dispose()
    process(cli, vk_id)
    assert world.vk.video_count == 1 and len(world.vk.saved_params) == 1
    assert status_of(cli, vk_id) == "ready"


def test_an_approve_cut_short_is_finished_with_the_same_body(world: World, cli: Any) -> None:
    rid = world.ids["yttalk"]
    process(cli, rid)
    vid = targets(cli, rid)[0]["url"].rsplit("/", 1)[-1]
    first = (utcnow() + timedelta(days=5)).replace(microsecond=0)
    runtime = Runtime.from_settings(load_settings())
    try:
        owner = cli("--json", "whoami").json()["id"]
        scope = Scope.for_user(owner, is_admin=True)
        with open_context(runtime, scope) as ctx:
            plan = approving.plan(ctx, rid, publish_at=first, now=utcnow())
            approving.begin(ctx, plan)
        with make_http_client() as http:
            assert approving.send(runtime, scope, plan, http).failed == {}
        # ... and the process dies here: YouTube has the update, the database does not.
    finally:
        runtime.dispose()
    scheduled = dict(world.youtube.videos[vid].resource["status"])
    assert targets(cli, rid)[0]["approval"] == "awaiting"
    later = (utcnow() + timedelta(days=9)).strftime("%Y-%m-%dT%H:%M:%SZ")
    res = cli("--json", "approve", str(rid), "--publish-at", later)
    assert res.code == 0, res.stderr
    assert "finishing an earlier approve" in res.json()[0]["reason"]
    # The same body again: the video is as the first approve left it, not moved to `later`.
    assert world.youtube.updates[vid] == 2
    assert world.youtube.videos[vid].resource["status"] == scheduled
    assert targets(cli, rid)[0]["approval"] == "approved"


def test_a_dead_credential_fails_its_recording_only(world: World, cli: Any) -> None:
    yt_id, vk_id = world.ids["yttalk"], world.ids["vktalk"]
    process(cli, yt_id, vk_id)
    vid = targets(cli, yt_id)[0]["url"].rsplit("/", 1)[-1]
    # A 5xx outage outlasting the client's retries: the outcome is unknown, nothing marked.
    world.youtube.inject("videos_update", Fault(503, retry_after=0), n=8)
    res = cli("approve", str(yt_id))
    assert res.code == 1 and "retries exhausted" in res.stderr
    assert targets(cli, yt_id)[0]["approval"] == "awaiting"
    # The Google grant is revoked: the YouTube recording fails (5), the VK one is approved.
    world.youtube.invalid_grant = True
    world.youtube.expire_all_tokens()
    res = cli("--json", "approve", f"{yt_id},{vk_id}")
    assert res.code == 8, res.stderr
    rows = {r["recording_id"]: r for r in res.json()}
    assert rows[yt_id]["result"] == "failed" and rows[yt_id]["exit_code"] == 5
    assert "re-authenticate chan" in rows[yt_id]["error"]
    assert rows[vk_id]["result"] == "approved"
    assert cli("--json", "credentials", "list").json()[0]["status"] == "needs_reauth"
    assert targets(cli, yt_id)[0]["approval"] == "awaiting"
    # Known dead now: refused without asking Google again.
    tokens = world.youtube.requests["token"]
    res = cli("approve", str(yt_id))
    assert res.code == 5 and "re-authenticate chan" in res.stderr
    assert world.youtube.requests["token"] == tokens
    assert world.youtube.updates.get(vid, 0) == 0
