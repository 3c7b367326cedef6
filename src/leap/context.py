"""One object = a unit of work: settings, scope, session, repositories, deferred enqueues.

The boundary that opens a context (a CLI command, a task) commits or rolls back; services
never commit. Queue messages are sent only after the commit, so a task never points at a row
that was never written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from leap.config import Settings
from leap.db.engine import database_error, make_engine
from leap.db.repos import Repos
from leap.db.scope import Scope, get_scope, set_scope
from leap.secrets import Vault, load_keys

# (task name, kwargs, delay in seconds or None)
Enqueue = Callable[[str, dict[str, Any], float | None], None]


@dataclass
class Runtime:
    """Process-wide handles built once from Settings: the engine and the queue sender."""

    settings: Settings
    engine: Engine
    enqueue: Enqueue | None = None
    _sessions: sessionmaker[Session] | None = None
    _vault: Vault | None = None

    @classmethod
    def from_settings(cls, settings: Settings, enqueue: Enqueue | None = None) -> Runtime:
        engine = make_engine(settings.database_url, echo=settings.database.echo)
        return cls(settings=settings, engine=engine, enqueue=enqueue)

    @property
    def sessions(self) -> sessionmaker[Session]:
        if self._sessions is None:
            self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        return self._sessions

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            self._vault = Vault(load_keys(self.settings.data_path).keys)
        return self._vault

    def set_vault(self, vault: Vault) -> None:
        self._vault = vault

    @property
    def data_path(self) -> Path:
        return self.settings.data_path

    def dispose(self) -> None:
        self.engine.dispose()


@dataclass
class Context:
    runtime: Runtime
    session: Session
    repos: Repos
    _pending: list[tuple[str, dict[str, Any], float | None]] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def scope(self) -> Scope:
        return get_scope(self.session)

    @property
    def vault(self) -> Vault:
        return self.runtime.vault

    def defer_enqueue(self, task: str, *, delay: float | None = None, **kwargs: Any) -> None:
        """Send a queue message once this unit of work has committed."""
        self._pending.append((task, kwargs, delay))

    def take_pending(self) -> list[tuple[str, dict[str, Any], float | None]]:
        """Hand over the messages deferred so far: the caller sends them itself, after the
        commit (the stage runner, whose queue is not the runtime's own)."""
        pending, self._pending = self._pending, []
        return pending

    @contextmanager
    def as_scope(self, scope: Scope) -> Iterator[None]:
        """Temporarily widen or change the scope (admin actions, after their role check)."""
        previous = self.scope
        set_scope(self.session, scope)
        try:
            yield
        finally:
            set_scope(self.session, previous)


@contextmanager
def open_context(runtime: Runtime, scope: Scope) -> Iterator[Context]:
    if not isinstance(scope, Scope):
        raise TypeError("open_context needs a Scope")
    session = runtime.sessions()
    set_scope(session, scope)
    ctx = Context(runtime=runtime, session=session, repos=Repos(session))
    try:
        try:
            yield ctx
            session.commit()
        except OperationalError as exc:
            session.rollback()
            raise database_error(runtime.settings.database_url, exc) from None
        except BaseException:
            session.rollback()
            raise
    finally:
        session.close()
    if ctx._pending:
        if runtime.enqueue is None:
            raise RuntimeError("work was queued but this runtime has no queue")
        for task, kwargs, delay in ctx._pending:
            runtime.enqueue(task, kwargs, delay)
