"""Alembic, driven from code: upgrade, current revision, and the at-head check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from leap.db.engine import database_error
from leap.errors import ConfigError


def migrations_dir() -> Path:
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_migrations"  # wheel install: force-included by pyproject
    if packaged.is_dir():
        return packaged
    source = here.parent.parent / "migrations"  # editable install / source checkout
    if source.is_dir():
        return source
    raise ConfigError("LEAP's migrations are missing from this installation")


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as exc:
        raise database_error(str(engine.url), exc) from None


def upgrade(engine: Engine, revision: str = "head") -> None:
    try:
        command.upgrade(alembic_config(engine), revision)
    except OperationalError as exc:
        raise database_error(str(engine.url), exc) from None


def require_head(engine: Engine) -> None:
    current = current_revision(engine)
    head = head_revision(engine)
    if current is None:
        raise ConfigError("the database is empty: run 'leap init' (or 'leap db upgrade')")
    if current != head:
        raise ConfigError(
            f"the database schema is at {current}, this LEAP needs {head}: run 'leap db upgrade'"
        )
