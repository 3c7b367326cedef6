"""Credential health (`leap credentials test`, `leap doctor`) and revocation on
`leap credentials remove`, against fake YouTube and VK served over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.providers.google_oauth import FORCE_SSL, UPLOAD
from tests.fakes.server import serve
from tests.fakes.vk import FakeVK
from tests.fakes.youtube import FakeYouTube
from tests.fakes.zoom import FakeZoom

CHANNEL = "Лекции по анализу данных"


@dataclass
class CliResult:
    """What the `cli` fixture returns (tests.conftest.CliResult, same shape)."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def leap_process(*args: str, env: dict[str, str]) -> CliResult:
    """`leap ARGS` as a real process, like tests.conftest.leap_process (not imported from
    there: this file is type-checked strictly, conftest is not)."""
    proc = subprocess.run(
        [sys.executable, "-m", "leap.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def youtube(
    leap_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeYouTube, str]]:
    fake = FakeYouTube()
    fake.channel_title = CHANNEL
    with serve(fake.handler) as base:
        monkeypatch.setenv("LEAP_YOUTUBE__API_BASE_URL", f"{base}/youtube/v3")
        monkeypatch.setenv("LEAP_YOUTUBE__UPLOAD_BASE_URL", f"{base}/upload/youtube/v3")
        monkeypatch.setenv("LEAP_YOUTUBE__TOKEN_URI", f"{base}/token")
        monkeypatch.setenv("LEAP_YOUTUBE__REVOKE_URI", f"{base}/revoke")
        yield fake, base


@pytest.fixture
def vk(leap_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVK]:
    fake = FakeVK()
    with serve(fake.handler) as base:
        monkeypatch.setenv("LEAP_VK__API_BASE_URL", f"{base}/method")
        monkeypatch.setenv("LEAP_VK__ID_BASE_URL", base)
        yield fake


@pytest.fixture
def installed(leap_env: dict[str, str], cli: Any) -> Any:
    res = cli("init", "--yes")
    assert res.code == 0, res.stderr
    return cli


def ok(cli: Any, *args: str) -> CliResult:
    res: CliResult = cli(*args)
    assert res.code == 0, (args, res.stderr)
    return res


def add_youtube(
    cli: Any,
    tmp_path: Path,
    fake: FakeYouTube,
    name: str = "chan",
    *,
    refresh_token: str | None = None,
    scopes: list[str] | None = None,
) -> str:
    """Store a YouTube credential as an authorized_user file would; returns its refresh token."""
    token = refresh_token or fake.refresh_token
    payload: dict[str, Any] = {
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "refresh_token": token,
    }
    if scopes is not None:
        payload["scopes"] = scopes
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(payload))
    ok(cli, "credentials", "add", "youtube", name, "--from-file", str(path))
    return token


def add_vk(cli: Any, tmp_path: Path, name: str, tokens: dict[str, Any]) -> None:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(tokens))
    ok(cli, "credentials", "add", "vk", name, "--from-file", str(path))


def add_preset(cli: Any, tmp_path: Path, name: str, credential: str, meta: str) -> None:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\nplatform = "youtube"\ncredential = "{credential}"\n'
        f'[metadata]\nprivacy = "unlisted"\n{meta}\n'
    )
    ok(cli, "preset", "add", "--file", str(path))


def statuses(cli: Any) -> dict[str, str]:
    return {c["name"]: c["status"] for c in ok(cli, "--json", "credentials", "list").json()}


