"""Secrets never leave LEAP in any form: raw, base64 (as HTTP Basic auth sends them),
URL-encoded, or inside an echoed Authorization header; on stderr, in logs or in the database."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

from leap.context import Runtime, open_context
from leap.db.models import Credential
from leap.db.scope import Scope
from leap.domain import CredentialKind, CredentialStatus
from leap.logs import (
    REDACTED,
    RedactingFilter,
    SecretRegistry,
    redact,
    register_model_secrets,
    register_secret,
)
from leap.secrets import Vault
from leap.services import credentials
from tests.conftest import leap_here, leap_process, make_user
from tests.fakes.server import serve
from tests.fakes.zoom import FakeZoom

# URL-special characters, so the URL-encoded form differs from the raw one.
SECRET = "s3cr3t/with+special=chars&more"
CLIENT_ID = "zoom-client-id"


def forms(secret: str, user: str | None = None) -> list[str]:
    """Every encoding of `secret` (and of the Basic pair) a leak could take."""
    values = [secret] + ([f"{user}:{secret}"] if user else [])
    out: list[str] = []
    for value in values:
        raw = value.encode()
        for enc in (base64.b64encode, base64.urlsafe_b64encode):
            out += [enc(raw).decode(), enc(raw).decode().rstrip("=")]
        out += [value, quote(value, safe=""), quote(value), quote_plus(value)]
        out.append(quote(value, safe="").lower())
    return out


def leaks(text: str, secret: str = SECRET, user: str | None = CLIENT_ID) -> list[str]:
    return [f for f in forms(secret, user) if f in text]


# -- by value --------------------------------------------------------------------------------


@pytest.fixture
def registry() -> SecretRegistry:
    reg = SecretRegistry()
    reg.add(SECRET, user=CLIENT_ID)
    return reg


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param(SECRET, id="raw"),
        pytest.param(base64.b64encode(SECRET.encode()).decode(), id="b64"),
        pytest.param(base64.b64encode(SECRET.encode()).decode().rstrip("="), id="b64-nopad"),
        pytest.param(base64.urlsafe_b64encode(SECRET.encode()).decode(), id="urlsafe"),
        pytest.param(
            base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="), id="urlsafe-nopad"
        ),
        pytest.param(base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode(), id="pair"),
        pytest.param(
            base64.urlsafe_b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode().rstrip("="),
            id="pair-urlsafe-nopad",
        ),
        # A client id redaction was never told about: the secret's part still gives it away.
        pytest.param(base64.b64encode(f"other-id:{SECRET}".encode()).decode(), id="pair-unknown"),
        pytest.param(base64.b64encode(f"ab:{SECRET}xyz".encode()).decode(), id="embedded"),
        pytest.param(quote(SECRET, safe=""), id="url"),
        pytest.param(quote(SECRET, safe="").lower(), id="url-lowercase-hex"),
        pytest.param(quote(SECRET), id="url-keep-slash"),
        pytest.param(quote_plus(SECRET), id="url-plus"),
        pytest.param(json.dumps(SECRET), id="json"),
    ],
)
def test_every_encoding_of_a_known_secret_is_redacted(
    registry: SecretRegistry, encoded: str
) -> None:
    text = f"zoom said: bad client {encoded}, try again"
    out = redact(text, registry)
    assert REDACTED in out
    assert not leaks(out, user="other-id") and not leaks(out)
    assert out.startswith("zoom said: bad client ") and out.endswith(", try again")


def test_ordinary_text_is_left_alone(registry: SecretRegistry) -> None:
    text = "basic settings: 3 recordings, Authorization required, see https://zoom.us/x"
    assert redact(text, registry) == text


def test_short_values_are_not_registered() -> None:
    reg = SecretRegistry()
    reg.add("abc")
    assert len(reg) == 0
    assert reg.redact("abc abc") == "abc abc"


@given(
    secret=st.text(st.characters(min_codepoint=33, max_codepoint=0x24F), min_size=8, max_size=40),
    user=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=20),
    before=st.text(max_size=10),
)
def test_basic_auth_of_any_pair_is_redacted(secret: str, user: str, before: str) -> None:
    reg = SecretRegistry()
    reg.add(secret)  # the client id is not known: only the secret
    token = base64.b64encode(f"{user}:{secret}".encode()).decode()
    for enc in (token, token.rstrip("="), token.replace("+", "-").replace("/", "_")):
        out = reg.redact(f"{before} {enc} end")
        assert enc not in out
        assert secret not in out


# -- by pattern ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Authorization: Basic Zm9vOmJhcg==", "Authorization: Basic "),
        ("{'authorization': 'Basic Zm9vOmJhcg=='}", "{'authorization': 'Basic "),
        ('"Authorization": "Bearer abc.def.ghi"', '"Authorization": "Bearer '),
        ("authorization=Token qwertyuiop", "authorization=Token "),
        ("Proxy-Authorization: Basic Zm9vOmJhcg", "Proxy-Authorization: Basic "),
        ("header was basic Zm9vOmJhcg== for you", "header was basic "),
    ],
)
def test_auth_headers_are_redacted_without_knowing_the_secret(text: str, kept: str) -> None:
    out = redact(text, SecretRegistry())
    assert out.startswith(kept + REDACTED)
    assert "Zm9vOmJhcg" not in out and "abc.def" not in out and "qwerty" not in out


def test_vault_registers_what_it_decrypts() -> None:
    key = Fernet.generate_key()
    secret, access = "decrypted-secret-" + key.decode()[:8], "at-" + key.decode()[8:24]
    payload = {"client_id": "cid-vault", "client_secret": secret, "access_token": access}
    # Encrypted elsewhere (another process): this one learns the secrets only by decrypting.
    token = Fernet(key).encrypt(json.dumps(payload).encode())
    basic = base64.b64encode(f"cid-vault:{secret}".encode()).decode()
    text = f"{basic} {quote(secret, safe='')} {access}"
    assert redact(text) == text
    Vault((key,)).decrypt(token)
    assert redact(text) == " ".join([REDACTED] * 3)


def test_settings_secrets_can_be_registered() -> None:
    class Section(BaseModel):
        api_key: SecretStr = SecretStr("")

    class Root(BaseModel):
        llm: Section = Section()
        extra: list[Section] = []

    key, other = "sk-settings-" + Fernet.generate_key().decode()[:12], "sk-listed-0123456789"
    text = f"llm said {quote_plus(key)} / {base64.b64encode(other.encode()).decode()}"
    assert redact(text) == text
    register_model_secrets(
        Root(llm=Section(api_key=SecretStr(key)), extra=[Section(api_key=SecretStr(other))])
    )
    assert redact(text) == f"llm said {REDACTED} / {REDACTED}"


def test_log_records_are_redacted_by_value(caplog: pytest.LogCaptureFixture) -> None:
    secret = "log-secret-" + Fernet.generate_key().decode()[:10]
    register_secret(secret, user="log-client")
    record = logging.LogRecord(
        "leap.x", logging.WARNING, __file__, 1, "zoom answered %s", (quote(secret),), None
    )
    RedactingFilter().filter(record)
    assert secret not in record.getMessage() and quote(secret) not in record.getMessage()


def test_mark_dead_stores_the_redacted_reason(runtime: Runtime) -> None:
    scope = make_user(runtime, "alice")
    secret = "stored-secret-" + Fernet.generate_key().decode()[:10]
    basic = base64.b64encode(f"cid:{secret}".encode()).decode()
    with open_context(runtime, scope) as ctx:
        cred = credentials.add_credential(
            ctx,
            "z",
            CredentialKind.ZOOM_S2S,
            {"account_id": "acc", "client_id": "cid", "client_secret": secret},
        )
        credentials.mark_dead(ctx, cred, f"zoom: HTTP 401 ({basic}; {quote(secret, safe='')})")
    with open_context(runtime, scope) as ctx:
        stored = ctx.repos.credentials.require_name("z").status_reason or ""
    assert stored.startswith("zoom: HTTP 401 (")
    assert basic not in stored and secret not in stored and "stored-secret" not in stored


# -- end to end: a token endpoint that echoes the Authorization header -----------------------


@pytest.fixture
def zoom() -> Iterator[tuple[FakeZoom, str]]:
    fake = FakeZoom(client_id=CLIENT_ID, client_secret=SECRET)
    with serve(fake.handler) as base:
        yield fake, base


CLIENT = ("--client-id", CLIENT_ID, "--client-secret-env", "ZOOM_SECRET")


def _install(env: dict[str, str], base: str) -> dict[str, str]:
    env = {
        **env,
        "LEAP_ZOOM__API_BASE_URL": f"{base}/v2",
        "LEAP_ZOOM__OAUTH_BASE_URL": base,
        "ZOOM_SECRET": SECRET,
    }
    for args in (
        ("init", "--yes"),
        ("credentials", "add", "zoom-s2s", "zoom-main", "--account-id", "zoom-account-id", *CLIENT),
        ("source", "add", "zoom", "uni", "--credential", "zoom-main", "--zoom-user", "me@x.io"),
    ):
        res = leap_here(*args, env=env)
        assert res.code == 0, (args, res.stderr)
    return env


@pytest.mark.parametrize("status", [400, 401])
def test_an_echoed_authorization_header_never_leaks(
    leap_env: dict[str, str],
    zoom: tuple[FakeZoom, str],
    runtime: Runtime,
    tmp_path: Path,
    status: int,
) -> None:
    fake, base = zoom
    env = _install(leap_env, base)
    fake.echo_authorization = status

    res = leap_process("credentials", "test", "zoom-main", env=env)
    assert res.code == 5, res.stderr  # the credential is dead
    assert "invalid_client" in res.stderr  # the provider's answer is still shown...
    assert not leaks(res.stderr + res.stdout), res.stderr  # ...without the secret

    synced = leap_process("--json", "sync", "--from", "2026-01-01", "--to", "2026-01-31", env=env)
    assert "invalid_client" in synced.stdout + synced.stderr
    assert not leaks(synced.stdout + synced.stderr), synced.stdout + synced.stderr

    listed = leap_process("credentials", "list", env=env)
    as_json = leap_process("--json", "credentials", "list", env=env)
    sources = leap_process("--json", "source", "list", env=env)
    assert listed.code == as_json.code == sources.code == 0, listed.stderr
    [cred] = as_json.json()
    assert cred["status"] == CredentialStatus.NEEDS_REAUTH.value
    assert "invalid_client" in cred["status_reason"]
    for out in (listed, as_json, sources):
        assert not leaks(out.stdout + out.stderr), out.stdout

    # What the database holds, read past every view.
    with open_context(runtime, Scope.system_scope()) as ctx:
        reasons = [c.status_reason or "" for c in ctx.session.query(Credential)]
    assert reasons and all("invalid_client" in r and not leaks(r) for r in reasons), reasons
