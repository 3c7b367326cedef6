"""Input sources: Zoom accounts (through a credential) and local folders."""

from __future__ import annotations

import re

from leap.context import Context
from leap.db.models import InputSource
from leap.domain import CredentialKind, SourceKind
from leap.errors import Conflict, UsageError
from leap.services import metering, users

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ZOOM_KINDS = {CredentialKind.ZOOM_S2S.value, CredentialKind.ZOOM_OAUTH.value}


def _check_new_name(ctx: Context, name: str) -> None:
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"invalid source name '{name}': letters, digits, '.', '_', '-'")
    if ctx.repos.sources.by_name(name) is not None:
        raise Conflict(f"source '{name}' already exists")
    metering.check_room(ctx, "sources")


def add_zoom(ctx: Context, name: str, credential: str, zoom_user: str = "me") -> InputSource:
    _check_new_name(ctx, name)
    cred = ctx.repos.credentials.require_name(credential)
    if cred.kind not in ZOOM_KINDS:
        raise UsageError(f"credential '{credential}' is {cred.kind}, not a Zoom credential")
    if cred.kind == CredentialKind.ZOOM_OAUTH.value and zoom_user != "me":
        raise UsageError("a user-level Zoom OAuth credential can only read its own user: use 'me'")
    return ctx.repos.sources.add(
        InputSource(
            name=name,
            kind=SourceKind.ZOOM.value,
            credential_id=cred.id,
            config={"zoom_user": zoom_user},
        )
    )


def add_local(ctx: Context, name: str, path: str) -> InputSource:
    """A folder the user may read (docs/paths.md); `path` is absolute (the CLI resolves a
    relative one against the shell's working directory, where the user typed it)."""
    _check_new_name(ctx, name)
    if not path.strip():
        raise UsageError("local path is empty")
    root = users.path_policy(ctx).check_tree(path, what="local path")
    if not root.exists():
        raise UsageError(f"local path {path} does not exist")
    if not root.is_dir():
        raise UsageError(f"local path {path} is not a directory")
    return ctx.repos.sources.add(
        InputSource(name=name, kind=SourceKind.LOCAL.value, config={"path": str(root)})
    )


def list_sources(ctx: Context) -> list[InputSource]:
    return ctx.repos.sources.list(order_by=(InputSource.name,))


def get(ctx: Context, name: str) -> InputSource:
    return ctx.repos.sources.require_name(name)


def set_enabled(ctx: Context, name: str, enabled: bool) -> InputSource:
    src = get(ctx, name)
    src.enabled = enabled
    return src


def remove(ctx: Context, name: str, *, force: bool) -> int:
    """Remove a source; its recordings go with it, so that needs `force` when there are any."""
    src = get(ctx, name)
    count = ctx.repos.recordings.count(source_id=src.id)
    if count and not force:
        raise UsageError(
            f"source '{name}' has {count} recording(s) that would be deleted with it: "
            "repeat with --yes"
        )
    ctx.repos.sources.delete(src)
    return count
