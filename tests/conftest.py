"""Test fixtures: a real database built by the real migrations, on SQLite (default) or
PostgreSQL (LEAP_TEST_DB=postgres), and helpers to run `leap` in-process or as a process.

SQLite: the schema is migrated once into a template file that each test copies.
PostgreSQL: a scratch database is created per run, migrated once, emptied before each test,
and dropped at the end.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from leap.cli.app import main as leap_main
from leap.config import Settings, load_settings
from leap.context import Runtime, open_context
from leap.db.engine import make_engine
from leap.db.migrate import upgrade
from leap.db.models import Base
from leap.db.scope import Scope
from leap.domain import Role
from leap.services import users

PG_ADMIN_URL = os.environ.get("LEAP_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKEND = os.environ.get("LEAP_TEST_DB", "sqlite")
KEEP_TABLES = {"plans", "alembic_version"}


def pytest_report_header() -> str:
    return f"leap test database backend: {BACKEND}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL leg, run the tests that touch the database (every test that uses
    `db_template`, directly or through leap_env/runtime/cli...). Database-free tests give the
    same result on either leg and already ran on SQLite; LEAP_TEST_ALL=1 runs them again."""
    if BACKEND == "postgres" and not os.environ.get("LEAP_TEST_ALL"):
        keep, drop = [], []
        for item in items:
            (keep if "db_template" in getattr(item, "fixturenames", ()) else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
    # Long tests first: with two pytest-xdist workers, a 60 s test handed out last leaves one
    # worker idle for a minute at the end of the run. (A stable sort: the order is otherwise
    # unchanged.)
    items.sort(key=lambda item: not any(item.nodeid.startswith(p) for p in LONG_TESTS))


# The longest tests (`pytest --durations=40`), started first; see pytest_collection_modifyitems.
LONG_TESTS = (
    "tests/chaos/",
    "tests/test_text_daemon.py::",
    "tests/test_chunking.py::test_three_hours",
    "tests/test_pipeline_daemon.py::",
    "tests/test_local_offline.py::",
    "tests/test_local_whisper.py::",
    "tests/test_sync_zoom.py::test_2000",
    "tests/test_sync_zoom.py::test_429",
    "tests/test_sync_zoom.py::test_rejected",
    "tests/test_sync_zoom.py::test_one_failing",
    "tests/test_redaction.py::test_an_echoed",
    "tests/test_local_chain.py::",
    "tests/test_publish_daemon.py::",
    "tests/test_cli.py::test_subprocess_round_trip",
    "tests/test_takeover.py::",
)


@pytest.fixture(scope="session")
def db_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database: SQLite template file path, or the PostgreSQL scratch URL."""
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("template") / "leap.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        engine.dispose()
        yield str(path)
        return
    if BACKEND != "postgres":
        raise pytest.UsageError(f"LEAP_TEST_DB must be sqlite or postgres, not {BACKEND}")
    name = f"leap_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        # A scratch database: a commit need not wait for the disk (the server is never
        # killed under a test; other sessions see every commit at once, as before).
        conn.execute(text(f'ALTER DATABASE "{name}" SET synchronous_commit TO off'))
    base, _ = PG_ADMIN_URL.rsplit("/", 1)
    url = f"{base}/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _empty_pg(url: str) -> None:
    """Every table back to empty, ids from 1. DELETE rather than TRUNCATE: TRUNCATE makes new
    files for each of two dozen tables (about half a second a test); a test leaves a few
    rows. One round trip."""
    engine = make_engine(url)
    tables = [t for t in reversed(Base.metadata.sorted_tables) if t.name not in KEEP_TABLES]
    sql = [f'DELETE FROM "{t.name}"' for t in tables]
    sql += [
        f"SELECT setval(pg_get_serial_sequence('\"{t.name}\"', '{pk.name}'), 1, false)"
        for t in tables
        for pk in t.primary_key.columns
        if pk.autoincrement in (True, "auto") and len(t.primary_key.columns) == 1
    ]
    sql.append("DROP TABLE IF EXISTS huey_kv, huey_schedule, huey_task, huey_counter")
    with engine.begin() as conn:
        conn.exec_driver_sql("; ".join(sql))
    engine.dispose()


@pytest.fixture
def leap_env(tmp_path: Path, db_template: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment of an isolated install: its own data dir, database and secret key."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    if BACKEND == "sqlite":
        db = data / "leap.db"
        shutil.copyfile(db_template, db)
        db.chmod(0o600)
        url = f"sqlite:///{db}"
    else:
        _empty_pg(db_template)
        url = db_template
    for key in list(os.environ):
        if key.startswith("LEAP_") and not key.startswith("LEAP_TEST_"):
            monkeypatch.delenv(key)
    env = {
        "LEAP_DATA_DIR": str(data),
        "LEAP_CONFIG": str(tmp_path / "leap.toml"),
        "LEAP_DATABASE__URL": url,
        "LEAP_SECRET_KEY": Fernet.generate_key().decode(),
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
def settings(leap_env: dict[str, str]) -> Settings:
    return load_settings()


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = Runtime.from_settings(settings)
    yield rt
    rt.dispose()


def make_user(runtime: Runtime, name: str, role: Role = Role.USER) -> Scope:
    with open_context(runtime, Scope.system_scope()) as ctx:
        user = users.create_user(ctx, name, role=role)
        return Scope.for_user(user.id, is_admin=role == Role.ADMIN)


def put_on_plan(runtime: Runtime, name: str, plan: str) -> None:
    """Move a user to another plan (e.g. `enterprise`, unlimited, where a test's volume is
    not about quotas)."""
    with open_context(runtime, Scope.system_scope()) as ctx:
        user = ctx.repos.users.require_name(name)
        user.plan_id = ctx.repos.plans.require_name(plan).id


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        import json

        return json.loads(self.stdout)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    """Run `leap ARGS` in this process (fast), returning code, stdout and stderr."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            leap_main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run


def leap_here(*args: str, env: dict[str, str]) -> CliResult:
    """Run `leap ARGS` in this process under `env`, for a test's set-up steps (init, adding
    credentials, sources, templates): a `leap` process spends about a second of CPU importing
    before it does anything, and those seconds were most of the suite's time. What a real
    process does (exit codes, output to pipes, environment, kill -9) is for leap_process."""
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                leap_main(list(args))
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return CliResult(code, out.getvalue(), err.getvalue())


def leap_process(*args: str, env: dict[str, str], timeout: float = 60) -> CliResult:
    """Run `leap ARGS` as a real subprocess, the way operators and scripts do."""
    full_env = {**os.environ, **env}
    proc = subprocess.run(
        [sys.executable, "-m", "leap.cli", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
