"""The Zoom S2S token is cached encrypted in the credential's row and shared by sync, every
download stage and every process: one token call for a sync and eleven downloads, one refresh
when it lapses or Zoom revokes it, and never a trace of it in logs or errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.providers.zoom import CachedToken
from leap.services import credentials
from leap.services.clients import CredentialTokenCache
from tests.conftest import leap_process, make_user
from tests.fakes.server import serve
from tests.fakes.zoom import FakeZoom, Fault
from tests.fakes.zoom_data import FakeFile, FakeMeeting

HOST = "teacher@uni.example"
DAY = datetime(2026, 2, 2, 9, tzinfo=UTC)
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


@pytest.fixture
def zoom() -> Iterator[tuple[FakeZoom, str]]:
    fake = FakeZoom(user_email=HOST)
    host_id = fake.add_user(HOST)["id"]
    for i in range(11):
        start = DAY + timedelta(days=i)
        key = f"file{i:02d}"
        video = FakeFile(
            key, "MP4", "MP4", "shared_screen_with_speaker_view", "completed", 0, start, start
        )
        fake.add_meeting(
            FakeMeeting(f"uuid-{i:02d}==", 9000 + i, f"Lecture {i}", host_id, start, 60, [video])
        )
        fake.set_file_content(key, bytes([i]) * 50_000)
    with serve(fake.handler) as base:
        yield fake, base


@pytest.fixture
def env(
    leap_env: dict[str, str],
    zoom: tuple[FakeZoom, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Any,
) -> dict[str, str]:
    """An install with a Zoom S2S source and a download-only template, for `cli` (in this
    process) and `leap_process` (another process) alike."""
    _, base = zoom
    extra = {
        "LEAP_ZOOM__API_BASE_URL": f"{base}/v2",
        "LEAP_ZOOM__OAUTH_BASE_URL": base,
        "ZOOM_SECRET": "zoom-client-secret",
    }
    for k, v in extra.items():
        monkeypatch.setenv(k, v)
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
        ("source", "add", "zoom", "uni", "--credential", "z", "--zoom-user", HOST),
        ("template", "add", "--file", str(tmp_path / "t.toml")),
    ):
        res = cli(*args)
        assert res.code == 0, (args, res.stderr)
    return {**leap_env, **extra}


def sync_in_another_process(env: dict[str, str]) -> None:
    res = leap_process("sync", "--from", "2026-02-01", "--to", "2026-02-28", env=env)
    assert res.code == 0, res.stderr


def cached(runtime: Runtime) -> tuple[str, float] | None:
    with open_context(runtime, Scope.system_scope()) as ctx:
        return credentials.cached_token(ctx, ctx.repos.credentials.require_name("z"))


def test_a_sync_and_eleven_downloads_in_two_processes_take_one_token(
    env: dict[str, str], zoom: tuple[FakeZoom, str], cli: Any, runtime: Runtime
) -> None:
    fake, _ = zoom
    sync_in_another_process(env)
    assert fake.tokens_issued == 1
    # This process reads the token the other one cached; each download stage builds its own
    # client, and none asks Zoom for another.
    res = cli("--json", "process", "--template", "lectures", "--now")
    assert res.code == 0, res.stderr
    rows = cli("--json", "recordings", "list").json()
    assert len(rows) == 11 and {r["status"] for r in rows} == {"processed"}, rows
    assert fake.requests["download"] == 11
    assert fake.tokens_issued == 1
    token = cached(runtime)
    assert token is not None and token[0] == fake.api_tokens_seen[0]
    assert token[1] > time.time() + 3000  # Zoom's hour, not some default


def test_an_expired_cached_token_is_refreshed_once(
    env: dict[str, str], zoom: tuple[FakeZoom, str], runtime: Runtime
) -> None:
    fake, _ = zoom
    sync_in_another_process(env)
    old = cached(runtime)
    assert old is not None and fake.tokens_issued == 1
    with open_context(runtime, Scope.system_scope()) as ctx:
        cred_id = ctx.repos.credentials.require_name("z").id
        # Still inside the safety margin: Zoom would accept it for another 30 s.
        credentials.cache_token(ctx, cred_id, old[0], time.time() + 30)
    seen_before = len(fake.api_tokens_seen)
    sync_in_another_process(env)
    assert fake.tokens_issued == 2
    new = cached(runtime)
    assert new is not None and new[0] != old[0] and new[1] > time.time() + 3000
    assert set(fake.api_tokens_seen[seen_before:]) == {new[0]}
    sync_in_another_process(env)
    assert fake.tokens_issued == 2


def test_a_token_revoked_by_zoom_is_replaced_once_and_the_call_succeeds(
    env: dict[str, str], zoom: tuple[FakeZoom, str], cli: Any, runtime: Runtime
) -> None:
    fake, _ = zoom
    sync_in_another_process(env)
    old = cached(runtime)
    fake.expire_all_tokens()  # the app's tokens die on Zoom's side, the cache still holds one
    res = cli("--json", "process", "--template", "lectures", "--now")
    assert res.code == 0, res.stderr
    assert {r["status"] for r in cli("--json", "recordings", "list").json()} == {"processed"}
    # One refusal, one new token, shared by the other ten downloads.
    assert fake.tokens_issued == 2
    new = cached(runtime)
    assert old is not None and new is not None and new[0] != old[0]
    assert fake.requests["download"] == 12


def test_credentials_test_proves_the_secrets_not_the_cached_token(
    env: dict[str, str], zoom: tuple[FakeZoom, str], cli: Any
) -> None:
    fake, _ = zoom
    sync_in_another_process(env)
    fake.client_secret = "rotated-by-admin"  # the token cached an hour ago still works
    res = cli("credentials", "test", "z")
    assert res.code == 5, res.stderr
    assert fake.tokens_issued == 1


def test_the_cached_token_never_shows_in_logs_or_errors(
    env: dict[str, str], zoom: tuple[FakeZoom, str], runtime: Runtime
) -> None:
    fake, _ = zoom
    sync_in_another_process(env)
    token = fake.api_tokens_seen[-1]
    # A careless server quotes the token back; the next process only knows it from the cache.
    fake.inject(
        "list_recordings",
        Fault(400, body={"code": 300, "message": f"bad request with token {token} here"}),
    )
    res = leap_process(
        "--debug",
        "sync",
        "--from",
        "2026-02-01",
        "--to",
        "2026-02-28",
        env={**env, "LEAP_LOG__LEVEL": "DEBUG"},
    )
    assert res.code != 0
    assert "bad request with token" in res.stderr  # the error was shown...
    assert token not in res.stdout + res.stderr  # ...without the token
    row = cached(runtime)
    assert row is not None and row[0] == token
    with open_context(runtime, Scope.system_scope()) as ctx:
        stored = ctx.repos.credentials.require_name("z").token_cache or b""
    assert token.encode() not in stored  # encrypted at rest


def test_concurrent_writers_never_mix_one_token_with_anothers_expiry(
    runtime: Runtime, cli: Any
) -> None:
    assert cli("init", "--yes").code == 0
    scope = make_user(runtime, "alice")
    with open_context(runtime, scope) as ctx:
        cred_id = credentials.add_credential(
            ctx,
            "z",
            credentials.parse_kind("zoom-s2s"),
            {"account_id": "a", "client_id": "c", "client_secret": "s" * 20},
        ).id
    base = int(time.time()) + 3600
    errors: list[str] = []

    def writer(name: str, offset: int) -> None:
        cache = CredentialTokenCache(runtime, scope, cred_id)
        for i in range(15):
            cache.store(CachedToken(f"{name}-{offset + i}", float(base + offset + i)))
            got = cache.load()
            if got is None or got.access_token.rsplit("-", 1)[1] != str(int(got.expires_at) - base):
                errors.append(f"{got}")

    threads = [threading.Thread(target=writer, args=(n, o)) for n, o in (("a", 0), ("b", 500))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert CredentialTokenCache(runtime, scope, cred_id).load() is not None
