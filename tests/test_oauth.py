"""`leap oauth youtube|vk|zoom` end to end: `leap` runs as a real process, the fakes serve the
providers' consent and token endpoints over HTTP on 127.0.0.1, and the test plays the
browser (tests/fakes/oauth_browser.py): it follows the consent URL that LEAP printed or
opened, and lands on LEAP's loopback redirect, or copies the address a headless browser
would fail to open and pastes it back."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.conftest import CliResult, leap_here, leap_process
from tests.fakes import oauth_browser
from tests.fakes.server import serve
from tests.fakes.vk import FakeVK
from tests.fakes.youtube import FakeYouTube
from tests.fakes.zoom import FakeZoom

pytestmark = pytest.mark.usefixtures("db_template")

BROWSER_SCRIPT = Path(oauth_browser.__file__).resolve()
FORCE_SSL = "https://www.googleapis.com/auth/youtube.force-ssl"
UPLOAD = "https://www.googleapis.com/auth/youtube.upload"
YOUTUBE = "https://www.googleapis.com/auth/youtube"


def run_oauth(
    args: list[str],
    env: dict[str, str],
    act: Callable[[str], str | None],
    *,
    timeout: float = 60,
) -> CliResult:
    """Run `leap ARGS`; when it prints the consent URL, `act(url)` plays the user and may
    return a line to paste on stdin."""
    full_env = {**os.environ, **env}
    seen: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "leap.cli", *args],
        env=full_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdin is not None and proc.stderr is not None and proc.stdout is not None
        try:
            for line in proc.stderr:
                seen.append(line)
                if line.startswith("http"):
                    pasted = act(line.strip())
                    if pasted is not None:
                        proc.stdin.write(pasted + "\n")
                        proc.stdin.flush()
                    break
            proc.stdin.close()
            out = proc.stdout.read()
            seen.append(proc.stderr.read())
            code = proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
    return CliResult(code, out, "".join(seen))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def follow(url: str) -> None:
    """A browser on this machine: consent, then the redirect to LEAP's loopback."""
    oauth_browser.visit(url)


def copy_redirect(url: str) -> str:
    """A browser on another machine: consent, then copy the address it failed to open."""
    return oauth_browser.redirect_target(url)


def stored_secret(env: dict[str, str], name: str) -> dict[str, Any]:
    """The decrypted secret, read the way LEAP reads it (for assertions only)."""
    from leap.config import load_settings
    from leap.context import Runtime, open_context
    from leap.db.scope import Scope
    from leap.services import credentials

    old = dict(os.environ)
    os.environ.update(env)
    try:
        runtime = Runtime.from_settings(load_settings())
        with open_context(runtime, Scope.system_scope()) as ctx:
            cred = ctx.repos.credentials.find(name=name)
            assert cred is not None
            secret = credentials.secret_of(ctx, cred)
        runtime.dispose()
        return secret
    finally:
        os.environ.clear()
        os.environ.update(old)


def credential_rows(env: dict[str, str]) -> list[dict[str, Any]]:
    res = leap_process("--json", "credentials", "list", env=env)
    assert res.code == 0, res.stderr
    rows: list[dict[str, Any]] = json.loads(res.stdout)
    return rows


@pytest.fixture
def base_env(leap_env: dict[str, str]) -> dict[str, str]:
    env = dict(leap_env)
    res = leap_here("init", "--yes", env=env)
    assert res.code == 0, res.stderr
    # No display, no BROWSER: LEAP must not try to start a browser unless a test says so.
    env["DISPLAY"] = ""
    env["WAYLAND_DISPLAY"] = ""
    env["BROWSER"] = ""
    return env


# ---------------------------------------------------------------------------------------------
# YouTube


