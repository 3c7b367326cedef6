"""`leap` as operators use it: init, users, identity, errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKEND, leap_process


def init(cli: Any) -> None:
    res = cli("init", "--admin", "root", "--yes")
    assert res.code == 0, res.stderr


def test_init_then_user_add_then_whoami(leap_env: dict[str, str], cli: Any) -> None:
    init(cli)
    assert Path(leap_env["LEAP_CONFIG"]).exists()  # a commented config was written
    res = cli("user", "add", "alice")
    assert res.code == 0, res.stderr
    res = cli("--user", "alice", "whoami", "--json")
    assert res.code == 0, res.stderr
    me = res.json()
    assert me["name"] == "alice" and me["role"] == "user" and me["plan"] == "free"


def test_init_is_idempotent(leap_env: dict[str, str], cli: Any) -> None:
    init(cli)
    res = cli("--json", "init")
    assert res.code == 0, res.stderr
    assert res.json()["admin"] is None  # users exist: none created
    assert res.json()["config_written"] is False


def test_global_options_may_follow_the_command(leap_env: dict[str, str], cli: Any) -> None:
    init(cli)
    res = cli("whoami", "--json", "--user", "root")
    assert res.code == 0 and res.json()["name"] == "root"


def test_identity_rules(
    leap_env: dict[str, str], cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    init(cli)
    assert cli("whoami", "--json").json()["name"] == "root"  # the only user
    assert cli("user", "add", "alice").code == 0
    res = cli("whoami")
    assert res.code == 2 and "several users" in res.stderr
    monkeypatch.setenv("LEAP_USER", "alice")
    assert cli("whoami", "--json").json()["name"] == "alice"
    res = cli("--user", "nobody", "whoami")
    assert res.code == 3 and "unknown user 'nobody'" in res.stderr


def test_non_admin_cannot_touch_others(leap_env: dict[str, str], cli: Any) -> None:
    init(cli)
    assert cli("user", "add", "alice").code == 0
    assert cli("--user", "root", "user", "add", "bob").code == 0
    for args in (
        ("user", "list"),
        ("user", "add", "eve"),
        ("user", "show", "bob"),
        ("user", "disable", "bob"),
        ("user", "delete", "bob", "--yes"),
        ("user", "set-plan", "bob", "pro"),
        ("user", "set-timezone", "bob", "Europe/Moscow"),
    ):
        res = cli("--user", "alice", *args)
        assert res.code == 2, (args, res.stderr)
        assert "admin" in res.stderr
        assert "Traceback" not in res.stderr
    # ...but may change their own timezone.
    res = cli("--user", "alice", "--json", "user", "set-timezone", "alice", "Asia/Tokyo")
    assert res.code == 0 and res.json()["timezone"] == "Asia/Tokyo"


def test_admin_manages_users(leap_env: dict[str, str], cli: Any) -> None:
    init(cli)
    assert cli("user", "add", "alice", "--timezone", "Europe/Moscow", "--plan", "plus").code == 0
    rows = cli("--user", "root", "--json", "user", "list").json()
    assert [(r["name"], r["plan"], r["timezone"]) for r in rows] == [
        ("alice", "plus", "Europe/Moscow"),
        ("root", "enterprise", "UTC"),
    ]
    assert cli("--user", "root", "user", "set-plan", "alice", "pro").code == 0
    assert cli("--user", "root", "user", "disable", "alice").code == 0
    res = cli("--user", "alice", "whoami")
    assert res.code == 2 and "disabled" in res.stderr
    assert cli("--user", "root", "user", "enable", "alice").code == 0
    assert cli("--user", "alice", "--json", "whoami").json()["plan"] == "pro"
    res = cli("--user", "root", "user", "delete", "alice")
    assert res.code == 2 and "--yes" in res.stderr
    assert cli("--user", "root", "user", "delete", "alice", "--yes").code == 0
    assert cli("--user", "alice", "whoami").code == 3


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("user", "add", "Bad Name"), 2, "invalid user name"),
        (("user", "add", "carol", "--timezone", "Mars/Olympus"), 2, "unknown timezone"),
        (("user", "add", "carol", "--plan", "platinum"), 3, "plan 'platinum' not found"),
        (("user", "add", "root"), 7, "already exists"),
        (("user", "show", "ghost"), 3, "unknown user"),
        (("user", "delete", "root", "--yes"), 2, "yourself"),
        (("user", "frobnicate"), 2, "No such command"),
    ],
)
def test_bad_input_is_one_line_and_exit_code(
    leap_env: dict[str, str], cli: Any, args: tuple[str, ...], code: int, fragment: str
) -> None:
    init(cli)
    res = cli(*args)
    assert res.code == code, res.stderr
    assert fragment in res.stderr
    assert "Traceback" not in res.stderr


def test_database_behind_head_is_refused(
    leap_env: dict[str, str], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "data" / "empty.db"
    monkeypatch.setenv("LEAP_DATABASE__URL", f"sqlite:///{empty}")
    res = cli("whoami")
    assert res.code == 6 and "leap init" in res.stderr
    cur = cli("--json", "db", "current").json()
    assert cur["current"] is None and cur["at_head"] is False
    assert cli("db", "upgrade").code == 0
    assert cli("--json", "db", "current").json()["at_head"] is True


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("not a url", "not a valid database URL"),
        ("mysql://x@localhost/db", "unsupported backend 'mysql'"),
        ("postgresql://leap:hunter2@127.0.0.1:1/leap", "database postgresql+psycopg://leap:***@"),
    ],
)
def test_bad_database_url(
    leap_env: dict[str, str], cli: Any, monkeypatch: pytest.MonkeyPatch, url: str, fragment: str
) -> None:
    monkeypatch.setenv("LEAP_DATABASE__URL", url)
    res = cli("whoami")
    assert res.code == 6
    assert fragment in res.stderr
    assert "hunter2" not in res.stderr


def test_malformed_config_exit_6(leap_env: dict[str, str], cli: Any) -> None:
    Path(leap_env["LEAP_CONFIG"]).write_text("[worker]\ncount = \n")
    res = cli("whoami")
    assert res.code == 6 and "malformed TOML" in res.stderr and "Traceback" not in res.stderr


def test_world_readable_database_is_refused(leap_env: dict[str, str], cli: Any) -> None:
    if BACKEND != "sqlite":
        pytest.skip("file permissions concern the SQLite database only")
    init(cli)
    db = Path(leap_env["LEAP_DATA_DIR"]) / "leap.db"
    db.chmod(0o644)
    res = cli("whoami")
    assert res.code == 6 and "chmod 600" in res.stderr


def test_debug_shows_traceback(leap_env: dict[str, str]) -> None:
    env = {**leap_env, "LEAP_DATABASE__URL": "mysql://x@y/z"}
    plain = leap_process("whoami", env=env)
    assert plain.code == 6 and "Traceback" not in plain.stderr
    debug = leap_process("--debug", "whoami", env=env)
    assert debug.code != 0 and "Traceback" in debug.stderr


def test_subprocess_round_trip(leap_env: dict[str, str]) -> None:
    assert leap_process("init", "--yes", env=leap_env).code == 0
    assert leap_process("user", "add", "alice", env=leap_env).code == 0
    res = leap_process("--user", "alice", "whoami", "--json", env=leap_env)
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["name"] == "alice"
    ver = leap_process("--version", env=leap_env)
    assert ver.code == 0 and ver.stdout.startswith("leap ")


def test_doctor(leap_env: dict[str, str], cli: Any) -> None:
    init(cli)
    res = cli("--json", "doctor")
    assert res.code == 0, res.stderr
    checks = {c["check"]: c for c in res.json()}
    assert checks["database"]["ok"] and checks["secret key"]["ok"] and checks["ffmpeg"]["ok"]
    assert checks["leapd"]["ok"] is False  # no daemon in this test: reported, not fatal


def test_doctor_reports_a_broken_database(
    leap_env: dict[str, str], cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LEAP_DATABASE__URL", f"sqlite:///{tmp_path}/data/nothing.db")
    res = cli("--json", "doctor")
    assert res.code == 1
    checks = {c["check"]: c for c in res.json()}
    assert checks["database"]["ok"] is False and "leap db upgrade" in checks["database"]["detail"]
