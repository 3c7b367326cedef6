"""Issue 10: hostile input never sinks a sync. One bad Zoom meeting (or any item a source
offers) is skipped with its reason while the rest is kept; an optional lookup refused for
scope reasons is done without; a stalling server and an endless listing end on time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from leap.config import load_settings
from leap.context import Runtime, open_context
from leap.db.models import InputSource
from leap.db.scope import Scope
from leap.domain import CredentialKind, SourceKind
from leap.providers.http import make_http_client
from leap.providers.zoom import MAX_PAGES_PER_WINDOW
from leap.services import credentials, mapping, sources
from leap.services.sync import Syncer, SyncRequest, SyncResult, upsert_page
from leap.services.sync.item import SourceItem
from tests.conftest import make_user
from tests.fakes.server import mock_transport, serve
from tests.fakes.zoom import FakeZoom
from tests.fakes.zoom_data import FakeMeeting

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 3, 1, tzinfo=UTC)
HOST = "teacher@uni.example"


@pytest.fixture
def zoom() -> Iterator[tuple[FakeZoom, str]]:
    fake = FakeZoom(user_email=HOST)
    with serve(fake.handler) as base:
        yield fake, base


def install(cli: Any, monkeypatch: pytest.MonkeyPatch, base: str) -> None:
    """An install with one Zoom source for "me" (the S2S default): the host's e-mail is
    not in the source, so sync would ask GET /users/me for it."""
    monkeypatch.setenv("LEAP_ZOOM__API_BASE_URL", f"{base}/v2")
    monkeypatch.setenv("LEAP_ZOOM__OAUTH_BASE_URL", base)
    monkeypatch.setenv("ZOOM_SECRET", "zoom-client-secret")
    for args in (
        ("init", "--yes"),
        (
            "credentials",
            "add",
            "zoom-s2s",
            "zoom-main",
            "--account-id",
            "zoom-account-id",
            "--client-id",
            "zoom-client-id",
            "--client-secret-env",
            "ZOOM_SECRET",
        ),
        ("source", "add", "zoom", "uni", "--credential", "zoom-main"),
    ):
        res = cli(*args)
        assert res.code == 0, (args, res.stderr)


def hostile(fake: FakeZoom) -> tuple[list[FakeMeeting], dict[str, str]]:
    """Twelve meetings: eight good (two with text no database takes as is) and four bad,
    each bad one with the words its skip reason must contain."""
    meetings = fake.generate_meetings(12, START, END, seed=5, user_email=HOST)
    good = meetings[:8]
    good[0].topic = "Лекция \ud800 broken emoji"  # a lone surrogate (sent as \ud800)
    good[1].topic = "NUL\x00 in the topic"  # PostgreSQL refuses NUL in text
    bad = meetings[8:]
    for f in bad[0].files:
        f.raw = {"file_size": 1e30}
    bad[1].raw = {"start_time": "9999-12-31T23:59:59-23:59"}  # overflows past year 9999
    bad[2].raw = {"duration": "forever"}
    for f in bad[3].files:
        f.raw = {"file_size": -5}
    reasons = {
        bad[0].uuid: "file_size 1e+30",
        bad[1].uuid: "start_time",
        bad[2].uuid: "duration 'forever'",
        bad[3].uuid: "file_size -5",
    }
    return good, reasons


def test_hostile_meetings_are_skipped_and_the_rest_kept(
    leap_env: dict[str, str],
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    zoom: tuple[FakeZoom, str],
) -> None:
    fake, base = zoom
    fake.user_scope = False  # recordings scope only: /users/me answers 400 code 4711
    good, reasons = hostile(fake)
    install(cli, monkeypatch, base)

    res = cli("--json", "sync", "--from", "2026-01-01", "--to", "2026-02-28")
    assert res.code == 0, res.stderr
    [summary] = res.json()
    assert summary["error"] is None
    assert summary["new"] == len(good) and summary["skipped"] == len(reasons)
    skips = {s["item"]: s["reason"] for s in summary["skips"]}
    assert set(skips) == set(reasons)
    for uuid, words in reasons.items():
        assert words in skips[uuid], (uuid, skips[uuid])
    assert fake.requests["get_user"] >= 1  # asked once, refused, done without
    assert any("4711" in w for w in summary["warnings"])

    rows = {r["external_id"]: r for r in cli("--json", "recordings", "list").json()}
    assert set(rows) == {m.uuid for m in good}
    assert rows[good[0].uuid]["title"] == "Лекция \ufffd broken emoji"
    assert rows[good[1].uuid]["title"] == "NUL\ufffd in the topic"
    assert all(r["host"] is None for r in rows.values())

    # Stable: the same answer again changes nothing and skips the same meetings.
    res = cli("--json", "sync", "--from", "2026-01-01", "--to", "2026-02-28")
    assert res.code == 0, res.stderr
    [again] = res.json()
    assert (again["new"], again["updated"], again["unchanged"]) == (0, 0, len(good))
    assert again["skipped"] == len(reasons)
    assert {r["external_id"] for r in cli("--json", "recordings", "list").json()} == set(rows)

    # The human view names every skipped meeting and why.
    res = cli("sync", "--from", "2026-01-01", "--to", "2026-02-28")
    assert res.code == 0, res.stderr
    for uuid in reasons:
        assert f"skipped {uuid}" in " ".join(res.stderr.split()) + " ".join(res.stdout.split())


def test_without_the_user_scope_every_meeting_syncs(
    leap_env: dict[str, str],
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    zoom: tuple[FakeZoom, str],
) -> None:
    fake, base = zoom
    fake.user_scope = False
    meetings = fake.generate_meetings(40, START, END, seed=9, user_email=HOST)
    install(cli, monkeypatch, base)
    res = cli("--json", "sync", "--from", "2026-01-01", "--to", "2026-02-28")
    assert res.code == 0, res.stderr
    [summary] = res.json()
    assert summary["error"] is None and summary["new"] == 40 and summary["skipped"] == 0
    listed = cli("--json", "recordings", "list").json()
    assert sorted(r["external_id"] for r in listed) == sorted(m.uuid for m in meetings)
    assert fake.requests["get_user"] == 1  # optional: asked once per sync, not per page


def test_a_user_oauth_token_without_the_user_scope_still_tests_ok(
    leap_env: dict[str, str],
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    zoom: tuple[FakeZoom, str],
    tmp_path: Path,
) -> None:
    fake, base = zoom
    install(cli, monkeypatch, base)
    tokens = fake.issue_user_tokens()
    path = tmp_path / "zoom-oauth.json"
    path.write_text(
        json.dumps(
            {
                "client_id": fake.client_id,
                "client_secret": fake.client_secret,
                "refresh_token": tokens["refresh_token"],
            }
        )
    )
    res = cli("credentials", "add", "zoom-oauth", "mine", "--from-file", str(path))
    assert res.code == 0, res.stderr
    fake.user_scope = False
    res = cli("--json", "credentials", "test", "mine")
    assert res.code == 0, res.stderr
    assert "no user:read scope" in res.json()["detail"]


# ---------------------------------------------------------------------------------------------
# The generic guard: any item the database refuses is skipped, the rest of its page kept


def _item(external_id: str, *, size: int = 50 * 2**20, title: str = "Lecture") -> SourceItem:
    return SourceItem(
        external_id=external_id,
        title=title,
        start_time=datetime(2026, 2, 3, 10, tzinfo=UTC),
        duration_s=3600.0,
        size_bytes=size,
    )


@pytest.fixture
def local_source(runtime: Runtime, tmp_path: Path) -> tuple[Scope, int]:
    scope = make_user(runtime, "alice")
    with open_context(runtime, scope) as ctx:
        src = ctx.repos.sources.add(
            InputSource(name="box", kind=SourceKind.LOCAL.value, config={"path": str(tmp_path)})
        )
        return scope, src.id


def test_upsert_page_skips_what_the_database_refuses(
    runtime: Runtime, local_source: tuple[Scope, int]
) -> None:
    scope, source_id = local_source
    result = SyncResult(source="box", kind="local")
    page = [
        _item("a.mp4"),
        _item("huge.mp4", size=10**30),  # past a 64-bit integer: SQLite and PostgreSQL refuse
        _item("b.mp4"),
        _item("\udcff.mp4"),  # an undecodable file name as os.walk hands it over
        _item("a.mp4", title="repeated in the page"),
    ]
    with open_context(runtime, scope) as ctx:
        upsert_page(ctx, source_id, page, mapping.load_matcher(ctx), result)
    assert (result.new, result.skipped) == (2, 2)
    assert [s.item for s in result.skips] == ["huge.mp4", "\\udcff.mp4"]
    assert all(s.reason for s in result.skips)
    with open_context(runtime, scope) as ctx:
        stored = {r.external_id: r for r in ctx.repos.recordings.list(source_id=source_id)}
    assert set(stored) == {"a.mp4", "b.mp4"} and stored["a.mp4"].title == "Lecture"

    # Updates too: a changed row that cannot be stored keeps its old values, others change.
    result = SyncResult(source="box", kind="local")
    page = [_item("a.mp4", size=10**30), _item("b.mp4", title="Renamed")]
    with open_context(runtime, scope) as ctx:
        upsert_page(ctx, source_id, page, mapping.load_matcher(ctx), result)
    assert (result.updated, result.skipped) == (1, 1)
    with open_context(runtime, scope) as ctx:
        stored = {r.external_id: r for r in ctx.repos.recordings.list(source_id=source_id)}
    assert stored["a.mp4"].size_bytes == 50 * 2**20 and stored["b.mp4"].title == "Renamed"


def test_skips_are_listed_up_to_a_limit_but_all_counted() -> None:
    result = SyncResult(source="s", kind="zoom")
    for i in range(60):
        result.skip(f"m{i}", "bad\nvalue \ud800")
    assert result.skipped == 60 and len(result.skips) == 50
    assert result.skips[0].reason == "bad value \\ud800"
    assert result.warnings[-1].startswith("more items were skipped")


# ---------------------------------------------------------------------------------------------
# Bounded work: a stalling server, an endless listing


def zoom_runtime(monkeypatch: pytest.MonkeyPatch, base: str) -> tuple[Runtime, Scope]:
    """A runtime pointed at a Zoom served at `base`, and a user with a Zoom source there."""
    monkeypatch.setenv("LEAP_ZOOM__API_BASE_URL", f"{base}/v2")
    monkeypatch.setenv("LEAP_ZOOM__OAUTH_BASE_URL", base)
    runtime = Runtime.from_settings(load_settings())
    scope = make_user(runtime, "bob")
    with open_context(runtime, scope) as ctx:
        credentials.add_credential(
            ctx,
            "zoom-main",
            CredentialKind.ZOOM_S2S,
            {
                "account_id": "zoom-account-id",
                "client_id": "zoom-client-id",
                "client_secret": "zoom-client-secret",
            },
        )
        sources.add_zoom(ctx, "uni", "zoom-main", HOST)
    return runtime, scope


def sync_once(runtime: Runtime, scope: Scope, http: httpx.Client) -> SyncResult:
    req = SyncRequest(date_from=START.date(), date_to=START.date() + timedelta(days=4))
    try:
        [result] = Syncer(runtime, scope, http, sleep=lambda _s: None).run(req)
    finally:
        runtime.dispose()
    return result


def test_a_trickling_zoom_ends_the_sync_by_the_deadline(
    leap_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeZoom(user_email=HOST)
    fake.generate_meetings(5, START, END, seed=1, user_email=HOST)
    # One byte every 50 ms, headers included: the token answer alone would take ~20 s.
    with (
        serve(fake.handler, write_delay=lambda: 0.05) as base,
        make_http_client(timeout=1.0, deadline=1.5) as http,
    ):
        runtime, scope = zoom_runtime(monkeypatch, base)
        began = time.monotonic()
        result = sync_once(runtime, scope, http)
        took = time.monotonic() - began
    # The deadline is twice the read timeout here (2 s): never below what a read may take.
    assert result.error is not None and "within 2 s" in result.error, result.error
    assert took < 6, took
    assert fake.requests["oauth_token"] == 1  # a missed deadline is not retried


def test_an_endless_listing_stops_with_a_clear_error(
    leap_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeZoom(user_email=HOST)
    fake.endless_pages = True  # empty pages, each with a fresh next_page_token, forever
    runtime, scope = zoom_runtime(monkeypatch, "https://zoom.test")
    with make_http_client(transport=mock_transport(fake.handler)) as http:
        result = sync_once(runtime, scope, http)
    assert result.error is not None, result
    assert f"more pages after {MAX_PAGES_PER_WINDOW}" in result.error
    assert fake.requests["list_recordings"] == MAX_PAGES_PER_WINDOW
