"""Master key sources, encryption, wrong keys and rotation."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from leap.context import Runtime, open_context
from leap.db import models as m
from leap.db.scope import Scope
from leap.domain import Role
from leap.errors import ConfigError
from leap.secrets import Vault, create_key_file, key_file_path, load_keys
from tests.conftest import make_user


def test_env_key_wins(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    src = load_keys(tmp_path, {"LEAP_SECRET_KEY": key})
    assert src.origin == "env" and src.keys == (key.encode(),)


def test_key_file_created_private_and_reused(tmp_path: Path) -> None:
    first = load_keys(tmp_path, {}, create=True)
    path = key_file_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.origin == f"file:{path}"
    assert load_keys(tmp_path, {}).keys == first.keys
    create_key_file(path)  # an existing key is never overwritten
    assert load_keys(tmp_path, {}).keys == first.keys


def test_missing_key_without_create_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no secret key"):
        load_keys(tmp_path, {})


def test_world_readable_key_file_refused(tmp_path: Path) -> None:
    load_keys(tmp_path, {}, create=True)
    key_file_path(tmp_path).chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_keys(tmp_path, {})


def test_malformed_env_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a valid Fernet key"):
        load_keys(tmp_path, {"LEAP_SECRET_KEY": "hunter2"})


def test_round_trip_and_wrong_key() -> None:
    vault = Vault((Fernet.generate_key(),))
    token = vault.encrypt({"client_secret": "s3cret"})
    assert b"s3cret" not in token
    assert vault.decrypt(token) == {"client_secret": "s3cret"}
    with pytest.raises(ConfigError, match="not the one they were encrypted with"):
        Vault((Fernet.generate_key(),)).decrypt(token)


def _store(runtime: Runtime, scope: Scope, vault: Vault, name: str, secret: str) -> None:
    with open_context(runtime, scope) as ctx:
        ctx.repos.credentials.add(
            m.Credential(name=name, kind="fireworks", secret=vault.encrypt({"api_key": secret}))
        )


def _secrets(runtime: Runtime, vault: Vault) -> dict[str, str]:
    with open_context(runtime, Scope.system_scope()) as ctx:
        return {c.name: vault.decrypt(c.secret)["api_key"] for c in ctx.repos.credentials.list()}


def test_rotate_with_key_file(
    leap_env: dict[str, str], runtime: Runtime, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEAP_SECRET_KEY")
    data = Path(leap_env["LEAP_DATA_DIR"])
    old = Vault(load_keys(data, {}, create=True).keys)
    admin = make_user(runtime, "root", Role.ADMIN)
    alice = make_user(runtime, "alice")
    _store(runtime, admin, old, "a", "key-a")
    _store(runtime, alice, old, "b", "key-b")

    res = cli("--user", "alice", "secrets", "rotate")
    assert res.code == 2  # not an admin
    res = cli("--user", "root", "--json", "secrets", "rotate")
    assert res.code == 0, res.stderr
    assert res.json()["rotated"] == 2

    new = Vault(load_keys(data, {}).keys)
    assert len(load_keys(data, {}).keys) == 1  # the old key is gone from the file
    assert _secrets(runtime, new) == {"a": "key-a", "b": "key-b"}
    with pytest.raises(ConfigError):
        _secrets(runtime, old)
    assert stat.S_IMODE(key_file_path(data).stat().st_mode) == 0o600


def test_rotate_with_env_key_needs_new_and_old(
    leap_env: dict[str, str], runtime: Runtime, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_key = leap_env["LEAP_SECRET_KEY"]
    old = Vault((old_key.encode(),))
    admin = make_user(runtime, "root", Role.ADMIN)
    _store(runtime, admin, old, "a", "key-a")
    res = cli("secrets", "rotate")
    assert res.code == 6 and "NEW,OLD" in res.stderr
    new_key = Fernet.generate_key().decode()
    monkeypatch.setenv("LEAP_SECRET_KEY", f"{new_key},{old_key}")
    assert cli("secrets", "rotate").code == 0
    assert _secrets(runtime, Vault((new_key.encode(),))) == {"a": "key-a"}
