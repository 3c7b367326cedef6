"""Zoom cloud cleanup (docs/zoom-cleanup.md): the pure eligibility rule, the client's trash
call against the fake Zoom on loopback, `leap zoom trash` end to end on recordings synced from
the fake and published by real pipeline runs, and leapd's pass run twice at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from huey import MemoryHuey

from leap.cli._filters import parse_span
from leap.config import load_settings
from leap.context import Runtime, open_context
from leap.daemon.scheduler import build_scheduler
from leap.db import models as m
from leap.db.scope import Scope
from leap.errors import ConfigError, UsageError
from leap.providers.http import CredentialRejected, RetryPolicy, make_http_client
from leap.providers.zoom import S2SAuth, ZoomClient
from leap.services import zoom_trash
from leap.specs.template import parse_template, to_toml
from leap.specs.zoom_trash import (
    TargetFact,
    TrashFacts,
    TrashRule,
    check_after_days,
    refusal,
)
from leap.tasks import ZOOM_CLEANUP, TaskQueue
from tests.fakes.server import serve
from tests.fakes.zoom import FakeZoom
from tests.fakes.zoom_data import FakeFile, FakeMeeting

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SIZE = 40_000

# ---------------------------------------------------------------- the rule (pure)

ZOOM_FILE = {"id": "f1", "file_type": "MP4", "file_size": SIZE}
FACTS = TrashFacts(
    source_kind="zoom",
    trashed_at=None,
    start_time=NOW - timedelta(days=60),
    files=[ZOOM_FILE, {"id": "cc", "file_type": "CC"}],
    download={"file": {"id": "f1", "recording_type": "x", "file_type": "MP4"}, "size": SIZE},
    mapped=True,
    targets=[TargetFact("yt", "uploaded", uploaded_at=NOW - timedelta(days=10))],
    after_days=7,
)
RULE = TrashRule(now=NOW)


@pytest.mark.parametrize(
    ("change", "rule", "reason"),
    [
        ({}, RULE, None),
        ({"source_kind": "local"}, RULE, "not from Zoom"),
        # The first reason that applies: a local recording is not from Zoom, whatever else.
        ({"source_kind": "local", "download": None, "mapped": False}, RULE, "not from Zoom"),
        ({"trashed_at": NOW}, RULE, "already in Zoom's trash"),
        ({"trashed_at": NOW, "download": None}, RULE, "already in Zoom's trash"),
        ({}, replace(RULE, older_than=timedelta(days=30), older_than_text="30d"), None),
        (
            {"start_time": NOW - timedelta(days=29)},
            replace(RULE, older_than=timedelta(days=30), older_than_text="30d"),
            "newer than 30d",
        ),
        (
            {"start_time": NOW - timedelta(days=30)},  # exactly 30 days: old enough
            replace(RULE, older_than=timedelta(days=30), older_than_text="30d"),
            None,
        ),
        ({"start_time": NOW}, replace(RULE, older_than=timedelta(hours=12)), "newer than 12:00:00"),
        ({"running": True}, RULE, "being processed"),
        ({"download": None}, RULE, "download not verified: never downloaded"),
        (
            {"download": {"size": SIZE}},
            RULE,
            "download not verified: the download names no Zoom file",
        ),
        (
            {"download": {"file": "f1", "size": SIZE}},
            RULE,
            "download not verified: the download names no Zoom file",
        ),
        (
            {"download": {"file": {"id": "f1"}}},
            RULE,
            "download not verified: the download recorded no size",
        ),
        (
            {"download": {"file": {"id": "f1"}, "size": True}},
            RULE,
            "download not verified: the download recorded no size",
        ),
        (
            {"download": {"file": {"id": "f1"}, "size": -1}},
            RULE,
            "download not verified: the download recorded no size",
        ),
        (
            {"files": [{"id": "other", "file_size": SIZE}]},
            RULE,
            "download not verified: Zoom no longer lists file f1",
        ),
        ({"files": [{"id": "f1"}]}, RULE, "download not verified: Zoom gave no size for file f1"),
        (
            {"files": [{"id": "f1", "file_size": "40000"}]},
            RULE,
            "download not verified: Zoom gave no size for file f1",
        ),
        ({"files": [{"id": "f1", "size": SIZE}]}, RULE, None),  # `size` when no file_size
        (
            {
                "files": [{"id": "f1", "file_size": 0}],
                "download": {"file": {"id": "f1"}, "size": 0},
            },
            RULE,
            "download not verified: Zoom lists file f1 as empty",
        ),
        (
            {"files": [{"id": "f1", "file_size": SIZE + 1}]},
            RULE,
            f"download not verified: downloaded {SIZE} bytes, Zoom lists {SIZE + 1}",
        ),
        ({"files": ["junk", ZOOM_FILE]}, RULE, None),
        ({"mapped": False}, RULE, "not published: no template"),
        ({"targets": []}, RULE, "not published: its template names no presets"),
        (
            {"targets": [TargetFact("yt", "uploaded", required=False)]},
            RULE,
            "not published: its template names no presets",
        ),
        ({"targets": [TargetFact("yt", None)]}, RULE, "not published: yt pending"),
        (
            {"targets": [TargetFact("yt", "uploaded"), TargetFact("vk", "failed")]},
            RULE,
            "not published: vk failed",
        ),
        (
            {"targets": [TargetFact("yt", "deferred"), TargetFact("archive", None)]},
            RULE,
            "not published: yt deferred, archive pending",
        ),
        (
            {"targets": [TargetFact("yt", "uploaded", approval="awaiting")]},
            RULE,
            "not published: yt awaiting approval",
        ),
        (
            {"targets": [TargetFact("yt", "pending", approval="awaiting")]},
            RULE,
            "not published: yt awaiting approval",
        ),
        (
            {"targets": [TargetFact("yt", "uploaded", approval="approved")]},
            RULE,
            None,
        ),
        (
            {
                "targets": [
                    TargetFact("yt", "uploaded"),
                    TargetFact("old", "pending", approval="awaiting", required=False),
                ]
            },
            RULE,
            "not published: old awaiting approval",
        ),
        (
            {
                "targets": [
                    TargetFact("yt", "uploaded"),
                    TargetFact("old", "failed", required=False),
                ]
            },
            RULE,
            None,
        ),
    ],
)
def test_refusal(change: dict[str, Any], rule: TrashRule, reason: str | None) -> None:
    assert refusal(replace(FACTS, **change), rule) == reason


AUTO = TrashRule(now=NOW, auto=True)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({}, None),
        ({"after_days": None}, "its template sets no zoom_trash_after_days"),
        ({"after_days": 11}, "published less than 11d ago"),
        ({"after_days": 10}, None),  # exactly ten days after the upload
        ({"targets": [TargetFact("yt", "uploaded")]}, "published less than 7d ago"),
        (
            {
                "targets": [
                    TargetFact("yt", "uploaded", uploaded_at=NOW - timedelta(days=30)),
                    TargetFact("vk", "uploaded", uploaded_at=NOW - timedelta(days=2)),
                ]
            },
            "published less than 7d ago",  # the newest upload counts
        ),
        (
            {"last_attempt": {"at": "2026-12-02T00:00:00Z", "outcome": "refused"}},
            "Zoom refused it less than a day ago",
        ),
        (
            {"last_attempt": {"at": "2026-12-01T13:00:00Z", "outcome": "error"}},
            "the last call failed less than a day ago",
        ),
        ({"last_attempt": {"at": "2026-12-01T11:00:00Z", "outcome": "refused"}}, None),
        ({"last_attempt": {"at": "2026-12-02T11:00:00Z", "outcome": "trashed"}}, None),
        ({"last_attempt": {"at": "yesterday", "outcome": "refused"}}, None),
        ({"last_attempt": {"at": "2026-12-02T11:00:00", "outcome": "refused"}}, None),
        ({"last_attempt": {"outcome": "error"}}, None),
    ],
)
def test_refusal_for_leapds_pass(change: dict[str, Any], reason: str | None) -> None:
    assert refusal(replace(FACTS, **change), AUTO) == reason
    # A command (not auto) never asks for the template's days nor backs off.
    assert refusal(replace(FACTS, **change), RULE) is None


@pytest.mark.parametrize("value", [1, 30, 3650])
def test_after_days_accepted(value: int) -> None:
    assert check_after_days(value) == value


@pytest.mark.parametrize("value", [0, -1, 3651, True, "30", 30.0, None])
def test_after_days_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        check_after_days(value)


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("30d", timedelta(days=30)),
        (" 2w ", timedelta(weeks=2)),
        ("12h", timedelta(hours=12)),
        ("007d", timedelta(days=7)),
        ("36500d", timedelta(days=36500)),
    ],
)
def test_older_than_spans(text: str, span: timedelta) -> None:
    assert parse_span(text, option="--older-than") == (span, text.strip())


@pytest.mark.parametrize("text", ["30x", "-5d", "", " ", "0d", "30", "d", "1.5d", "36501d", "30D"])
def test_older_than_garbage(text: str) -> None:
    with pytest.raises(UsageError, match="--older-than"):
        parse_span(text, option="--older-than")


def test_template_key() -> None:
    text = 'name = "t"\nzoom_trash_after_days = 30\n[match]\nkeywords = ["x"]\n'
    spec = parse_template(text, origin="t.toml")
    assert spec.zoom_trash_after_days == 30
    assert parse_template(to_toml(spec), origin="again") == spec
    # Written after a [table], TOML puts it in that table: lifted back, like presets.
    late = 'name = "t"\n[match]\nkeywords = ["x"]\nzoom_trash_after_days = 30\n'
    assert parse_template(late, origin="t.toml").zoom_trash_after_days == 30
    for bad, fragment in (
        ("0", "0 is not a number of days from 1 to 3650"),
        ("3651", "3651 is not a number"),
        ('"30"', "expected an integer"),
        ("30.5", "expected an integer"),
        ("true", "expected an integer"),
    ):
        with pytest.raises(UsageError, match="zoom_trash_after_days") as info:
            parse_template(text.replace("= 30", f"= {bad}"), origin="t.toml")
        assert fragment in info.value.message


# ---------------------------------------------------------------- the client (loopback HTTP)

HOST = "teacher@uni.example"


def meeting(fake: FakeZoom, n: int, start: datetime, host: str = HOST) -> FakeMeeting:
    host_id = fake.add_user(host)["id"]
    key = f"file-{host.split('@')[0]}-{n}"
    video = FakeFile(
        key,
        "MP4",
        "MP4",
        "shared_screen_with_speaker_view",
        "completed",
        0,
        start,
        start + timedelta(hours=1),
    )
    # A uuid with "/" and "+": the path must carry it double-encoded.
    uuid = f"/{host[0]}{n}+uu//id=="
    item = FakeMeeting(uuid, 80000 + n, f"Lecture {n}", host_id, start, 60, [video])
    fake.add_meeting(item)
    fake.set_file_content(key, bytes([n % 256]) * SIZE)
    return item


@dataclass
class Loop:
    fake: FakeZoom
    base: str
    client: ZoomClient
    sleeps: list[float]


@pytest.fixture
def loop() -> Iterator[Loop]:
    fake = FakeZoom(user_email=HOST)
    sleeps: list[float] = []
    with serve(fake.handler) as base, make_http_client() as http:
        auth = S2SAuth(http, base, fake.account_id, fake.client_id, fake.client_secret)
        policy = RetryPolicy(max_attempts=3, budget_s=10)
        yield Loop(
            fake, base, ZoomClient(http, f"{base}/v2", auth, policy, sleep=sleeps.append), sleeps
        )


def listed(loop: Loop, *, trash: bool = False) -> set[str]:
    with make_http_client() as http:
        token = loop.client.auth.token()
        res = http.get(
            f"{loop.base}/v2/users/me/recordings",
            params={"from": "2026-11-01", "to": "2026-11-30", "trash": str(trash).lower()},
            headers={"Authorization": f"Bearer {token}"},
        )
    return {m["uuid"] for m in res.json()["meetings"]}


def test_trash_moves_a_meeting_to_zooms_trash(loop: Loop) -> None:
    one = meeting(loop.fake, 1, datetime(2026, 11, 3, tzinfo=UTC))
    two = meeting(loop.fake, 2, datetime(2026, 11, 4, tzinfo=UTC))
    answer = loop.client.trash_meeting_recordings(one.uuid)
    assert (answer.outcome, answer.status) == ("trashed", 204)
    assert listed(loop) == {two.uuid} and listed(loop, trash=True) == {one.uuid}
    # Trashed already (or never there): 3301, which counts as done.
    again = loop.client.trash_meeting_recordings(one.uuid)
    assert (again.outcome, again.status) == ("gone", 404) and "3301" not in again.outcome
    assert loop.client.trash_meeting_recordings("no-such-uuid==").outcome == "gone"
    assert loop.fake.trash_calls[one.uuid] == 2
    assert {action for _, action in loop.fake.trash_actions} == {"trash"}  # never "delete"
    assert loop.sleeps == []


@pytest.mark.parametrize(("status", "code"), [(403, 200), (400, 3303), (404, 1001)])
def test_a_refusal_is_an_answer(loop: Loop, status: int, code: int) -> None:
    one = meeting(loop.fake, 1, datetime(2026, 11, 3, tzinfo=UTC))
    loop.fake.refuse_trash(one.uuid, status=status, code=code, message="No permission.")
    answer = loop.client.trash_meeting_recordings(one.uuid)
    assert (answer.outcome, answer.status) == ("refused", status)
    assert "No permission" in answer.detail
    assert loop.fake.trash_calls[one.uuid] == 1 and loop.sleeps == []  # not retried
    assert listed(loop) == {one.uuid}


def test_a_missing_scope_is_refused(loop: Loop) -> None:
    one = meeting(loop.fake, 1, datetime(2026, 11, 3, tzinfo=UTC))
    loop.fake.refuse_trash(
        one.uuid, status=400, code=4711, message="Invalid access token, does not contain scopes"
    )
    answer = loop.client.trash_meeting_recordings(one.uuid)
    assert answer.outcome == "refused" and "scope" in answer.detail


def test_failures_are_retried_then_reported(loop: Loop) -> None:
    one = meeting(loop.fake, 1, datetime(2026, 11, 3, tzinfo=UTC))
    loop.fake.inject_5xx("delete_recordings", 1)
    loop.fake.inject_429("delete_recordings", 1, retry_after=2)
    assert loop.client.trash_meeting_recordings(one.uuid).outcome == "trashed"
    assert loop.fake.trash_calls[one.uuid] == 3 and 2.0 in loop.sleeps
    two = meeting(loop.fake, 2, datetime(2026, 11, 4, tzinfo=UTC))
    loop.fake.fail_trash(two.uuid, status=502)
    answer = loop.client.trash_meeting_recordings(two.uuid)
    assert (answer.outcome, answer.status) == (
        "error",
        502,
    ) and "retries exhausted" in answer.detail
    assert loop.fake.trash_calls[two.uuid] == 3  # the policy's three attempts
    loop.fake.inject_drop("delete_recordings", 3)
    three = meeting(loop.fake, 3, datetime(2026, 11, 5, tzinfo=UTC))
    dropped = loop.client.trash_meeting_recordings(three.uuid)
    assert (dropped.outcome, dropped.status) == ("error", None)


def test_a_dead_credential_raises(loop: Loop) -> None:
    one = meeting(loop.fake, 1, datetime(2026, 11, 3, tzinfo=UTC))
    loop.fake.refuse_trash(one.uuid, status=401, code=124, message="Invalid access token.")
    with pytest.raises(CredentialRejected):
        loop.client.trash_meeting_recordings(one.uuid)
    assert loop.fake.trash_calls[one.uuid] == 2  # once more with a fresh token


# ---------------------------------------------------------------- `leap zoom trash`, end to end

TEMPLATE = """name = "lectures"
{extra}presets = ["archive"]
[match]
regex = [".+"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
stages = ["download", "upload"]
"""
PRESET = 'name = "archive"\nplatform = "local"\n'


@pytest.fixture
def zoom() -> Iterator[tuple[FakeZoom, str]]:
    fake = FakeZoom(user_email=HOST)
    with serve(fake.handler) as base:
        yield fake, base


@pytest.fixture
def env(
    leap_env: dict[str, str],
    zoom: tuple[FakeZoom, str],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    _, base = zoom
    extra = {
        "LEAP_ZOOM__API_BASE_URL": f"{base}/v2",
        "LEAP_ZOOM__OAUTH_BASE_URL": base,
        "ZOOM_SECRET": "zoom-client-secret",
        # A failing call is reported at once: no test waits out a back-off.
        "LEAP_SYNC__RETRY_BUDGET_SECONDS": "0",
    }
    for k, v in extra.items():
        monkeypatch.setenv(k, v)
    return {**leap_env, **extra}


def ok(cli: Any, *args: str) -> Any:
    res = cli(*args)
    assert res.code == 0, (args, res.stderr)
    return res


def install(
    cli: Any, tmp_path: Path, *, user: str | None = None, host: str = HOST, extra: str = ""
) -> list[str]:
    """A Zoom source, a local-folder preset and a download-and-publish template, as `user`."""
    who = ["--user", user] if user else []
    name = user or "main"
    (tmp_path / f"{name}-t.toml").write_text(TEMPLATE.format(extra=extra))
    (tmp_path / f"{name}-p.toml").write_text(PRESET)
    for args in (
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
        ("source", "add", "zoom", "uni", "--credential", "z", "--zoom-user", host),
        ("preset", "add", "--file", str(tmp_path / f"{name}-p.toml")),
        ("template", "add", "--file", str(tmp_path / f"{name}-t.toml")),
    ):
        ok(cli, *who, *args)
    return who


def ids_by_uuid(cli: Any, who: list[str]) -> dict[str, int]:
    ok(cli, *who, "sync", "--from", "120d")
    rows = ok(cli, *who, "--json", "recordings", "list").json()
    return {r["external_id"]: r["id"] for r in rows}


def recording(runtime: Runtime, rid: int) -> m.Recording:
    with open_context(runtime, Scope.system_scope()) as ctx:
        return ctx.repos.recordings.require(rid)


def days_ago(n: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=n)


@dataclass
class Mixed:
    fake: FakeZoom
    ids: dict[str, int]  # label -> recording id
    uuids: dict[str, str]  # label -> meeting uuid


@pytest.fixture
def mixed(
    env: dict[str, str],
    zoom: tuple[FakeZoom, str],
    cli: Any,
    tmp_path: Path,
    runtime: Runtime,
) -> Mixed:
    """One install (its only user) with recordings that each stop the trash for one reason,
    and two that may go: synced from the fake Zoom and published by real pipeline runs."""
    fake, _ = zoom
    ok(cli, "init", "--yes")
    install(cli, tmp_path)
    labels = ["a", "b", "unprocessed", "resized", "unpublished", "awaiting", "recent"]
    ages = {"recent": 5}
    made = {
        label: meeting(fake, n, days_ago(ages.get(label, 60) + n / 24))
        for n, label in enumerate(labels, start=1)
    }
    uuids = {label: mt.uuid for label, mt in made.items()}
    by_uuid = ids_by_uuid(cli, [])
    ids = {label: by_uuid[uuid] for label, uuid in uuids.items()}
    for label in ("a", "b", "resized", "awaiting", "recent"):
        ok(cli, "process", str(ids[label]), "--now")
    ok(cli, "process", str(ids["unpublished"]), "--now", "--stages", "download")
    # Zoom now lists the file with another size (re-encoded, say): the download proves nothing.
    made["resized"].files[0].file_size = SIZE + 7
    ok(cli, "sync", "--from", "120d")
    with open_context(runtime, Scope.system_scope()) as ctx:
        target = ctx.repos.targets.find(recording_id=ids["awaiting"])
        assert target is not None and target.status == "uploaded"
        target.approval = "awaiting"  # held by the approval gate
        # A recording from a local folder, published like the others.
        owner = ctx.repos.recordings.require(ids["a"]).user_id
        with ctx.as_scope(Scope.for_user(owner)):
            src = ctx.repos.sources.add(
                m.InputSource(name="inbox", kind="local", config={"path": "/nowhere"})
            )
            local = ctx.repos.recordings.add(
                m.Recording(
                    source_id=src.id,
                    external_id="talk.mp4",
                    title="Local talk",
                    start_time=days_ago(90),
                    template_id=ctx.repos.recordings.require(ids["a"]).template_id,
                )
            )
            ids["local"] = local.id
    return Mixed(fake, ids, uuids)


EXPECTED_PLAN = {
    "a": ("trash", None),
    "b": ("trash", None),
    "unprocessed": ("skip", "download not verified: never downloaded"),
    "resized": ("skip", f"download not verified: downloaded {SIZE} bytes, Zoom lists {SIZE + 7}"),
    "unpublished": ("skip", "not published: archive pending"),
    "awaiting": ("skip", "not published: archive awaiting approval"),
    "recent": ("skip", "newer than 30d"),
    "local": ("skip", "not from Zoom"),
}


def test_the_plan_is_exactly_what_the_run_does(mixed: Mixed, cli: Any, runtime: Runtime) -> None:
    label_of = {rid: label for label, rid in mixed.ids.items()}
    everything = ",".join(str(i) for i in sorted(mixed.ids.values()))
    res = ok(cli, "--json", "zoom", "trash", everything, "--older-than", "30d", "--dry-run")
    plan = {label_of[r["recording_id"]]: (r["would"], r["reason"]) for r in res.json()}
    assert plan == EXPECTED_PLAN
    assert "dry run: 2 would trash; 6 skipped" in res.stderr
    assert not mixed.fake.trash_calls
    # The table for people, too.
    res = ok(cli, "zoom", "trash", everything, "--older-than", "30d", "--dry-run")
    assert "leap zoom trash --dry-run" in res.stdout and "not from Zoom" in res.stdout
    # Without --yes: the plan, then a usage error; Zoom is not called.
    res = cli("zoom", "trash", everything, "--older-than", "30d")
    assert res.code == 2
    assert res.stderr.strip().splitlines()[-1] == (
        "error: nothing was trashed: add --yes to move 2 recording(s) to Zoom's trash"
    )
    assert not mixed.fake.trash_calls
    # The real run: a recording named twice is still one call.
    res = cli(
        "--json", "zoom", "trash", everything, str(mixed.ids["a"]), "--older-than", "30d", "--yes"
    )
    assert res.code == 0, res.stderr
    outcomes = {label_of[r["recording_id"]]: (r["outcome"], r["detail"]) for r in res.json()}
    assert {k for k, (o, _) in outcomes.items() if o == "trashed"} == {
        k for k, (would, _) in EXPECTED_PLAN.items() if would == "trash"
    }
    assert {k: d for k, (o, d) in outcomes.items() if o == "skipped"} == {
        k: r for k, (would, r) in EXPECTED_PLAN.items() if would == "skip"
    }
    assert dict(mixed.fake.trash_calls) == {mixed.uuids["a"]: 1, mixed.uuids["b"]: 1}
    assert set(mixed.fake.trashed) == {mixed.uuids["a"], mixed.uuids["b"]}
    for label in ("a", "b"):
        rec = recording(runtime, mixed.ids[label])
        assert rec.zoom_trashed_at is not None and rec.status == "ready"
        [entry] = rec.zoom_trash_log
        assert (entry["outcome"], entry["status"]) == ("trashed", 204) and entry["at"]
    shown = ok(cli, "--json", "recordings", "show", str(mixed.ids["a"])).json()
    assert shown["zoom_trashed_at"].endswith("Z")
    assert [e["outcome"] for e in shown["zoom_trash_log"]] == ["trashed"]
    untouched = recording(runtime, mixed.ids["awaiting"])
    assert untouched.zoom_trashed_at is None and untouched.zoom_trash_log == []
    # One audit entry for the run.
    [entry] = [e for e in ok(cli, "--json", "audit", "list").json() if e["action"] == "zoom.trash"]
    assert entry["actor"] == "admin"
    assert entry["subject"].endswith("older-than=30d")
    assert entry["detail"] == {
        "selected": 8,
        "trashed": 2,
        "gone": 0,
        "refused": 0,
        "errors": 0,
        "skipped": 6,
        "not_found": 0,
        "result": "ok",
    }
    # Again: both are in Zoom's trash already; Zoom is not asked twice.
    res = ok(cli, "--json", "zoom", "trash", everything, "--older-than", "30d", "--yes")
    again = {label_of[r["recording_id"]]: r["detail"] for r in res.json()}
    assert again["a"] == again["b"] == "already in Zoom's trash"
    assert dict(mixed.fake.trash_calls) == {mixed.uuids["a"]: 1, mixed.uuids["b"]: 1}


def test_a_refusal_is_a_warning_and_exit_8(mixed: Mixed, cli: Any, runtime: Runtime) -> None:
    a, b = mixed.ids["a"], mixed.ids["b"]
    mixed.fake.refuse_trash(mixed.uuids["a"], status=403, code=200, message="No permission.")
    res = cli("zoom", "trash", f"{a},{b}", "--yes")
    assert res.code == 8, res.stderr
    assert "leap zoom trash: plan" in res.stdout and "plan: 2 would trash\n" in res.stderr
    assert f"warning: recording {a}: Zoom refused:" in res.stderr and "No permission" in res.stderr
    assert res.stderr.count("No permission") == 1  # said once, not again by the log
    assert f"recording {b}: moved to Zoom's trash" in res.stderr
    assert "Traceback" not in res.stderr
    rec = recording(runtime, a)
    assert rec.zoom_trashed_at is None and rec.status == "ready" and rec.error is None
    [entry] = rec.zoom_trash_log
    assert (entry["outcome"], entry["status"]) == ("refused", 403)
    assert recording(runtime, b).zoom_trashed_at is not None
    audit = [e for e in ok(cli, "--json", "audit", "list").json() if e["action"] == "zoom.trash"]
    assert audit[0]["detail"]["refused"] == 1 and audit[0]["detail"]["result"] == "partial"


def test_gone_and_failed(mixed: Mixed, cli: Any, runtime: Runtime) -> None:
    a, b = mixed.ids["a"], mixed.ids["b"]
    mixed.fake.trash_meeting(mixed.uuids["a"])  # someone trashed it in Zoom's web portal
    mixed.fake.fail_trash(mixed.uuids["b"], status=503)
    res = cli("--json", "zoom", "trash", f"{a},{b}", "--yes")
    assert res.code == 8, res.stderr
    rows = {r["recording_id"]: r for r in res.json()}
    assert rows[a]["outcome"] == "gone" and "does not exist" in rows[a]["detail"]
    assert rows[b]["outcome"] == "error" and "503" in rows[b]["detail"]
    gone = recording(runtime, a)
    assert gone.zoom_trashed_at is not None
    assert [(e["outcome"], e["status"]) for e in gone.zoom_trash_log] == [("gone", 404)]
    failed = recording(runtime, b)
    assert failed.zoom_trashed_at is None
    assert [(e["outcome"], e["status"]) for e in failed.zoom_trash_log] == [("error", 503)]


def test_a_dead_credential_refuses_without_more_calls(
    mixed: Mixed, cli: Any, runtime: Runtime
) -> None:
    a, b = mixed.ids["a"], mixed.ids["b"]
    mixed.fake.client_secret = "rotated-by-admin"
    mixed.fake.expire_all_tokens()
    res = cli("--json", "zoom", "trash", f"{a},{b}", "--yes")
    assert res.code == 8, res.stderr
    assert [r["outcome"] for r in res.json()] == ["refused", "refused"]
    assert all("re-authenticate z" in r["detail"] for r in res.json())
    assert "rotated-by-admin" not in res.stdout + res.stderr
    # One call, refused for the token; Zoom refused a fresh one: no call for the second.
    assert dict(mixed.fake.trash_calls) == {mixed.uuids["a"]: 1} and not mixed.fake.trashed
    creds = ok(cli, "--json", "credentials", "list").json()
    assert creds[0]["status"] == "needs_reauth"


def test_another_users_recordings_are_never_found(
    env: dict[str, str], zoom: tuple[FakeZoom, str], cli: Any, tmp_path: Path, runtime: Runtime
) -> None:
    fake, _ = zoom
    ok(cli, "init", "--yes")
    ok(cli, "user", "add", "bob")
    mine = install(cli, tmp_path, user="admin")
    bobs = install(cli, tmp_path, user="bob", host="bob@uni.example")
    a = meeting(fake, 1, days_ago(60))
    b = meeting(fake, 2, days_ago(61), host="bob@uni.example")
    alice_id = ids_by_uuid(cli, mine)[a.uuid]
    bob_id = ids_by_uuid(cli, bobs)[b.uuid]
    for who, rid in ((mine, alice_id), (bobs, bob_id)):
        ok(cli, *who, "process", str(rid), "--now")
    # Plan and run: bob's id is not found for the admin, whichever way it is named.
    res = cli(*mine, "zoom", "trash", str(bob_id), "--yes")
    assert res.code == 3 and res.stderr.strip() == f"error: recording {bob_id} not found"
    ids = tmp_path / "ids"
    ids.write_text(f"{bob_id}\n")
    res = cli(*mine, "zoom", "trash", "--ids-from", str(ids), "--dry-run")
    assert res.code == 3 and "not found" in res.stderr
    res = cli(*mine, "zoom", "trash", "--search", "Lecture 2", "--yes")
    assert res.code == 0 and "no recordings match the filters; nothing to do" in res.stderr
    assert not fake.trash_calls
    ids.write_text(f"{bob_id}\n{alice_id}\n")
    res = cli(*mine, "--json", "zoom", "trash", "--ids-from", str(ids), "--dry-run")
    assert [(r["recording_id"], r["would"], r["reason"]) for r in res.json()] == [
        (bob_id, "skip", "not found"),
        (alice_id, "trash", None),
    ]
    res = cli(*mine, "--json", "zoom", "trash", "--ids-from", str(ids), "--yes")
    assert res.code == 8, res.stderr
    assert [(r["recording_id"], r["outcome"]) for r in res.json()] == [
        (bob_id, "not found"),
        (alice_id, "trashed"),
    ]
    assert dict(fake.trash_calls) == {a.uuid: 1}
    assert recording(runtime, bob_id).zoom_trashed_at is None
    # Bob's own run trashes his; the admin's audit entry is not his.
    res = cli(*bobs, "--json", "zoom", "trash", "--template", "lectures", "--yes")
    assert res.code == 0 and res.json()[0]["outcome"] == "trashed"
    assert dict(fake.trash_calls) == {a.uuid: 1, b.uuid: 1}
    [entry] = [
        e for e in ok(cli, *bobs, "--json", "audit", "list").json() if e["action"] == "zoom.trash"
    ]
    assert (entry["actor"], entry["subject"]) == ("bob", "template=lectures")


def test_one_meeting_is_one_call(
    env: dict[str, str], zoom: tuple[FakeZoom, str], cli: Any, tmp_path: Path, runtime: Runtime
) -> None:
    """Two sources over one Zoom account: one meeting, two recordings, one trash call."""
    fake, _ = zoom
    ok(cli, "init", "--yes")
    install(cli, tmp_path)
    ok(cli, "source", "add", "zoom", "uni2", "--credential", "z", "--zoom-user", HOST)
    one = meeting(fake, 1, days_ago(60))
    ok(cli, "sync", "--from", "120d")
    ids = [r["id"] for r in ok(cli, "--json", "recordings", "list").json()]
    assert len(ids) == 2
    ok(cli, "process", "--template", "lectures", "--now")
    res = ok(cli, "--json", "zoom", "trash", f"{ids[1]},{ids[0]}", "--yes")
    rows = res.json()
    assert [r["outcome"] for r in rows] == ["trashed", "trashed"]
    assert rows[1]["detail"] == f"same Zoom meeting as recording {ids[1]}"
    assert dict(fake.trash_calls) == {one.uuid: 1}
    assert all(recording(runtime, rid).zoom_trashed_at is not None for rid in ids)


@pytest.fixture
def synced(env: dict[str, str], zoom: tuple[FakeZoom, str], cli: Any, tmp_path: Path) -> int:
    """An install with one synced (unprocessed) Zoom recording: its id."""
    fake, _ = zoom
    ok(cli, "init", "--yes")
    install(cli, tmp_path)
    one = meeting(fake, 1, days_ago(60))
    return ids_by_uuid(cli, [])[one.uuid]


BAD_INPUT = [
    (("1", "--template", "lectures"), 2, "ids or FILTERS, not both"),
    (("1", "--ids-from", "/dev/null"), 2, "ids or --ids-from, not both"),
    (("5-",), 2, "'5-' is not a range"),
    (("9-2",), 2, "runs backwards"),
    (("x",), 2, "'x' is not a recording id"),
    ((), 2, "give recording ids or at least one filter"),
    (("1", "--older-than", "30x"), 2, "--older-than: '30x' is not a span"),
    (("1", "--older-than", "-5d"), 2, "--older-than: '-5d' is not a span"),
    (("1", "--older-than", ""), 2, "--older-than: '' is not a span"),
    (("--status", "nope"), 2, "unknown status 'nope'"),
    (("--from", "yesterday"), 2, "--from: 'yesterday' is not a date"),
    # An unknown name is "not found", as on every FILTERS command (docs/cli.md).
    (("--template", "nope"), 3, "template 'nope' not found"),
    (("--source", "nope"), 3, "source 'nope' not found"),
]


def test_bad_input_acts_on_nothing(synced: int, zoom: tuple[FakeZoom, str], cli: Any) -> None:
    # One install for every case (each is refused before anything is read or sent).
    fake, _ = zoom
    for args, code, fragment in BAD_INPUT:
        res = cli("zoom", "trash", *args, "--yes")
        assert res.code == code, (args, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, lines)
        assert fragment in lines[0], (args, lines)
        assert not res.stdout, args
    assert not fake.trash_calls
    # The recording was there all along: the right command would have planned it.
    res = ok(cli, "--json", "zoom", "trash", str(synced), "--dry-run")
    assert res.json()[0]["reason"] == "download not verified: never downloaded"


def test_template_key_through_the_cli(synced: int, cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "t2.toml"
    for bad in ("0", "3651", '"30"'):
        path.write_text(
            TEMPLATE.format(extra=f"zoom_trash_after_days = {bad}\n").replace("lectures", "t2")
        )
        res = cli("template", "add", "--file", str(path))
        assert res.code == 2 and "zoom_trash_after_days" in res.stderr, res.stderr
    path.write_text(TEMPLATE.format(extra="zoom_trash_after_days = 14\n").replace("lectures", "t2"))
    ok(cli, "template", "add", "--file", str(path))
    shown = ok(cli, "--json", "template", "show", "t2").json()
    assert shown["zoom_trash_after_days"] == 14 and shown["blank"] == {
        "min_duration_minutes": 0.0,
        "min_size_mb": 0.0,
    }
    assert "zoom_trash_after_days = 14" in ok(cli, "template", "export", "t2").stdout
    assert ok(cli, "--json", "template", "show", "lectures").json()["zoom_trash_after_days"] is None


# ---------------------------------------------------------------- leapd's pass


def test_leapds_pass_trashes_after_n_days_once_even_run_twice_at_once(
    env: dict[str, str], zoom: tuple[FakeZoom, str], cli: Any, tmp_path: Path
) -> None:
    fake, _ = zoom
    ok(cli, "init", "--yes")
    install(cli, tmp_path, extra="zoom_trash_after_days = 7\n")
    made = [meeting(fake, n, days_ago(1 + n)) for n in (1, 2, 3)]
    by_uuid = ids_by_uuid(cli, [])
    ok(cli, "process", "--template", "lectures", "--now")
    runtime = Runtime.from_settings(load_settings())
    try:
        # Published today: not yet.
        assert zoom_trash.run_pass(runtime).calls == 0
        assert zoom_trash.run_pass(runtime, now=datetime.now(UTC) + timedelta(days=6)).calls == 0
        assert not fake.trash_calls
        later = datetime.now(UTC) + timedelta(days=7, hours=1)
        # Two passes at once: the first holds its first call open inside Zoom while the
        # second runs from start to end.
        entered, release = threading.Event(), threading.Event()

        def hold_the_first(uuid: str) -> None:
            if not entered.is_set():
                entered.set()
                release.wait(30)

        fake.trash_hook = hold_the_first
        first = threading.Thread(target=zoom_trash.run_pass, args=(runtime,), kwargs={"now": later})
        first.start()
        assert entered.wait(30)
        second = zoom_trash.run_pass(runtime, now=later)
        release.set()
        first.join(30)
        assert not first.is_alive()
        assert second.calls == 2  # the held one was claimed by the first pass
        assert dict(fake.trash_calls) == {mt.uuid: 1 for mt in made}
        assert set(fake.trashed) == {mt.uuid for mt in made}
        for mt in made:
            rec = recording(runtime, by_uuid[mt.uuid])
            assert rec.zoom_trashed_at is not None
            assert [e["outcome"] for e in rec.zoom_trash_log] == ["trashed"]
        # Nothing left: a later pass makes no call.
        assert zoom_trash.run_pass(runtime, now=later + timedelta(days=1)).calls == 0
    finally:
        runtime.dispose()
    audit = [e for e in ok(cli, "--json", "audit", "list").json() if e["action"] == "zoom.trash"]
    assert {e["actor"] for e in audit} == {"leapd"} and len(audit) == 2
    assert sum(e["detail"]["trashed"] for e in audit) == 3


def test_leapds_pass_backs_off_after_a_refusal(
    env: dict[str, str], zoom: tuple[FakeZoom, str], cli: Any, tmp_path: Path
) -> None:
    fake, _ = zoom
    ok(cli, "init", "--yes")
    install(cli, tmp_path, extra="zoom_trash_after_days = 1\n")
    one = meeting(fake, 1, days_ago(3))
    rid = ids_by_uuid(cli, [])[one.uuid]
    ok(cli, "process", str(rid), "--now")
    fake.refuse_trash(one.uuid)
    runtime = Runtime.from_settings(load_settings())
    try:
        start = datetime.now(UTC) + timedelta(days=2)
        assert zoom_trash.run_pass(runtime, now=start).failed == 1
        assert zoom_trash.run_pass(runtime, now=start + timedelta(hours=1)).calls == 0
        assert zoom_trash.run_pass(runtime, now=start + timedelta(days=1, hours=1)).calls == 1
        rec = recording(runtime, rid)
    finally:
        runtime.dispose()
    assert fake.trash_calls[one.uuid] == 2
    assert rec.zoom_trashed_at is None and rec.status == "ready"
    assert [e["outcome"] for e in rec.zoom_trash_log] == ["refused", "refused"]


def test_the_interval_is_a_checked_setting(
    leap_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for bad in ("4", "10081", "hourly"):
        monkeypatch.setenv("LEAP_ZOOM__CLEANUP_INTERVAL_MINUTES", bad)
        with pytest.raises(ConfigError, match=r"zoom\.cleanup_interval_minutes"):
            load_settings()
    monkeypatch.setenv("LEAP_ZOOM__CLEANUP_INTERVAL_MINUTES", "15")
    assert load_settings().zoom.cleanup_interval_minutes == 15


def test_leapds_scheduler_runs_the_pass_through_the_queue(
    env: dict[str, str],
    zoom: tuple[FakeZoom, str],
    cli: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, _ = zoom
    monkeypatch.setenv("LEAP_ZOOM__CLEANUP_INTERVAL_MINUTES", "15")
    ok(cli, "init", "--yes")
    install(cli, tmp_path, extra="zoom_trash_after_days = 7\n")
    one = meeting(fake, 1, days_ago(20))
    rid = ids_by_uuid(cli, [])[one.uuid]
    ok(cli, "process", str(rid), "--now")
    runtime = Runtime.from_settings(load_settings())
    try:
        with open_context(runtime, Scope.system_scope()) as ctx:
            # Published eight days ago, as far as the database knows.
            ctx.repos.targets.update_where({"uploaded_at": days_ago(8)}, recording_id=rid)
        # Huey in immediate mode runs the task as the job sends it: the real wiring.
        queue = TaskQueue(MemoryHuey("zoom-test", immediate=True, results=False), runtime)
        runtime.enqueue = queue.send
        scheduler = build_scheduler(runtime, queue)
        job = scheduler.get_job(ZOOM_CLEANUP)
        assert job.trigger.interval == timedelta(minutes=15)
        job.func(*job.args)
        assert dict(fake.trash_calls) == {one.uuid: 1}
        assert recording(runtime, rid).zoom_trashed_at is not None
    finally:
        runtime.dispose()