@pytest.fixture
def google(
    base_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[FakeYouTube, dict[str, str], Path]]:
    fake = FakeYouTube()
    with serve(fake.handler) as base:
        env = {
            **base_env,
            "LEAP_YOUTUBE__API_BASE_URL": base + "/youtube/v3",
            "LEAP_YOUTUBE__UPLOAD_BASE_URL": base + "/upload/youtube/v3",
            "LEAP_YOUTUBE__TOKEN_URI": base + "/token",
            "LEAP_YOUTUBE__DEVICE_AUTH_URI": base + "/device/code",
            "LEAP_YOUTUBE__REVOKE_URI": base + "/revoke",
        }
        secrets_file = tmp_path / "client_secret.json"
        secrets_file.write_text(
            json.dumps(
                {
                    "installed": {
                        "client_id": fake.client_id,
                        "client_secret": fake.client_secret,
                        "auth_uri": base + "/o/oauth2/auth",
                        "token_uri": base + "/token",
                        "redirect_uris": ["http://localhost"],
                    }
                }
            )
        )
        yield fake, env, secrets_file


def test_youtube_loopback_with_a_browser(google: tuple[FakeYouTube, dict[str, str], Path]) -> None:
    fake, env, secrets_file = google
    # Python's webbrowser runs $BROWSER: here a script that consents and follows the redirect.
    env = {**env, "BROWSER": f"{sys.executable} {BROWSER_SCRIPT} %s"}
    res = leap_process(
        "oauth",
        "youtube",
        "yt",
        "--client-secrets",
        str(secrets_file),
        "--no-captions",
        env=env,
    )
    assert res.code == 0, res.stderr
    assert "connected youtube credential 'yt' to channel 'Fake Channel'" in res.stderr
    query = fake.last_authorize
    assert query["code_challenge_method"] == "S256" and query["access_type"] == "offline"
    assert query["redirect_uri"].startswith("http://127.0.0.1:")
    assert set(query["scope"].split()) == {UPLOAD, YOUTUBE}
    secret = stored_secret(env, "yt")
    assert set(secret) >= {"client_id", "client_secret", "refresh_token", "token_uri", "scopes"}
    assert secret["refresh_token"] not in res.stdout + res.stderr
    [row] = credential_rows(env)
    assert row["kind"] == "youtube" and row["public"]["channel"] == "Fake Channel"


def test_youtube_headless_paste_and_reauth_in_place(
    google: tuple[FakeYouTube, dict[str, str], Path],
) -> None:
    fake, env, secrets_file = google
    args = ["oauth", "youtube", "yt", "--client-secrets", str(secrets_file), "--no-browser"]
    first = run_oauth([*args, "--captions"], env, copy_redirect)
    assert first.code == 0, first.stderr
    assert fake.last_authorize["scope"] == FORCE_SSL
    refresh_1 = stored_secret(env, "yt")["refresh_token"]
    # The same NAME again re-authenticates in place (a preset using it keeps working).
    again = run_oauth([*args, "--captions"], env, copy_redirect)
    assert again.code == 0, again.stderr
    assert "re-authenticated youtube credential 'yt'" in again.stderr
    assert stored_secret(env, "yt")["refresh_token"] != refresh_1
    assert len(credential_rows(env)) == 1


def test_youtube_paste_of_the_bare_code(google: tuple[FakeYouTube, dict[str, str], Path]) -> None:
    _fake, env, secrets_file = google

    def code_only(url: str) -> str:
        return parse_qs(urlsplit(copy_redirect(url)).query)["code"][0]

    args = ["oauth", "youtube", "yt", "--client-secrets", str(secrets_file), "--no-browser"]
    res = run_oauth([*args, "--no-captions"], env, code_only)
    assert res.code == 0, res.stderr


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("deny", 1, "consent was denied"),
        ("wrong-state", 1, "different state"),
        ("junk", 2, "neither the redirect URL nor an authorisation code"),
        ("not-redirect", 2, "not the redirect"),
        ("granular", 1, "but not"),
    ],
)
def test_youtube_bad_answers_store_nothing(
    google: tuple[FakeYouTube, dict[str, str], Path], case: str, code: int, message: str
) -> None:
    fake, env, secrets_file = google

    def act(url: str) -> str:
        if case == "deny":
            fake.consent = "deny"
        if case == "granular":
            fake.grant_only = {UPLOAD}
        target = copy_redirect(url)
        if case == "wrong-state":
            parts = urlsplit(target)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            query["state"] = "someone-elses-state"
            return parts._replace(query=urlencode(query)).geturl()
        if case == "junk":
            return "hello world, this is not it"
        if case == "not-redirect":
            return "http://127.0.0.1:1/?foo=bar"
        return target

    args = ["oauth", "youtube", "yt", "--client-secrets", str(secrets_file), "--no-browser"]
    res = run_oauth([*args, "--no-captions"], env, act)
    assert res.code == code, res.stderr
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) <= 6  # the prompts and one error line
    assert "Traceback" not in res.stderr
    assert credential_rows(env) == []


