"""The Huey instance, built from settings: SQLite (own file) by default, PostgreSQL or Redis
when several hosts share the work. Messages are nudges carrying ids; the database is the
truth (Huey deletes a message before running it)."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from leap.config import Settings
from leap.db.engine import create_private_file
from leap.errors import ConfigError
from leap.specs.lanes import IO, queue_name

if TYPE_CHECKING:
    from huey import Huey


def _import_huey(settings: Settings) -> ModuleType:
    """Import Huey without the client libraries of servers this install never talks to.

    huey.storage imports redis and psycopg whenever they are installed (both are LEAP
    dependencies): about 40 MB of RSS and 0.15 s in every process that queues work, leapd
    included, though the embedded default uses neither. Each unused one is hidden for the
    length of that import only (a None entry in sys.modules makes it raise ImportError, which
    Huey handles); afterwards both import normally again.
    """
    if "huey.storage" not in sys.modules:
        unused = []
        if settings.queue.backend != "redis":
            unused.append("redis")
        postgres = settings.queue.backend == "postgres"
        if not postgres and not settings.database_url.startswith("postgresql"):
            unused.append("psycopg")
        hidden = [name for name in unused if name not in sys.modules]
        for name in hidden:
            sys.modules[name] = None  # type: ignore[assignment]
        try:
            importlib.import_module("huey.storage")
        finally:
            for name in hidden:
                if sys.modules.get(name) is None:
                    del sys.modules[name]
    return importlib.import_module("huey")


def make_huey(settings: Settings, lane: str = IO) -> Huey:
    """The Huey of one lane (specs/lanes.py): the same backend, a queue name of its own."""
    huey = _import_huey(settings)
    MemoryHuey, PostgresHuey = huey.MemoryHuey, huey.PostgresHuey
    RedisHuey, SqliteHuey = huey.RedisHuey, huey.SqliteHuey
    q = settings.queue.model_copy(update={"name": queue_name(settings.queue.name, lane)})
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