def assert_no_secret(res: CliResult, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in res.stdout + res.stderr, res


# -- leap credentials test ----------------------------------------------------------------------


def test_a_working_youtube_credential_names_its_channel(
    installed: Any, tmp_path: Path, youtube: tuple[FakeYouTube, str]
) -> None:
    cli = installed
    fake, _ = youtube
    token = add_youtube(cli, tmp_path, fake)
    res = cli("--json", "credentials", "test", "chan")
    assert res.code == 0, res.stderr
    view = res.json()
    assert view == {
        "name": "chan",
        "kind": "youtube",
        "state": "ok",
        "attention": False,
        "detail": f"YouTube channel {CHANNEL}",
        "days_left": None,
        "channel": CHANNEL,
    }
    # One cheap call: channels.list (1 unit), after the refresh it needed.
    assert fake.requests["channels_list"] == 1
    human = cli("credentials", "test", "chan")
    assert human.code == 0 and f"works: YouTube channel {CHANNEL}" in human.stderr
    assert_no_secret(res, token, fake.client_secret)
    assert_no_secret(human, token, fake.client_secret)
    assert statuses(cli) == {"chan": "active"}


def test_a_dead_youtube_credential_exits_5_and_is_marked(
    installed: Any,
    leap_env: dict[str, str],
    tmp_path: Path,
    youtube: tuple[FakeYouTube, str],
) -> None:
    cli = installed
    fake, _ = youtube
    token = add_youtube(cli, tmp_path, fake)
    fake.invalid_grant = True  # Google refuses the refresh token for good
    res = leap_process("--json", "credentials", "test", "chan", env=leap_env)
    assert res.code == 5, res.stderr
    view = res.json()
    assert view["state"] == "dead" and view["attention"] is True
    assert "invalid_grant" in view["detail"]
    assert view["detail"].endswith("re-authenticate: leap oauth youtube chan")
    assert "invalid_grant" in res.stderr and "Traceback" not in res.stderr
    assert_no_secret(res, token, fake.client_secret)
    assert statuses(cli) == {"chan": "needs_reauth"}
    # Known dead: reported again without asking Google.
    asked = fake.requests["token"]
    again = cli("--json", "credentials", "test", "chan")
    assert again.code == 5 and again.json()["state"] == "dead"
    assert fake.requests["token"] == asked and fake.requests["channels_list"] == 0


def test_a_missing_captions_scope_is_named_with_the_fix(
    installed: Any, tmp_path: Path, youtube: tuple[FakeYouTube, str]
) -> None:
    cli = installed
    fake, _ = youtube
    token = fake.issue_refresh_token(UPLOAD)  # consent to uploads only
    add_youtube(cli, tmp_path, fake, "up", refresh_token=token, scopes=[UPLOAD])
    # Without a preset that needs more, upload-only is enough.
    plain = cli("--json", "credentials", "test", "up")
    assert plain.code == 0, plain.stderr
    assert plain.json()["state"] == "ok"
    add_preset(cli, tmp_path, "with-captions", "up", "captions = true")
    res = cli("--json", "credentials", "test", "up")
    assert res.code == 1, res.stderr
    view = res.json()
    assert view["state"] == "missing_scope" and view["attention"] is True
    assert view["detail"] == (
        f"missing scope {FORCE_SSL} (captions): re-run leap oauth youtube up --captions"
    )
    assert f"warning: credential 'up': missing scope {FORCE_SSL}" in res.stderr
    assert_no_secret(res, token)
    assert statuses(cli) == {"up": "active"}  # it works; it just cannot do everything


def test_a_testing_mode_google_app_is_expiring(
    installed: Any, tmp_path: Path, youtube: tuple[FakeYouTube, str], runtime: Runtime
) -> None:
    cli = installed
    fake, _ = youtube
    add_youtube(cli, tmp_path, fake)
    # What mark_dead leaves after a refresh token died 7 days after consent, and a new
    # consent given 6 days ago: the app is in Testing mode.
    six_days_ago = datetime.now(UTC) - timedelta(days=6)
    with open_context(runtime, Scope.system_scope()) as ctx:
        [cred] = ctx.repos.credentials.list()
        cred.public = {
            **cred.public,
            "testing_mode": True,
            "authorized_at": six_days_ago.isoformat(timespec="seconds"),
        }
    res = cli("--json", "credentials", "test", "chan")
    assert res.code == 1, res.stderr
    view = res.json()
    assert view["state"] == "expiring" and view["attention"] is True
    assert view["days_left"] == pytest.approx(1.0, abs=0.01)
    assert view["channel"] == CHANNEL
    assert "Google app in Testing mode: refresh tokens die after 7 days" in view["detail"]
    assert "expires in 1.0 days" in view["detail"]
    assert "re-run leap oauth youtube chan" in view["detail"]
    assert fake.requests["channels_list"] == 1  # it was still checked for real


def test_a_death_7_days_after_consent_is_recognised_as_testing_mode(
    installed: Any, tmp_path: Path, youtube: tuple[FakeYouTube, str], runtime: Runtime
) -> None:
    cli = installed
    fake, _ = youtube
    add_youtube(cli, tmp_path, fake)
    with open_context(runtime, Scope.system_scope()) as ctx:
        [cred] = ctx.repos.credentials.list()
        consent = datetime.now(UTC) - timedelta(days=7, hours=1)
        cred.public = {**cred.public, "authorized_at": consent.isoformat(timespec="seconds")}
    # The refresh token dies 7 days after consent, as Google does for apps in Testing mode.
    fake.invalid_grant = True
    res = cli("--json", "credentials", "test", "chan")
    assert res.code == 5, res.stderr
    assert "Google app in Testing mode" in res.json()["detail"]
    with open_context(runtime, Scope.system_scope()) as ctx:
        [cred] = ctx.repos.credentials.list()
        assert cred.public["testing_mode"] is True
    # The history outlives a re-authentication: the new token is known to lapse in 7 days.
    fake.invalid_grant = False
    path = tmp_path / "again.json"
    path.write_text(
        json.dumps(
            {
                "client_id": fake.client_id,
                "client_secret": fake.client_secret,
                "refresh_token": fake.refresh_token,
            }
        )
    )
    ok(cli, "credentials", "add", "youtube", "chan", "--from-file", str(path), "--replace")
    with open_context(runtime, Scope.system_scope()) as ctx:
        [cred] = ctx.repos.credentials.list()
        assert cred.public["testing_mode"] is True


def test_a_death_long_after_consent_is_not_testing_mode(
    installed: Any, tmp_path: Path, youtube: tuple[FakeYouTube, str], runtime: Runtime
) -> None:
    cli = installed
    fake, _ = youtube
    add_youtube(cli, tmp_path, fake)
    with open_context(runtime, Scope.system_scope()) as ctx:
        [cred] = ctx.repos.credentials.list()
        consent = datetime.now(UTC) - timedelta(days=40)
        cred.public = {**cred.public, "authorized_at": consent.isoformat(timespec="seconds")}
    fake.invalid_grant = True  # revoked by the user, say
    res = cli("--json", "credentials", "test", "chan")
    assert res.code == 5 and "Testing mode" not in res.json()["detail"]


def test_vk_credentials_are_checked_with_users_get(
    installed: Any, tmp_path: Path, vk: FakeVK
) -> None:
    cli = installed
    fake = vk
    renewable = fake.issue_tokens(device_id="dev-1") | {"client_id": fake.client_id}
    add_vk(cli, tmp_path, "vkc", renewable)
    res = cli("--json", "credentials", "test", "vkc")
    assert res.code == 0, res.stderr
    view = res.json()
    assert (view["state"], view["days_left"]) == ("ok", None)
    assert view["detail"] == f"VK user Fake User (id {fake.owner_id})"
    assert fake.api_calls == ["users.get"]
    assert_no_secret(res, renewable["access_token"], renewable["refresh_token"])

    # A pasted token: no refresh token, so its expiry is the credential's end.
    short = fake.issue_tokens(lifetime=2 * 86400)
    add_vk(
        cli, tmp_path, "pasted", {"access_token": short["access_token"], "expires_in": 2 * 86400}
    )
    res = cli("--json", "credentials", "test", "pasted")
    assert res.code == 1, res.stderr
    view = res.json()
    assert view["state"] == "expiring" and view["attention"] is True
    assert view["days_left"] == pytest.approx(2.0, abs=0.01)
    assert "cannot be renewed" in view["detail"] and "leap oauth vk pasted" in view["detail"]
    assert fake.api_calls == ["users.get", "users.get"]

    # Past its expiry and not renewable: dead, no call needed.
    add_vk(
        cli,
        tmp_path,
        "lapsed",
        {"access_token": fake.issue_tokens()["access_token"], "expires_at": time.time() - 60},
    )
    res = cli("--json", "credentials", "test", "lapsed")
    assert res.code == 5, res.stderr
    assert res.json()["state"] == "dead"
    assert len(fake.api_calls) == 2
    assert statuses(cli)["lapsed"] == "needs_reauth"


def test_api_keys_are_reported_unchecked(installed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cli = installed
    monkeypatch.setenv("FW_KEY", "fw-secret-key-123456")
    ok(cli, "credentials", "add", "fireworks", "fw", "--api-key-env", "FW_KEY")
    res = cli("--json", "credentials", "test", "fw")
    assert res.code == 0, res.stderr
    view = res.json()
    assert (view["state"], view["attention"]) == ("unchecked", False)
    assert view["detail"] == "API key stored; checked by the next transcription/LLM call"
    assert_no_secret(res, "fw-secret-key-123456")


# -- leap doctor --------------------------------------------------------------------------------


def doctor_rows(res: CliResult) -> dict[str, dict[str, Any]]:
    return {row["check"]: row for row in res.json()}


def test_doctor_lists_credentials_and_fails_for_those_needing_attention(
    installed: Any,
    tmp_path: Path,
    youtube: tuple[FakeYouTube, str],
    vk: FakeVK,
) -> None:
    cli = installed
    fake, _ = youtube
    token = add_youtube(cli, tmp_path, fake)
    res = cli("--json", "doctor")
    assert res.code == 0, res.stderr
    row = doctor_rows(res)["credential chan"]
    assert row == {
        "check": "credential chan",
        "ok": True,
        "detail": f"YouTube channel {CHANNEL}",
        "state": "ok",
        "days_left": None,
    }

    short = vk.issue_tokens(lifetime=3 * 86400)
    add_vk(
        cli, tmp_path, "pasted", {"access_token": short["access_token"], "expires_in": 3 * 86400}
    )
    res = cli("--json", "doctor")
    assert res.code == 1, res.stderr
    row = doctor_rows(res)["credential pasted"]
    assert row["ok"] is False and row["state"] == "expiring"
    assert row["days_left"] == pytest.approx(3.0, abs=0.01)
    assert "pasted" in res.stderr

    add_youtube(cli, tmp_path, fake, "gone", refresh_token="1//0-revoked-long-ago")
    res = cli("--json", "doctor")
    assert res.code == 5, res.stderr
    rows = doctor_rows(res)
    assert rows["credential gone"]["state"] == "dead" and rows["credential gone"]["ok"] is False
    assert rows["credential chan"]["ok"] is True
    assert_no_secret(res, token, "1//0-revoked-long-ago", fake.client_secret)
    human = cli("doctor")
    assert human.code == 5 and "credential gone" in human.stdout
    assert_no_secret(human, token, "1//0-revoked-long-ago")


def test_doctor_before_init_lists_no_credentials(leap_env: dict[str, str], cli: Any) -> None:
    res = cli("--json", "doctor")
    checks = doctor_rows(res)
    assert checks["database"]["ok"], res.stderr
    assert not [c for c in checks if c.startswith("credential")]


# -- leap credentials remove --------------------------------------------------------------------


def test_remove_revokes_at_google(
    installed: Any, tmp_path: Path, youtube: tuple[FakeYouTube, str]
) -> None:
    cli = installed
    fake, _ = youtube
    token = add_youtube(cli, tmp_path, fake)
    add_preset(cli, tmp_path, "yt", "chan", "")
    refused = cli("credentials", "remove", "chan")
    assert refused.code == 7 and "used by yt" in refused.stderr
    assert fake.requests["revoke"] == 0  # refused before anything was revoked
    ok(cli, "preset", "remove", "yt")

    res = cli("--json", "credentials", "remove", "chan")
    assert res.code == 0, res.stderr
    assert res.json() == {"removed": "chan", "revoked": True}
    assert fake.revoked == [token]
    assert statuses(cli) == {}
    assert_no_secret(res, token, fake.client_secret)


def test_remove_goes_ahead_when_the_revoke_fails(
    installed: Any, tmp_path: Path, youtube: tuple[FakeYouTube, str]
) -> None:
    cli = installed
    fake, _ = youtube
    token = add_youtube(cli, tmp_path, fake)
    fake.inject_error("revoke", 500, "backendError")
    res = cli("--json", "credentials", "remove", "chan")
    assert res.code == 0, res.stderr
    assert res.json() == {"removed": "chan", "revoked": False}
    [warning] = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert warning.startswith("warning: could not revoke at youtube: ")
    assert warning.endswith("; removed anyway") and "HTTP 500" in warning
    assert fake.revoked == [] and statuses(cli) == {}
    assert_no_secret(res, token, fake.client_secret)


def test_remove_logs_vk_out_and_has_nothing_to_revoke_for_api_keys(
    installed: Any, tmp_path: Path, vk: FakeVK, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = installed
    tokens = vk.issue_tokens(device_id="dev-1") | {"client_id": vk.client_id}
    add_vk(cli, tmp_path, "vkc", tokens)
    res = cli("--json", "credentials", "remove", "vkc")
    assert res.code == 0, res.stderr
    assert res.json() == {"removed": "vkc", "revoked": True}
    assert vk.logouts == 1
    assert_no_secret(res, tokens["access_token"], tokens["refresh_token"])

    monkeypatch.setenv("OPENAI_KEY", "sk-test-openai-secret")
    ok(cli, "credentials", "add", "openai", "oa", "--api-key-env", "OPENAI_KEY")
    res = cli("--json", "credentials", "remove", "oa")
    assert res.code == 0, res.stderr
    assert res.json() == {"removed": "oa", "revoked": None}
    assert statuses(cli) == {}


def test_remove_revokes_a_zoom_user_token(
    installed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = installed
    fake = FakeZoom()
    with serve(fake.handler) as base:
        monkeypatch.setenv("LEAP_ZOOM__OAUTH_BASE_URL", base)
        monkeypatch.setenv("LEAP_ZOOM__API_BASE_URL", f"{base}/v2")
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
        ok(cli, "credentials", "add", "zoom-oauth", "zu", "--from-file", str(path))
        res = cli("--json", "credentials", "remove", "zu")
    assert res.code == 0, res.stderr
    assert res.json() == {"removed": "zu", "revoked": True}
    assert fake.revoked == [tokens["refresh_token"]]
    assert_no_secret(res, tokens["refresh_token"], fake.client_secret)
