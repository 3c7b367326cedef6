"""Engine creation (SQLite pragmas, clear connection errors) and schema-version checks."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import NullPool

from leap.errors import ConfigError


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's implicit transactions let SELECT-then-UPDATE race (docs/internals.md, "SQLite
    # transactions and claims"); we turn them off here and issue BEGIN IMMEDIATE ourselves in
    # `_sqlite_begin`.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # Every transaction takes the write lock up front: no read->write upgrade, so no
    # instant "database is locked" and no double claims across processes.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    try:
        u = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database.url is not a valid database URL: {redact_url(url)}") from None
    backend = u.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"database.url: unsupported backend '{backend}' (sqlite or postgresql)")
    kwargs: dict[str, Any] = {"echo": echo}
    if backend == "postgresql" and u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            if not path.parent.exists():
                raise ConfigError(
                    f"database directory {path.parent} does not exist (run leap init)"
                )
            _ensure_private(path)
            create_private_file(path)  # sqlite would create it world-readable
        # A short-lived CLI process gains nothing from pooling, and NullPool keeps SQLite
        # file handles from outliving a test's temporary directory.
        kwargs["poolclass"] = NullPool
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 5}
    try:
        engine = create_engine(u, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise ConfigError(f"database.url: {exc}") from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _ensure_private(path: Path) -> None:
    """Refuse a database other local users can read: it holds everyone's data."""
    if not path.exists():
        return
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}"
        )


def create_private_file(path: Path) -> None:
    """Create an empty file readable only by its owner, unless it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


def redact_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def database_error(url: str, exc: OperationalError) -> ConfigError:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    return ConfigError(f"database {redact_url(url)}: {reason}")
