"""Master-key rotation, ordered so that a crash at any step leaves every credential readable."""

from __future__ import annotations

from cryptography.fernet import Fernet

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.errors import ConfigError, PermissionDenied
from leap.secrets import ENV_KEY, Vault, key_file_path, load_keys, write_key_file
from leap.services.credentials import rotate_all


def rotate_master_key(runtime: Runtime, actor: Scope) -> tuple[int, str]:
    if not actor.is_admin:
        raise PermissionDenied("only an admin may rotate the secret key")
    data_dir = runtime.settings.data_path
    source = load_keys(data_dir)
    if source.origin.startswith("file:"):
        path = key_file_path(data_dir)
        new = Fernet.generate_key()
        # 1) the file holds NEW,OLD: whatever happens next, both decrypt.
        write_key_file(path, (new, *source.keys))
        vault = Vault((new, *source.keys))
        with open_context(runtime, Scope.system_scope()) as ctx:
            count = rotate_all(ctx, vault)
        # 2) committed: every credential is under NEW, the old key can go.
        write_key_file(path, (new,))
        runtime.set_vault(Vault((new,)))
        return count, str(path)
    # Keys from the environment or the keyring are the operator's to change.
    if len(source.keys) < 2:
        raise ConfigError(
            f"the secret key comes from {source.origin}: set {ENV_KEY}='NEW,OLD' (NEW from "
            "Fernet.generate_key()) and run rotate again; then keep only NEW"
        )
    vault = Vault(source.keys)
    with open_context(runtime, Scope.system_scope()) as ctx:
        count = rotate_all(ctx, vault)
    runtime.set_vault(vault)
    return count, source.origin
