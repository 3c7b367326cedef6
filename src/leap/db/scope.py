"""THE tenancy guard: every ORM statement on a `UserOwned` table is filtered by the session's
scope, and every new or changed owned row is stamped and checked. No other module filters by
user id.

A session without a scope refuses to run ORM statements at all: forgetting the scope is a
programming error, never "all users".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from leap.db.base import UserOwned
from leap.db.models import User
from leap.errors import ScopeError

SCOPE_KEY = "leap_scope"


@dataclass(frozen=True)
class Scope:
    """Whose data a unit of work may touch.

    `user_id=None` with `system=True` is the install-wide scope used by the daemon's
    reconciler, admin commands (after their role check) and migrations of data.
    """

    user_id: int | None
    is_admin: bool = False
    system: bool = False

    @classmethod
    def for_user(cls, user_id: int, *, is_admin: bool = False) -> Scope:
        return cls(user_id=user_id, is_admin=is_admin)

    @classmethod
    def system_scope(cls) -> Scope:
        return cls(user_id=None, is_admin=True, system=True)


def get_scope(session: Session) -> Scope:
    scope = session.info.get(SCOPE_KEY)
    if not isinstance(scope, Scope):
        raise ScopeError("database access without a scope")
    return scope


def set_scope(session: Session, scope: Scope) -> None:
    session.info[SCOPE_KEY] = scope


@event.listens_for(Session, "do_orm_execute")
def _filter_by_scope(state: ORMExecuteState) -> None:
    if state.is_insert:
        _check_bulk_insert(state)
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    scope = get_scope(state.session)
    if scope.system:
        return
    uid = scope.user_id
    options: list[Any] = [
        with_loader_criteria(
            UserOwned,
            lambda cls: cls.user_id == uid,
            include_aliases=True,
            propagate_to_loaders=True,
        )
    ]
    if not scope.is_admin:
        # A plain user sees exactly one user row: their own.
        options.append(with_loader_criteria(User, lambda cls: cls.id == uid, include_aliases=True))
    state.statement = state.statement.options(*options)


def _check_bulk_insert(state: ORMExecuteState) -> None:
    """ORM bulk INSERT (session.execute(insert(Model), rows)) bypasses before_flush: stamp and
    check owners here instead."""
    mapper = state.bind_mapper
    if mapper is None:
        return
    params = state.parameters
    rows = params if isinstance(params, list) else [params] if params else []
    stamp_owners(get_scope(state.session), mapper.class_, rows)


def stamp_owners(scope: Scope, model: type, rows: Sequence[Any]) -> None:
    """The owner check of every INSERT that bypasses the ORM's flush (bulk inserts, and the
    driver-level ones of db/repos.py): a user's rows are stamped as theirs, and nobody
    inserts another user's."""
    if not issubclass(model, UserOwned):
        return
    for row in rows:
        if not isinstance(row, dict):
            continue
        owner = row.get("user_id")
        if scope.system:
            if owner is None:
                raise ScopeError(f"{model.__name__} inserted in system scope without user_id")
        elif owner is None:
            row["user_id"] = scope.user_id
        elif owner != scope.user_id:
            raise ScopeError(f"{model.__name__} inserted for another user than the scope's")


@event.listens_for(Session, "before_flush")
def _stamp_owner(session: Session, _ctx: Any, _instances: Any) -> None:
    scope = get_scope(session)
    for obj in list(session.new) + list(session.dirty) + list(session.deleted):
        if isinstance(obj, UserOwned):
            if scope.system:
                if obj.user_id is None:
                    raise ScopeError(
                        f"{type(obj).__name__} written in system scope without user_id"
                    )
                continue
            if obj in session.new and obj.user_id is None:
                obj.user_id = scope.user_id
            elif obj.user_id != scope.user_id:
                raise ScopeError(f"{type(obj).__name__} belongs to another user than the scope's")
        elif isinstance(obj, User) and not scope.is_admin and obj.id != scope.user_id:
            raise ScopeError("a user may only change their own user row")
