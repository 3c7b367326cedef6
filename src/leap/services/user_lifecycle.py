"""Deleting, disabling and enabling a user (docs/users.md), admin only and audited.

Disabling stops the user's work: their queued and running runs are cancelled (the reason on
each run: "user disabled"; a worker's heartbeat sees it and stops the stage), their queued
automation firings are dropped, and leapd fires none of their jobs while they stay
disabled. Deleting does the same first, then removes every row they own (ON DELETE CASCADE
from `users`) and, once that has committed, their folders on disk (`remove_files`)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from leap.config import Settings
from leap.context import Context
from leap.db.base import utcnow
from leap.db.models import User
from leap.db.scope import Scope
from leap.domain import Role, RunStatus
from leap.errors import NotFound, UsageError
from leap.path_policy import own_folders
from leap.services import audit, automation, runs
from leap.services.users import require_admin, target_user
from leap.specs import user_lifecycle as spec
from leap.specs.user_lifecycle import Inventory

DISABLED = "user disabled"
DELETED = "user deleted"


@dataclass(frozen=True)
class Stopped:
    """The work `stop_work` cancelled: run ids, and automation firings that never ran."""

    runs: list[int] = field(default_factory=list)
    firings: int = 0


@dataclass(frozen=True)
class Deleted:
    inventory: Inventory
    stopped: Stopped
    folders: list[Path]  # to remove once the deletion has committed (remove_files)


@dataclass(frozen=True)
class Removed:
    """What `remove_files` did: bytes freed, and each folder it could not remove, why."""

    freed: int = 0
    errors: list[str] = field(default_factory=list)


# -- the user's folders --------------------------------------------------------------------


def folders(settings: Settings, user_id: int) -> list[Path]:
    """The user's folders inside LEAP's data: media (the pipeline's files), imports and
    exports (docs/paths.md). All go with the user: on SQLite a new user may get the same id,
    and with it these paths."""
    imports, exports = own_folders(settings.data_path, user_id)
    return [settings.media_path / f"user_{user_id}", imports, exports]


def _size(folder: Path) -> int:
    """Bytes of the regular files under `folder`, never following a symlink."""
    if folder.is_symlink() or not folder.is_dir():
        return 0
    total = 0
    for root, _dirs, files in os.walk(folder, followlinks=False):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))  # noqa: PTH118 - walk's own strings
            except OSError:
                continue
            total += st.st_size
    return total


def remove_files(settings: Settings, user_id: int) -> Removed:
    """Remove a deleted user's folders (after the deletion committed: a failed commit never
    loses files). A folder replaced by a symlink is left alone (docs/paths.md); a failure is
    reported per folder, never raised."""
    freed, errors = 0, []
    for folder in folders(settings, user_id):
        if folder.is_symlink():
            errors.append(f"{folder}: a symbolic link, left alone")
            continue
        if not folder.exists():
            continue
        size = _size(folder)
        try:
            shutil.rmtree(folder)  # unlinks symlinks inside, never follows them
        except OSError as exc:
            errors.append(f"{folder}: {exc.strerror or exc}")
            continue
        freed += size
    return Removed(freed, errors)


# -- decisions and facts -------------------------------------------------------------------


def _admin_target(ctx: Context, name: str, *, deleting: bool) -> User:
    require_admin(ctx)
    user = target_user(ctx, name)
    why = spec.refusal(
        deleting=deleting,
        actor_id=ctx.scope.user_id,
        target_id=user.id,
        target_is_admin=user.role == Role.ADMIN.value,
        other_active_admins=ctx.repos.users.active_admins(besides=user.id),
    )
    if why is not None:
        raise UsageError(why)
    return user


def _inventory(ctx: Context, user: User) -> Inventory:
    # Read through the user's own scope: an admin's scope filters owned rows by the admin.
    with ctx.as_scope(Scope.for_user(user.id)):
        counts = ctx.repos.users.owned_counts(user.id)
        counts["runs_in_progress"] = ctx.repos.runs.count(status=RunStatus.ACTIVE.value)
    files = {str(f): _size(f) for f in folders(ctx.settings, user.id) if f.exists()}
    return Inventory(user=user.name, user_id=user.id, counts=counts, files=files)


def inventory(ctx: Context, name: str) -> Inventory:
    """What `leap user delete NAME` would remove; changes nothing (the same refusals)."""
    return _inventory(ctx, _admin_target(ctx, name, deleting=True))


def stop_work(ctx: Context, user: User, reason: str) -> Stopped:
    """Cancel the user's runs in progress (queued or running: a worker's heartbeat sees the
    run cancelled and stops its stage) and their automation firings not yet started."""
    ctx.session.flush()  # the caller's own changes, under the caller's scope
    cancelled: list[int] = []
    firings = 0
    with ctx.as_scope(Scope.for_user(user.id)):
        active = ctx.repos.runs.list(status=RunStatus.ACTIVE.value)
        for rid in dict.fromkeys(r.recording_id for r in active):
            try:
                run = runs.cancel(ctx, rid)
            except NotFound:
                continue  # finished between the two reads
            run.error = f"cancelled: {reason}"
            cancelled.append(run.id)
        for firing in ctx.repos.automation_runs.list(status=automation.QUEUED):
            firing.status, firing.finished_at = automation.FAILED, utcnow()
            firing.error = f"cancelled: {reason}"
            firings += 1
        ctx.session.flush()  # written as the user's rows, inside the user's scope
    return Stopped(cancelled, firings)


def _audit(ctx: Context, action: str, name: str, **detail: object) -> None:
    """Owned by the acting admin (it outlives a deleted user); a script in the system scope
    files it under the first remaining admin."""
    if ctx.scope.user_id is not None:
        me = ctx.repos.users.require(ctx.scope.user_id)
        owner, actor = me.id, me.name
    else:
        admins = ctx.repos.users.list(role=Role.ADMIN.value, order_by=(User.id,))
        if not admins:
            return
        owner, actor = admins[0].id, "system"
    audit.record(ctx, owner_id=owner, actor=actor, action=action, subject=name, **detail)


# -- the commands --------------------------------------------------------------------------


def delete(ctx: Context, name: str) -> Deleted:
    """Delete user `name` with everything they own. Their runs in progress are cancelled
    first; the folders to remove are returned, for `remove_files` after the commit."""
    user = _admin_target(ctx, name, deleting=True)
    inv = _inventory(ctx, user)
    stopped = stop_work(ctx, user, DELETED)
    uid = user.id
    ctx.repos.system.delete_prefixed(f"digest:{uid}:")  # digest claims (services/digest.py)
    ctx.repos.users.delete(user)  # every owned row goes by ON DELETE CASCADE, in this unit
    _audit(
        ctx,
        "user.delete",
        name,
        user_id=uid,
        removed=dict(inv.counts),
        runs_cancelled=len(stopped.runs),
        firings_cancelled=stopped.firings,
        bytes_on_disk=inv.bytes_on_disk,
    )
    return Deleted(inv, stopped, folders(ctx.settings, uid))


def disable(ctx: Context, name: str) -> tuple[User, Stopped]:
    """The user can no longer act; their queued and running work is cancelled."""
    user = _admin_target(ctx, name, deleting=False)
    user.disabled = True
    stopped = stop_work(ctx, user, DISABLED)
    _audit(
        ctx,
        "user.disable",
        name,
        runs_cancelled=len(stopped.runs),
        firings_cancelled=stopped.firings,
    )
    return user, stopped


def enable(ctx: Context, name: str) -> User:
    """The user may act again; what disabling cancelled stays cancelled. Their automation
    jobs start from now, like `leap automation enable`: no catch-up of the paused time."""
    require_admin(ctx)
    user = target_user(ctx, name)
    was_disabled = user.disabled
    user.disabled = False
    ctx.session.flush()
    if was_disabled:
        moment = utcnow()
        with ctx.as_scope(Scope.for_user(user.id)):
            for job in ctx.repos.automations.list(enabled=True):
                job.last_planned_at = moment
                job.next_run_at = automation.next_firing(job, automation.zone_of(user), moment)
            ctx.session.flush()
    _audit(ctx, "user.enable", name)
    return user
