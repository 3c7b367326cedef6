"""Credentials: encrypted payloads per user, and install-wide key rotation."""

from __future__ import annotations

from leap.context import Context
from leap.errors import PermissionDenied
from leap.secrets import Vault


def rotate_all(ctx: Context, vault: Vault) -> int:
    """Re-encrypt every stored credential with the vault's primary key; returns the count.

    Runs in system scope (every user's credentials), so only an admin may call it.
    """
    if not ctx.scope.system:
        raise PermissionDenied("only an admin may rotate the secret key")
    count = 0
    for cred in ctx.repos.credentials.list():
        cred.secret = vault.rotate(cred.secret)
        count += 1
    ctx.session.flush()
    return count
