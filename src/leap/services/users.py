"""Users: identity resolution, admin management, timezone and plan."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leap.context import Context, Runtime, open_context
from leap.db.models import User
from leap.db.scope import Scope
from leap.domain import PlanName, Role
from leap.errors import ConfigError, Conflict, NotFound, PermissionDenied, UsageError
from leap.path_policy import PathPolicy, real
from leap.secrets import key_file_path
from leap.services import audit

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def validate_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise UsageError(
            f"invalid user name '{name}': use 1-64 lowercase letters, digits, '.', '_' or '-'"
        )
    return name


def validate_timezone(tz: str) -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown timezone '{tz}' (use an IANA name such as Europe/Moscow)"
        ) from None
    return tz


def resolve_identity(runtime: Runtime, name: str | None) -> Scope:
    """Who is acting: --user/LEAP_USER, or the only user of the install."""
    with open_context(runtime, Scope.system_scope()) as ctx:
        if name:
            user = ctx.repos.users.by_name(name)
            if user is None:
                raise NotFound(f"unknown user '{name}'")
        else:
            users = ctx.repos.users.list()
            if not users:
                raise ConfigError("no users yet: run 'leap init'")
            if len(users) > 1:
                raise UsageError("this install has several users: pass --user NAME or LEAP_USER")
            user = users[0]
        if user.disabled:
            raise PermissionDenied(f"user '{user.name}' is disabled")
        return Scope.for_user(user.id, is_admin=user.role == Role.ADMIN)


def current_user(ctx: Context) -> User:
    uid = ctx.scope.user_id
    if uid is None:
        raise UsageError("this command needs a user (--user NAME)")
    return ctx.repos.users.require(uid)


def require_admin(ctx: Context) -> None:
    if not ctx.scope.is_admin:
        raise PermissionDenied("only an admin may do this")


def _target(ctx: Context, name: str) -> User:
    """A user this scope may act on: oneself, or anyone for an admin."""
    user = ctx.repos.users.by_name(name)  # the scope hook hides other users from non-admins
    if user is None:
        if ctx.scope.is_admin:
            raise NotFound(f"unknown user '{name}'")
        raise PermissionDenied(f"only an admin may act on user '{name}'")
    return user


def target_user(ctx: Context, name: str | None) -> User:
    """The user a command is about: NAME (oneself, or anyone for an admin), or the acting
    user when none is named."""
    return current_user(ctx) if name is None else _target(ctx, name)


def _actor(ctx: Context) -> tuple[int, str]:
    me = current_user(ctx)
    return me.id, me.name


def create_user(
    ctx: Context,
    name: str,
    *,
    role: Role = Role.USER,
    timezone: str | None = None,
    plan: str = PlanName.FREE.value,
    email: str | None = None,
) -> User:
    if not ctx.scope.system:
        require_admin(ctx)
    validate_name(name)
    tz = validate_timezone(timezone or ctx.settings.defaults.timezone)
    if ctx.repos.users.by_name(name) is not None:
        raise Conflict(f"user '{name}' already exists")
    plan_row = ctx.repos.plans.require_name(plan)
    user = ctx.repos.users.add(
        User(name=name, role=role.value, timezone=tz, plan_id=plan_row.id, email=email)
    )
    owner, actor = (user.id, name) if ctx.scope.system else _actor(ctx)
    audit.record(ctx, owner_id=owner, actor=actor, action="user.add", subject=name, role=role.value)
    return user


def list_users(ctx: Context) -> list[User]:
    require_admin(ctx)
    return ctx.repos.users.list(order_by=(User.name,))


def show_user(ctx: Context, name: str) -> User:
    return _target(ctx, name)


def set_plan(ctx: Context, name: str, plan: str) -> User:
    require_admin(ctx)
    user = _target(ctx, name)
    user.plan_id = ctx.repos.plans.require_name(plan).id
    owner, actor = _actor(ctx)
    audit.record(ctx, owner_id=owner, actor=actor, action="user.set_plan", subject=name, plan=plan)
    return user


def set_timezone(ctx: Context, name: str, tz: str) -> User:
    user = _target(ctx, name)
    user.timezone = validate_timezone(tz)
    owner, actor = _actor(ctx)
    audit.record(
        ctx, owner_id=owner, actor=actor, action="user.set_timezone", subject=name, timezone=tz
    )
    return user


def private_paths(ctx: Context) -> list[Path]:
    """LEAP's own directories and files: never a source, an export folder or a thumbnail."""
    st = ctx.settings
    paths = [st.data_path, st.media_path, st.queue_path, key_file_path(st.data_path)]
    if st.database_url.startswith("sqlite:///"):
        paths.append(Path(st.database_url.removeprefix("sqlite:///")))
    if st.config_path is not None:
        paths.append(st.config_path)
    return paths


def path_policy(ctx: Context, user: User | None = None) -> PathPolicy:
    """Where `user` (else the acting user) may read and write files (docs/paths.md)."""
    user = user if user is not None else current_user(ctx)
    return PathPolicy.build(
        user=user.name,
        user_id=user.id,
        is_admin=user.role == Role.ADMIN.value,
        user_roots=user.allowed_roots,
        install_roots=ctx.settings.paths.roots,
        data_dir=ctx.settings.data_path,
        private=private_paths(ctx),
    )


def set_roots(ctx: Context, name: str, roots: list[str], *, reset: bool = False) -> User:
    """The folders `name` may read local sources from and export into (admin only)."""
    require_admin(ctx)
    user = _target(ctx, name)
    if reset:
        user.allowed_roots = None
    else:
        private = [real(p) for p in private_paths(ctx)]
        clean: list[str] = []
        for given in roots:
            path = Path(given).expanduser()
            if not path.is_absolute():
                raise UsageError(f"root {given!r}: give an absolute path")
            resolved = real(path)
            for zone in private:
                if resolved == zone or zone in resolved.parents:
                    raise UsageError(f"root {given!r} is inside LEAP's own files ({zone})")
            clean.append(str(resolved))
        user.allowed_roots = list(dict.fromkeys(clean))
    owner, actor = _actor(ctx)
    audit.record(
        ctx,
        owner_id=owner,
        actor=actor,
        action="user.set_roots",
        subject=name,
        roots=user.allowed_roots,
    )
    return user
