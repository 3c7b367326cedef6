"""Shared CLI plumbing: global state, lazily built runtime, identity, and the error mapping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from leap.cli._output import Output

# The application is imported where a command first needs it, not here: this module is part
# of every `leap` start, and `leap --help` should not pay for SQLAlchemy and pydantic.
if TYPE_CHECKING:
    from leap.config import Settings
    from leap.context import Context, Runtime
    from leap.db.scope import Scope
    from leap.tasks import TaskQueue


@dataclass
class AppState:
    config: str | None = None
    user: str | None = None
    as_json: bool = False
    debug: bool = False
    quiet: bool = False
    _settings: Settings | None = None
    _runtime: Runtime | None = None
    _scope: Scope | None = None
    _queue: TaskQueue | None = None
    output: Output = field(default_factory=Output)

    def config_path(self) -> Path:
        from leap.config import resolve_config_path

        return resolve_config_path(self.config)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from leap.config import load_settings

            self._settings = load_settings(self.config)
        return self._settings

    def runtime(self, *, check_schema: bool = True) -> Runtime:
        if self._runtime is None:
            from leap.context import Runtime
            from leap.db.migrate import require_head

            runtime = Runtime.from_settings(self.settings, enqueue=self._send)
            if check_schema:
                require_head(runtime.engine)
            self._runtime = runtime
        return self._runtime

    def _send(self, name: str, kwargs: dict[str, Any], delay: float | None) -> None:
        # Built on first use: most commands never touch the queue, and importing Huey pulls in
        # the Redis and PostgreSQL client libraries (tens of MB, a quarter second).
        if self._queue is None:
            from leap.tasks import TaskQueue

            self._queue = TaskQueue.for_settings(self.runtime())
        self._queue.send(name, kwargs, delay)

    def scope(self) -> Scope:
        if self._scope is None:
            from leap.services import users

            self._scope = users.resolve_identity(self.runtime(), self.user)
        return self._scope

    @contextmanager
    def context(self, *, system: bool = False) -> Iterator[Context]:
        """A unit of work as the acting user (or the whole install, for admin commands)."""
        from leap.context import open_context
        from leap.db.scope import Scope
        from leap.errors import PermissionDenied

        scope = self.scope()
        if system:
            if not scope.is_admin:
                raise PermissionDenied("only an admin may do this")
            scope = Scope.system_scope()
        with open_context(self.runtime(), scope) as ctx:
            yield ctx

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.dispose()


def state_of(ctx: typer.Context) -> AppState:
    obj = ctx.find_root().obj
    assert isinstance(obj, AppState)
    return obj
