"""Credentials: validated secret payloads per kind, encrypted at rest, never printed back;
install-wide key rotation."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leap.context import Context
from leap.db.base import utcnow
from leap.db.models import Credential
from leap.domain import CredentialKind, CredentialStatus
from leap.errors import ConfigError, Conflict, PermissionDenied, UsageError
from leap.logs import redact
from leap.secrets import Vault
from leap.services import notify

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")  # token files carry extra fields we don't need


class ZoomS2S(_Payload):
    account_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)


class ZoomOAuth(_Payload):
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)
    access_token: str = ""
    refresh_token: str = Field(min_length=1)
    expires_at: float = 0.0  # epoch seconds; 0: unknown, refresh before first use


class YouTubeAuthorizedUser(_Payload):
    # google-auth's "authorized_user" JSON
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)
    refresh_token: str = Field(min_length=1)
    token_uri: str | None = None
    scopes: list[str] = []
    token: str | None = None
    expiry: str | None = None


class VKToken(_Payload):
    access_token: str = Field(min_length=1)
    refresh_token: str | None = None
    device_id: str | None = None
    client_id: str | None = None
    user_id: int | str | None = None
    expires_at: float | None = None


class ApiKey(_Payload):
    api_key: str = Field(min_length=1)


SCHEMAS: dict[CredentialKind, type[_Payload]] = {
    CredentialKind.ZOOM_S2S: ZoomS2S,
    CredentialKind.ZOOM_OAUTH: ZoomOAuth,
    CredentialKind.YOUTUBE: YouTubeAuthorizedUser,
    CredentialKind.VK: VKToken,
    CredentialKind.FIREWORKS: ApiKey,
    CredentialKind.OPENAI: ApiKey,
    CredentialKind.LLM: ApiKey,
}

# Facts that are safe to show: identifiers, never secrets.
PUBLIC_KEYS = {"account_id", "client_id", "scopes", "user_id", "device_id", "token_uri"}


def parse_kind(kind: str) -> CredentialKind:
    try:
        return CredentialKind(kind)
    except ValueError:
        choices = ", ".join(k.value for k in CredentialKind)
        raise UsageError(f"unknown credential kind '{kind}' (one of: {choices})") from None


def validate_payload(kind: CredentialKind, raw: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(raw)
    # A token response as saved from the exchange carries expires_in (seconds from then); the
    # file is read now, so that is the best estimate of when it lapses.
    expiring = (CredentialKind.ZOOM_OAUTH, CredentialKind.VK)
    if kind in expiring and "expires_at" not in data and data.get("expires_in"):
        data["expires_at"] = time.time() + float(data.pop("expires_in"))
    if kind is CredentialKind.VK and data.get("refresh_token") and not data.get("client_id"):
        raise UsageError(
            "vk credential: a refresh_token needs the app's client_id to be refreshed "
            '(add "client_id" to the file or pass --client-id)'
        )
    try:
        model = SCHEMAS[kind].model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise UsageError(f"{kind.value} credential: '{field}': {err['msg'].lower()}") from None
    return model.model_dump(exclude_none=True)


# Public facts that outlive a re-authentication: the history `leap doctor` reads.
HISTORY_KEYS = ("testing_mode",)
# Google deletes the refresh tokens of an app in "Testing" publishing status 7 days after
# consent; a death this long after consent is that pattern, not a revocation.
TESTING_MODE_DAYS = 7.0
_TESTING_WINDOW_DAYS = (6.5, 8.5)


def add_credential(
    ctx: Context, name: str, kind: CredentialKind, raw: Mapping[str, Any], *, replace: bool = False
) -> Credential:
    """Store a new credential; with `replace`, new secrets for an existing one of the same
    kind (re-authentication): sources and presets keep using it, and it is active again."""
    return save_credential(ctx, name, kind, raw, replace=replace)[0]


def save_credential(
    ctx: Context,
    name: str,
    kind: CredentialKind,
    raw: Mapping[str, Any],
    *,
    replace: bool = False,
    facts: Mapping[str, Any] | None = None,
) -> tuple[Credential, bool]:
    """add_credential, also saying whether an existing credential was replaced: `replace` on a
    name not yet used adds it (a provisioning script can run the same command every time).
    `facts` are non-secret facts to show with it (the channel, when consent was given)."""
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"invalid credential name '{name}': letters, digits, '.', '_', '-'")
    existing = ctx.repos.credentials.by_name(name)
    if existing is not None and not replace:
        raise Conflict(f"credential '{name}' already exists (add --replace to re-authenticate it)")
    if existing is not None and existing.kind != kind.value:
        raise Conflict(f"credential '{name}' is a {existing.kind} credential, not {kind.value}")
    payload = validate_payload(kind, raw)
    public = {k: v for k, v in payload.items() if k in PUBLIC_KEYS}
    if existing is not None:
        public.update({k: existing.public[k] for k in HISTORY_KEYS if k in existing.public})
    public.update(facts or {})
    expires = payload.get("expires_at")
    if existing is not None:
        existing.secret = ctx.vault.encrypt(payload)
        existing.public = public
        # A token of the old secrets may belong to another app or account.
        existing.token_cache, existing.token_expires_at = None, None
        existing.expires_at = (
            _epoch_to_dt(expires) if isinstance(expires, (int, float)) and expires else None
        )
        existing.status, existing.status_reason = CredentialStatus.ACTIVE.value, None
        ctx.session.flush()
        return existing, True
    cred = ctx.repos.credentials.add(
        Credential(
            name=name,
            kind=kind.value,
            secret=ctx.vault.encrypt(payload),
            public=public,
            expires_at=_epoch_to_dt(expires)
            if isinstance(expires, (int, float)) and expires
            else None,
        )
    )
    return cred, False


def _epoch_to_dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def get(ctx: Context, name: str) -> Credential:
    return ctx.repos.credentials.require_name(name)


def list_credentials(ctx: Context) -> list[Credential]:
    return ctx.repos.credentials.list(order_by=(Credential.name,))


def ensure_unused(ctx: Context, cred: Credential) -> None:
    """Raise Conflict while a source or preset uses `cred`: asked before anything irreversible
    (a revoke at the platform) happens, and again by `remove` itself."""
    users = [s.name for s in ctx.repos.sources.list(credential_id=cred.id)]
    users += [p.name for p in ctx.repos.presets.list(credential_id=cred.id)]
    if users:
        raise Conflict(
            f"credential '{cred.name}' is used by {', '.join(sorted(users))}; remove those first"
        )


def remove(ctx: Context, name: str) -> None:
    """Delete the credential (no platform call: services.credential_health.remove revokes
    first, outside any unit of work)."""
    cred = get(ctx, name)
    ensure_unused(ctx, cred)
    ctx.repos.credentials.delete(cred)


def secret_of(ctx: Context, cred: Credential) -> dict[str, Any]:
    return ctx.vault.decrypt(cred.secret)


def replace_secret(ctx: Context, cred: Credential, payload: Mapping[str, Any]) -> None:
    """Store a new payload (e.g. a rotated refresh token); flushed at once so it is never lost
    behind later work in the same unit."""
    cred.secret = ctx.vault.encrypt(dict(payload))
    expires = payload.get("expires_at")
    if isinstance(expires, (int, float)) and expires:
        cred.expires_at = _epoch_to_dt(expires)
    cred.last_used_at = utcnow()
    ctx.session.flush()


def cached_token(ctx: Context, cred: Credential) -> tuple[str, float] | None:
    """The shared access token of `cred` and its expiry (epoch seconds), if one is cached,
    expired or not: the caller decides with its own safety margin."""
    if cred.token_cache is None or cred.token_expires_at is None:
        return None
    try:
        payload = ctx.vault.decrypt(cred.token_cache)  # registers it for redaction
    except ConfigError:
        # Encrypted with a key since retired, or damaged: a cache miss, not an error.
        return None
    token = payload.get("access_token")
    if not isinstance(token, str) or not token:
        return None
    return token, cred.token_expires_at.timestamp()


def _whole_second(epoch: float) -> datetime:
    # Whole seconds compare equal after any database round trip (forget_token relies on it).
    return _epoch_to_dt(float(int(epoch)))


def cache_token(ctx: Context, cred_id: int, token: str, expires_at: float) -> None:
    """Share `token` through the credential row: one UPDATE, so concurrent writers never mix
    one's token with another's expiry (the last valid token wins). updated_at stays: a token
    is not an edit of the credential."""
    ctx.repos.credentials.update_where(
        {
            "token_cache": ctx.vault.encrypt({"access_token": token}),
            "token_expires_at": _whole_second(expires_at),
            "updated_at": Credential.updated_at,
        },
        id=cred_id,
    )


def forget_token(ctx: Context, cred_id: int, expires_at: float | None = None) -> None:
    """Drop the cached token; with `expires_at`, only while the cached one has that expiry
    (it is the token refused), so a fresher token another process stored meanwhile stays."""
    filters: dict[str, Any] = {"id": cred_id}
    if expires_at is not None:
        filters["token_expires_at"] = _whole_second(expires_at)
    ctx.repos.credentials.update_where(
        {"token_cache": None, "token_expires_at": None, "updated_at": Credential.updated_at},
        **filters,
    )


def mark_dead(ctx: Context, cred: Credential, reason: str) -> None:
    if (
        cred.kind == CredentialKind.YOUTUBE.value
        and cred.status == CredentialStatus.ACTIVE.value
        and "invalid_grant" in reason
    ):
        age = _days_since(cred.public.get("authorized_at"))
        if age is not None and _TESTING_WINDOW_DAYS[0] <= age <= _TESTING_WINDOW_DAYS[1]:
            cred.public = {**cred.public, "testing_mode": True}
    # mark_dead runs on every refusal; only the turn active → needs_reauth notifies, and as
    # one conditional UPDATE, so two workers refused at once notify once.
    turned = ctx.repos.credentials.update_where(
        {"status": CredentialStatus.NEEDS_REAUTH.value},
        id=cred.id,
        status=CredentialStatus.ACTIVE.value,
    )
    cred.status = CredentialStatus.NEEDS_REAUTH.value
    # The reason quotes the provider's answer, which may echo what we sent it; the stored
    # text is shown by `credentials list` to anyone who can read the row or the database.
    cred.status_reason = redact(reason)
    ctx.session.flush()
    if turned:
        notify.credential_reauth(ctx, cred, cred.status_reason)


def _days_since(iso: object) -> float | None:
    if not isinstance(iso, str):
        return None
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return (datetime.now(UTC) - then).total_seconds() / 86400


def testing_mode_days_left(cred: Credential) -> float | None:
    """Days until a Testing-mode Google app's refresh token dies, when this credential's
    history shows that pattern (an earlier token died 7 days after consent)."""
    if not cred.public.get("testing_mode"):
        return None
    age = _days_since(cred.public.get("authorized_at"))
    return None if age is None else TESTING_MODE_DAYS - age


def mark_ok(ctx: Context, cred: Credential) -> None:
    if cred.status != CredentialStatus.ACTIVE.value:
        cred.status = CredentialStatus.ACTIVE.value
        cred.status_reason = None
    cred.last_used_at = utcnow()


def rotate_all(ctx: Context, vault: Vault) -> int:
    """Re-encrypt every stored credential with the vault's primary key; returns the count.

    Runs in system scope (every user's credentials), so only an admin may call it.
    """
    if not ctx.scope.system:
        raise PermissionDenied("only an admin may rotate the secret key")
    count = 0
    for cred in ctx.repos.credentials.list():
        cred.secret = vault.rotate(cred.secret)
        # A cached token is not worth a failed rotation (or one left on the old key): the
        # next use fetches another.
        cred.token_cache, cred.token_expires_at = None, None
        count += 1
    ctx.session.flush()
    return count
