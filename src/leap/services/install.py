"""`leap init`: config file, data directory, secret key, database at head, first admin."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from leap.config import Settings
from leap.context import Runtime, open_context
from leap.db.engine import create_private_file, sqlite_path
from leap.db.migrate import current_revision, upgrade
from leap.db.scope import Scope
from leap.domain import PlanName, Role
from leap.errors import ConfigError
from leap.secrets import load_keys
from leap.services import users


@dataclass(frozen=True)
class InitResult:
    config_path: Path
    config_written: bool
    data_dir: Path
    database: str
    revision: str | None
    admin: str | None  # created now, or None if users already existed
    key_origin: str


def example_config() -> Path:
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "leap.example.toml", here.parent.parent / "leap.example.toml"):
        if candidate.is_file():
            return candidate
    raise ConfigError("leap.example.toml is missing from this installation")


def write_config(path: Path) -> bool:
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    shutil.copyfile(example_config(), tmp)
    tmp.replace(path)
    return True


def init_install(settings: Settings, config_path: Path, admin: str) -> InitResult:
    users.validate_name(admin)
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = write_config(config_path)
    settings.media_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    keys = load_keys(data, create=True)
    db_file = sqlite_path(settings.database_url)
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        create_private_file(db_file)
    runtime = Runtime.from_settings(settings)
    try:
        upgrade(runtime.engine)
        created: str | None = None
        with open_context(runtime, Scope.system_scope()) as ctx:
            if ctx.repos.users.count() == 0:
                # The operator's own account: unlimited (docs/quotas.md); users added
                # later start on the free plan.
                users.create_user(ctx, admin, role=Role.ADMIN, plan=PlanName.ENTERPRISE.value)
                created = admin
        revision = current_revision(runtime.engine)
    finally:
        runtime.dispose()
    return InitResult(
        config_path=config_path,
        config_written=written,
        data_dir=data,
        database=settings.database_url,
        revision=revision,
        admin=created,
        key_origin=keys.origin,
    )