def test_youtube_code_used_twice(google: tuple[FakeYouTube, dict[str, str], Path]) -> None:
    _fake, env, secrets_file = google
    codes: list[str] = []

    def keep_code(url: str) -> str:
        target = copy_redirect(url)
        codes.append(parse_qs(urlsplit(target).query)["code"][0])
        return target

    args = ["oauth", "youtube", "yt", "--client-secrets", str(secrets_file), "--no-browser"]
    assert run_oauth([*args, "--no-captions"], env, keep_code).code == 0
    before = stored_secret(env, "yt")
    # A second run given the first run's code (pasted again): Google has spent it.
    res = run_oauth([*args, "--no-captions"], env, lambda _url: codes[0])
    assert res.code == 1 and "used already, expired" in res.stderr, res.stderr
    assert stored_secret(env, "yt") == before


def test_youtube_client_secrets_of_the_wrong_kind(
    google: tuple[FakeYouTube, dict[str, str], Path], tmp_path: Path
) -> None:
    _fake, env, _ = google
    web = tmp_path / "web.json"
    web.write_text(json.dumps({"web": {"client_id": "a", "client_secret": "b"}}))
    res = leap_process("oauth", "youtube", "yt", "--client-secrets", str(web), env=env)
    assert res.code == 2 and "Web application client" in res.stderr
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    res = leap_process("oauth", "youtube", "yt", "--client-secrets", str(junk), env=env)
    assert res.code == 2 and "not JSON" in res.stderr
    assert credential_rows(env) == []


def test_youtube_port_in_use(google: tuple[FakeYouTube, dict[str, str], Path]) -> None:
    _fake, env, secrets_file = google
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = leap_process(
            "oauth",
            "youtube",
            "yt",
            "--client-secrets",
            str(secrets_file),
            "--no-browser",
            "--port",
            str(port),
            env=env,
        )
    assert res.code == 2 and f"port {port} on 127.0.0.1 is in use" in res.stderr
    assert credential_rows(env) == []


def test_youtube_timeout(google: tuple[FakeYouTube, dict[str, str], Path]) -> None:
    _fake, env, secrets_file = google
    res = leap_process(
        "oauth",
        "youtube",
        "yt",
        "--client-secrets",
        str(secrets_file),
        "--timeout",
        "1",
        env=env,
    )
    assert res.code == 1 and "no answer from the browser within 1 s" in res.stderr
    assert credential_rows(env) == []


def test_youtube_device_flow(google: tuple[FakeYouTube, dict[str, str], Path]) -> None:
    fake, env, secrets_file = google
    fake.auto_approve_after_polls = 1
    fake.device_interval = 0
    res = leap_process(
        "oauth",
        "youtube",
        "yt",
        "--client-secrets",
        str(secrets_file),
        "--device",
        "--no-captions",
        env=env,
    )
    assert res.code == 0, res.stderr
    assert "enter the code" in res.stderr
    assert stored_secret(env, "yt")["scopes"] == [YOUTUBE]
    # Captions need force-ssl, which Google's device grant does not allow: refused up front.
    res = leap_process(
        "oauth",
        "youtube",
        "yt2",
        "--client-secrets",
        str(secrets_file),
        "--device",
        "--captions",
        env=env,
    )
    assert res.code == 2 and "device flow cannot grant youtube.force-ssl" in res.stderr


