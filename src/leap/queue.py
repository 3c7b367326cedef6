"""The Huey instance, built from settings: SQLite (own file) by default, PostgreSQL or Redis
when several hosts share the work. Messages are nudges carrying ids; the database is the
truth (Huey deletes a message before running it)."""

from __future__ import annotations

from typing import Any

from huey import Huey, MemoryHuey, PostgresHuey, RedisHuey, SqliteHuey

from leap.config import Settings
from leap.db.engine import create_private_file
from leap.errors import ConfigError


def make_huey(settings: Settings) -> Huey:
    q = settings.queue
    common: dict[str, Any] = {"results": False, "utc": True}
    if q.backend == "sqlite":
        path = settings.queue_path
        if not path.parent.exists():
            raise ConfigError(f"queue directory {path.parent} does not exist (run leap init)")
        create_private_file(path)
        # timeout: SQLite's busy timeout in seconds, so workers wait instead of failing.
        return SqliteHuey(q.name, filename=str(path), timeout=30, **common)
    if q.backend == "postgres":
        dsn = q.url or _pg_dsn(settings.database_url)
        if not dsn:
            raise ConfigError(
                "queue.backend = 'postgres' needs queue.url or a PostgreSQL database.url"
            )
        return PostgresHuey(q.name, dsn=dsn, **common)
    if q.backend == "redis":
        if not q.url:
            raise ConfigError("queue.backend = 'redis' needs queue.url (redis://host:6379/0)")
        return RedisHuey(q.name, url=q.url, **common)
    return MemoryHuey(q.name, **common)


def _pg_dsn(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        return ""
    # SQLAlchemy's "postgresql+psycopg://" is not a libpq DSN.
    _, rest = database_url.split("://", 1)
    return "postgresql://" + rest
