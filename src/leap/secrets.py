"""The master key and explicit encryption of credential payloads.

The key comes from LEAP_SECRET_KEY, else the OS keyring, else a 0600 key file in the data dir;
it never lives in the database. Several keys (newest first) make a MultiFernet, so rotation
can decrypt with old keys while encrypting with the new one.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from leap.errors import ConfigError
from leap.logs import register_secret

log = logging.getLogger(__name__)

ENV_KEY = "LEAP_SECRET_KEY"
KEYRING_SERVICE = "leap"
KEY_FILE = "secret.key"


@dataclass(frozen=True)
class KeySource:
    keys: tuple[bytes, ...]  # newest first
    origin: str  # env | keyring | file:<path>


def _parse_keys(raw: str, origin: str) -> tuple[bytes, ...]:
    # Comma-separated so an operator can hold "new,old" during a manual rotation.
    keys = tuple(k.strip().encode() for k in raw.split(",") if k.strip())
    if not keys:
        raise ConfigError(f"secret key from {origin} is empty")
    for k in keys:
        try:
            Fernet(k)
        except (ValueError, TypeError):
            raise ConfigError(
                f"secret key from {origin} is not a valid Fernet key (32 url-safe base64 bytes)"
            ) from None
    return keys


def _keyring_get(username: str) -> str | None:
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - keyring is a declared dependency
        return None
    try:
        value = keyring.get_password(KEYRING_SERVICE, username)
    except (KeyringError, RuntimeError):
        # Headless Linux has no usable backend (docs/internals.md, "Secrets and the keyring"); the
        # key file takes over.
        return None
    return value if isinstance(value, str) else None


def key_file_path(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


def _read_key_file(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}); "
            f"run: chmod 600 {path}"
        )
    return path.read_text().strip()


def create_key_file(path: Path) -> None:
    """Create the key file race-free with mode 0600; leave an existing one alone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    old = os.umask(0o077)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    finally:
        os.umask(old)
    with os.fdopen(fd, "w") as fh:
        fh.write(Fernet.generate_key().decode() + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def load_keys(
    data_dir: Path, env: Mapping[str, str] | None = None, *, create: bool = False
) -> KeySource:
    env = os.environ if env is None else env
    raw = env.get(ENV_KEY)
    if raw:
        return KeySource(_parse_keys(raw, ENV_KEY), "env")
    from_ring = _keyring_get(str(data_dir))
    if from_ring:
        return KeySource(_parse_keys(from_ring, "the OS keyring"), "keyring")
    path = key_file_path(data_dir)
    if not path.exists():
        if not create:
            raise ConfigError(
                f"no secret key: set {ENV_KEY}, store one in the OS keyring, or run 'leap init' "
                f"to create {path}"
            )
        create_key_file(path)
    return KeySource(_parse_keys(_read_key_file(path), str(path)), f"file:{path}")


# Payload fields that hold secrets (the rest are identifiers, expiry times, scopes).
SECRET_FIELDS = frozenset(
    {"client_secret", "access_token", "refresh_token", "api_key", "token", "password", "secret"}
)


def register_payload_secrets(payload: Mapping[str, Any]) -> None:
    """Make every secret of a credential payload known to redaction, before any provider can
    echo it back; the client id goes with the client secret, as HTTP Basic auth sends them."""
    client_id = payload.get("client_id")
    user = str(client_id) if isinstance(client_id, str | int) and client_id else None
    for key in SECRET_FIELDS:
        value = payload.get(key)
        if isinstance(value, str):
            register_secret(value, user=user if key == "client_secret" else None)


class Vault:
    """Encrypts and decrypts credential payloads (JSON objects); every secret that passes
    through is registered for redaction."""

    def __init__(self, keys: tuple[bytes, ...]) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, payload: Mapping[str, Any]) -> bytes:
        register_payload_secrets(payload)
        return self._fernet.encrypt(json.dumps(dict(payload), sort_keys=True).encode())

    def decrypt(self, token: bytes) -> dict[str, Any]:
        try:
            data = json.loads(self._fernet.decrypt(token))
        except InvalidToken:
            raise ConfigError(
                "cannot decrypt stored credentials: the secret key is not the one they were "
                "encrypted with (check LEAP_SECRET_KEY / the key file)"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError("a stored credential is corrupt (not a JSON object)")
        register_payload_secrets(data)
        return data

    def rotate(self, token: bytes) -> bytes:
        try:
            return self._fernet.rotate(token)
        except InvalidToken:
            raise ConfigError(
                "cannot rotate: a stored credential was encrypted with a key not given"
            ) from None


def write_key_file(path: Path, keys: tuple[bytes, ...]) -> None:
    """Atomically replace the key file (keys newest first, comma-separated), mode 0600."""
    tmp = path.with_suffix(".tmp")
    old = os.umask(0o077)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    finally:
        os.umask(old)
    with os.fdopen(fd, "w") as fh:
        fh.write(",".join(k.decode() for k in keys) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
