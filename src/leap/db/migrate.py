"""Alembic, driven from code: upgrade, current revision, and the at-head check.

The at-head check runs on every command and when leapd starts, so it reads the revision
files and the alembic_version table itself: importing Alembic costs about 10 MB of RSS and
0.1 s, and only `leap init` and `leap db upgrade` need it. A test holds the two readings
equal to Alembic's own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import OperationalError

from leap.db.engine import database_error
from leap.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config

_REVISION = re.compile(r"^revision\b[^=\n]*=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\b[^=\n]*=\s*(.+)$", re.M)
_QUOTED = re.compile(r"['\"]([^'\"]+)['\"]")


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
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision(engine: Engine) -> str | None:
    """The newest revision of this release's migrations (one head: LEAP's history is linear)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in sorted((migrations_dir() / "versions").glob("*.py")):
        source = script.read_text(encoding="utf-8")
        revision = _REVISION.search(source)
        if revision is None:
            continue
        revisions.add(revision.group(1))
        down = _DOWN_REVISION.search(source)
        if down is not None:
            parents.update(_QUOTED.findall(down.group(1)))
    heads = revisions - parents
    if len(heads) == 1:
        return heads.pop()
    from alembic.script import ScriptDirectory  # branches, or files this parser misreads

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or None for an empty database."""
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            return str(value) if value is not None else None
    except OperationalError as exc:
        raise database_error(str(engine.url), exc) from None


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

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
