"""End to end: `leap` as a subprocess syncs a fake Zoom served on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, leap_here, leap_process
from tests.fakes.server import serve
from tests.fakes.zoom import FakeZoom
from tests.fakes.zoom_data import FakeMeeting

MB = 1024 * 1024
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 8, 1, tzinfo=UTC)  # seven months

TEMPLATES = {
    "time-series.toml": 'name = "time-series"\norder = 10\n[match]\n'
    'keywords = ["анализ временных рядов"]\n',
    "ml.toml": 'name = "ml"\norder = 20\n[match]\nkeywords = ["machine learning"]\n',
}


@pytest.fixture
def zoom() -> Iterator[tuple[FakeZoom, str]]:
    fake = FakeZoom(user_email="teacher@uni.example")
    with serve(fake.handler) as base:
        yield fake, base


def setup_install(env: dict[str, str], tmp_path: Path, base: str) -> dict[str, str]:
    env = {
        **env,
        "LEAP_ZOOM__API_BASE_URL": f"{base}/v2",
        "LEAP_ZOOM__OAUTH_BASE_URL": base,
        "ZOOM_SECRET": "zoom-client-secret",
    }

    def ok(*args: str) -> CliResult:
        res = leap_here(*args, env=env)
        assert res.code == 0, (args, res.stderr)
        return res

    ok("init", "--yes")
    ok(
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
    )
    ok(
        "source",
        "add",
        "zoom",
        "uni",
        "--credential",
        "zoom-main",
        "--zoom-user",
        "teacher@uni.example",
    )
    for name, text in TEMPLATES.items():
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        ok("template", "add", "--file", str(path))
    return env


def expected(meetings: list[FakeMeeting]) -> dict[str, tuple[bool, str | None]]:
    """The truth, computed independently of LEAP: uuid -> (blank, template)."""
    out = {}
    for m in meetings:
        blank = m.duration < 20 or m.total_size < 25 * MB
        topic = m.topic.casefold()
        tpl = (
            "time-series"
            if "анализ временных рядов" in topic
            else "ml"
            if "machine learning" in topic
            else None
        )
        out[m.uuid] = (blank, tpl)
    return out


def stored(env: dict[str, str]) -> list[dict[str, Any]]:
    res = leap_process("--json", "recordings", "list", env=env)
    assert res.code == 0, res.stderr
    rows: list[dict[str, Any]] = json.loads(res.stdout)
    return rows


def sync(env: dict[str, str]) -> dict[str, Any]:
    res = leap_process(
        "--json", "sync", "--from", "2026-01-01", "--to", "2026-07-31", env=env, timeout=300
    )
    assert res.code == 0, res.stderr
    [summary] = json.loads(res.stdout)
    return dict(summary)


@pytest.mark.slow
def test_2000_meetings_sync_exactly_once(
    leap_env: dict[str, str], tmp_path: Path, zoom: tuple[FakeZoom, str]
) -> None:
    fake, base = zoom
    meetings = fake.generate_meetings(2000, START, END, seed=7, user_email="teacher@uni.example")
    env = setup_install(leap_env, tmp_path, base)

    first = sync(env)
    truth = expected(meetings)
    assert first["new"] == 2000 and first["error"] is None
    assert first["blank"] == sum(b for b, _ in truth.values())
    assert first["matched"] == sum(t is not None for _, t in truth.values())

    rows = stored(env)
    assert len(rows) == 2000
    assert {r["external_id"] for r in rows} == set(truth)
    for r in rows:
        blank, tpl = truth[r["external_id"]]
        assert (r["blank_record"], r["template"]) == (blank, tpl), r
        assert r["status"] == ("skipped" if blank else "initialized")
        assert r["host"] == "teacher@uni.example"
    some_blank = next(r for r in rows if r["blank_record"])
    assert "min" in some_blank["blank_reason"] or "MB" in some_blank["blank_reason"]

    second = sync(env)
    assert (second["new"], second["updated"], second["unchanged"]) == (0, 0, 2000)
    assert stored(env) == rows


@pytest.mark.slow
def test_429_storm_and_token_expiry_mid_paging(
    leap_env: dict[str, str], tmp_path: Path, zoom: tuple[FakeZoom, str]
) -> None:
    fake, base = zoom
    meetings = fake.generate_meetings(2000, START, END, seed=11, user_email="teacher@uni.example")
    env = setup_install(leap_env, tmp_path, base)
    listings = {"n": 0}

    def chaos(_body: dict[str, Any]) -> None:
        listings["n"] += 1
        if listings["n"] in (3, 7):
            fake.expire_all_tokens()  # the next page's call gets 401 124
        if listings["n"] == 5:
            fake.inject_429("list_recordings", 2, retry_after=1, form="iso")

    fake.mutate_listing = chaos
    fake.storm(4, retry_after=0.05, form="seconds")  # every 4th listing call is a 429
    summary = sync(env)
    assert summary["new"] == 2000
    assert fake.tokens_issued >= 3  # initial + one per expiry
    # The faults really happened: many more listing calls than pages.
    assert fake.requests["list_recordings"] >= summary["pages"] * 1.25
    rows = stored(env)
    assert sorted(r["external_id"] for r in rows) == sorted(m.uuid for m in meetings)


def test_rejected_credentials_fail_cleanly_and_mark_the_credential(
    leap_env: dict[str, str], tmp_path: Path, zoom: tuple[FakeZoom, str]
) -> None:
    fake, base = zoom
    fake.generate_meetings(5, START, END, seed=1, user_email="teacher@uni.example")
    env = setup_install(leap_env, tmp_path, base)
    assert leap_process("credentials", "test", "zoom-main", env=env).code == 0
    fake.client_secret = "rotated-by-admin"
    res = leap_process("credentials", "test", "zoom-main", env=env)
    assert res.code == 5 and "Traceback" not in res.stderr
    res = leap_process("sync", "--from", "2026-01-01", "--to", "2026-02-01", env=env)
    assert res.code == 5, res.stderr
    assert "Traceback" not in res.stderr and "zoom-client-secret" not in res.stderr
    creds = json.loads(leap_process("--json", "credentials", "list", env=env).stdout)
    assert creds[0]["status"] == "needs_reauth"
    shown = leap_process("credentials", "show", "zoom-main", env=env)
    assert "zoom-client-secret" not in shown.stdout + shown.stderr


def test_one_failing_source_does_not_stop_the_others(
    leap_env: dict[str, str], tmp_path: Path, zoom: tuple[FakeZoom, str]
) -> None:
    fake, base = zoom
    fake.generate_meetings(30, START, END, seed=3, user_email="teacher@uni.example")
    env = setup_install(leap_env, tmp_path, base)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    assert leap_process("source", "add", "local", "inbox", str(inbox), env=env).code == 0
    inbox.rmdir()  # the folder disappears: that source fails, zoom still syncs
    res = leap_process("--json", "sync", "--from", "2026-01-01", "--to", "2026-07-31", env=env)
    assert res.code == 8, res.stderr
    by_source = {r["source"]: r for r in json.loads(res.stdout)}
    assert by_source["uni"]["new"] == 30 and by_source["uni"]["error"] is None
    assert "does not exist" in by_source["inbox"]["error"]