# ---------------------------------------------------------------------------------------------
# VK and Zoom


@pytest.fixture
def vk_env(base_env: dict[str, str]) -> Iterator[tuple[FakeVK, dict[str, str]]]:
    fake = FakeVK()
    with serve(fake.handler) as base:
        yield (
            fake,
            {
                **base_env,
                "LEAP_VK__ID_BASE_URL": base,
                "LEAP_VK__API_BASE_URL": base + "/method",
            },
        )


def test_vk_id_code_flow_with_pkce_and_device_id(vk_env: tuple[FakeVK, dict[str, str]]) -> None:
    fake, env = vk_env
    res = run_oauth(
        ["oauth", "vk", "vk-main", "--client-id", fake.client_id, "--no-browser"],
        env,
        copy_redirect,
    )
    assert res.code == 0, res.stderr
    assert fake.last_authorize["code_challenge_method"] == "S256"
    secret = stored_secret(env, "vk-main")
    assert secret["device_id"].startswith("dev-") and secret["refresh_token"]
    assert secret["client_id"] == fake.client_id
    assert secret["refresh_token"] not in res.stdout + res.stderr


def test_vk_pasted_token_fallback(vk_env: tuple[FakeVK, dict[str, str]]) -> None:
    fake, env = vk_env
    token = fake.issue_tokens()["access_token"]
    url = f"https://oauth.vk.com/blank.html#access_token={token}&expires_in=0&user_id=1"
    proc = subprocess.run(
        [sys.executable, "-m", "leap.cli", "oauth", "vk", "vk-legacy", "--token"],
        env={**os.environ, **env},
        input=url + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert token not in proc.stdout + proc.stderr
    assert stored_secret(env, "vk-legacy")["access_token"] == token


@pytest.fixture
def zoom_env(base_env: dict[str, str]) -> Iterator[tuple[FakeZoom, dict[str, str]]]:
    fake = FakeZoom()
    with serve(fake.handler) as base:
        yield (
            fake,
            {
                **base_env,
                "LEAP_ZOOM__OAUTH_BASE_URL": base,
                "LEAP_ZOOM__API_BASE_URL": base + "/v2",
                "ZOOM_SECRET": fake.client_secret,
            },
        )


def test_zoom_user_oauth_with_a_fixed_port(zoom_env: tuple[FakeZoom, dict[str, str]]) -> None:
    fake, env = zoom_env
    port = free_port()
    env = {
        **env,
        "LEAP_OAUTH__REDIRECT_PORT": str(port),
        "BROWSER": f"{sys.executable} {BROWSER_SCRIPT} %s",
    }
    res = leap_process(
        "oauth",
        "zoom",
        "zoom-me",
        "--client-id",
        fake.client_id,
        "--client-secret-env",
        "ZOOM_SECRET",
        env=env,
    )
    assert res.code == 0, res.stderr
    assert fake.last_authorize["redirect_uri"] == f"http://127.0.0.1:{port}/"
    assert "host@example.com" in res.stderr
    # The new credential syncs: a source on it lists recordings through the refreshed token.
    assert leap_process("credentials", "test", "zoom-me", env=env).code == 0


def test_zoom_denied_consent(zoom_env: tuple[FakeZoom, dict[str, str]]) -> None:
    fake, env = zoom_env
    fake.consent = "deny"
    res = run_oauth(
        [
            "oauth",
            "zoom",
            "zoom-me",
            "--client-id",
            fake.client_id,
            "--client-secret-env",
            "ZOOM_SECRET",
            "--no-browser",
        ],
        env,
        copy_redirect,
    )
    assert res.code == 1 and "consent was denied" in res.stderr
    assert credential_rows(env) == []
