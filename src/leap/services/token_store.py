"""The one place where a credential's OAuth tokens are refreshed (docs/internals.md, "One
refresh at a time"): `CredentialStore` implements the providers' TokenStore over the
credential's row, so the lock that serialises refreshes holds across threads, processes and
hosts, and the new tokens are committed, encrypted, before anyone uses them."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.providers.http import CredentialRejected
from leap.providers.oauth import Grant, Tokens, needs_grant
from leap.providers.vk import VKTokens
from leap.providers.youtube import GoogleTokens
from leap.providers.zoom import OAuthTokens
from leap.services import credentials

T = TypeVar("T", bound=Tokens)
Secret = dict[str, Any]


class CredentialStore(Generic[T]):
    """A TokenStore over credential `cred_id`: `load` reads the token set from the decrypted
    secret, `dump` writes one into it."""

    def __init__(
        self,
        runtime: Runtime,
        scope: Scope,
        cred_id: int,
        load: Callable[[Secret], T],
        dump: Callable[[Secret, T], Secret],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._runtime = runtime
        self._scope = scope
        self._cred_id = cred_id
        self._load = load
        self._dump = dump
        self._clock = clock
        # Tokens a provider issued whose commit failed: the old refresh token may be dead
        # already, so these are saved before anything else happens.
        self._unsaved: T | None = None

    def exchange(self, seen: T, grant: Grant[T], *, refused: bool) -> T:
        if self._unsaved is not None:
            return self._save_unsaved()
        rejected: CredentialRejected | None = None
        with open_context(self._runtime, self._scope) as ctx:
            # Held until this unit of work commits: a second holder waits here, then finds
            # the tokens this one saved.
            cred = ctx.repos.credentials.lock(self._cred_id)
            secret = credentials.secret_of(ctx, cred)
            stored = self._load(secret)
            if not needs_grant(stored, seen, refused=refused, now=self._clock()):
                return stored
            try:
                new = grant(stored)
            except CredentialRejected as exc:
                # Committed with this unit of work: every holder sees the reason at once.
                credentials.mark_dead(ctx, cred, exc.message)
                rejected = exc
            else:
                self._unsaved = new
                credentials.replace_secret(ctx, cred, self._dump(secret, new))
        if rejected is not None:
            raise rejected
        self._unsaved = None
        return new

    def _save_unsaved(self) -> T:
        new = self._unsaved
        assert new is not None
        with open_context(self._runtime, self._scope) as ctx:
            cred = ctx.repos.credentials.lock(self._cred_id)
            secret = credentials.secret_of(ctx, cred)
            credentials.replace_secret(ctx, cred, self._dump(secret, new))
        self._unsaved = None
        return new


# -- the token set of each kind, in and out of its secret ----------------------------------------


def zoom_tokens(secret: Secret) -> OAuthTokens:
    return OAuthTokens(
        access_token=str(secret.get("access_token") or ""),
        refresh_token=str(secret["refresh_token"]),
        expires_at=float(secret.get("expires_at") or 0),
    )


def with_zoom_tokens(secret: Secret, tokens: OAuthTokens) -> Secret:
    return {
        **secret,
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_at": tokens.expires_at,
    }


def vk_tokens(secret: Secret) -> VKTokens:
    expires = secret.get("expires_at")
    return VKTokens(
        access_token=str(secret["access_token"]),
        refresh_token=secret.get("refresh_token"),
        device_id=secret.get("device_id"),
        expires_at=float(expires) if isinstance(expires, int | float) else None,
        client_id=secret.get("client_id"),
    )


def with_vk_tokens(secret: Secret, tokens: VKTokens) -> Secret:
    return {
        **secret,
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "device_id": tokens.device_id,
        "expires_at": tokens.expires_at,
    }


def google_tokens(secret: Secret) -> GoogleTokens:
    # The authorized-user shape keeps the access token as `token` and its expiry as an ISO
    # time (google-auth's Credentials.to_json), so the stored secret stays that shape.
    expiry = secret.get("expiry")
    expires_at = 0.0
    if isinstance(expiry, str) and expiry:
        try:
            parsed = datetime.fromisoformat(expiry.replace("Z", "+00:00"))
            expires_at = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
        except ValueError:
            expires_at = 0.0
    scopes = secret.get("scopes")
    return GoogleTokens(
        access_token=str(secret.get("token") or ""),
        refresh_token=str(secret["refresh_token"]),
        expires_at=expires_at,
        scope=" ".join(scopes) if isinstance(scopes, list) else None,
    )


def with_google_tokens(secret: Secret, tokens: GoogleTokens) -> Secret:
    expiry = datetime.fromtimestamp(tokens.expires_at or 0, UTC)
    out = {
        **secret,
        "token": tokens.access_token,
        "expiry": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if tokens.scope:
        out["scopes"] = tokens.scope.split()
    return out
