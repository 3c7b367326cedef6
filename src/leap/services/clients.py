"""Provider clients built from stored credentials: decrypted, with rotated tokens saved in
their own committed unit of work before they are used, and a token cache shared across
stages and processes."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import httpx

from leap.context import Runtime, open_context
from leap.db.models import Credential
from leap.db.scope import Scope
from leap.domain import CredentialKind
from leap.errors import UsageError
from leap.providers.http import RetryPolicy
from leap.providers.zoom import CachedToken, OAuthTokens, S2SAuth, UserOAuth, ZoomAuth, ZoomClient
from leap.services import credentials


def _persist_tokens(runtime: Runtime, scope: Scope, cred_id: int) -> Callable[[OAuthTokens], None]:
    def persist(tokens: OAuthTokens) -> None:
        # Its own committed unit of work: Zoom has already invalidated the old refresh token.
        with open_context(runtime, scope) as ctx:
            cred = ctx.repos.credentials.require(cred_id)
            payload = credentials.secret_of(ctx, cred)
            payload.update(
                access_token=tokens.access_token,
                refresh_token=tokens.refresh_token,
                expires_at=tokens.expires_at,
            )
            credentials.replace_secret(ctx, cred, payload)

    return persist


class CredentialTokenCache:
    """The S2S token cache in the credential's row; each read or write is its own short,
    committed unit of work, so a stage's later failure never takes a good token with it."""

    def __init__(self, runtime: Runtime, scope: Scope, cred_id: int) -> None:
        self._runtime = runtime
        self._scope = scope
        self._cred_id = cred_id

    def load(self) -> CachedToken | None:
        with open_context(self._runtime, self._scope) as ctx:
            found = credentials.cached_token(ctx, ctx.repos.credentials.require(self._cred_id))
        return CachedToken(*found) if found else None

    def store(self, token: CachedToken) -> None:
        with open_context(self._runtime, self._scope) as ctx:
            credentials.cache_token(ctx, self._cred_id, token.access_token, token.expires_at)

    def forget(self, token: CachedToken) -> None:
        with open_context(self._runtime, self._scope) as ctx:
            credentials.forget_token(ctx, self._cred_id, token.expires_at)


def make_zoom_auth(
    runtime: Runtime,
    scope: Scope,
    cred: Credential,
    secret: dict[str, object],
    http: httpx.Client,
    cached: CachedToken | None = None,
) -> ZoomAuth:
    base = runtime.settings.zoom.oauth_base_url
    if cred.kind == CredentialKind.ZOOM_S2S.value:
        return S2SAuth(
            http,
            base,
            str(secret["account_id"]),
            str(secret["client_id"]),
            str(secret["client_secret"]),
            cache=CredentialTokenCache(runtime, scope, cred.id),
            cached=cached,
        )
    if cred.kind == CredentialKind.ZOOM_OAUTH.value:
        tokens = OAuthTokens(
            access_token=str(secret.get("access_token", "")),
            refresh_token=str(secret["refresh_token"]),
            expires_at=float(secret.get("expires_at", 0) or 0),  # type: ignore[arg-type]
        )
        return UserOAuth(
            http,
            base,
            str(secret["client_id"]),
            str(secret["client_secret"]),
            tokens,
            _persist_tokens(runtime, scope, cred.id),
        )
    raise UsageError(f"credential '{cred.name}' ({cred.kind}) is not a Zoom credential")


def make_zoom_client(
    runtime: Runtime,
    scope: Scope,
    cred_id: int,
    http: httpx.Client,
    sleep: Callable[[float], None] | None = None,
) -> ZoomClient:
    """A client for the credential; an S2S one reuses the token that other stages and
    processes cached in the credential's row."""
    with open_context(runtime, scope) as ctx:
        cred = ctx.repos.credentials.require(cred_id)
        secret = credentials.secret_of(ctx, cred)
        # Read with the credential: a stage whose token is cached makes no other query.
        found = credentials.cached_token(ctx, cred)
    policy = RetryPolicy(budget_s=runtime.settings.sync.retry_budget_seconds, rng=random.Random())
    return ZoomClient(
        http,
        runtime.settings.zoom.api_base_url,
        make_zoom_auth(runtime, scope, cred, secret, http, CachedToken(*found) if found else None),
        policy,
        sleep=sleep or time.sleep,
    )
