"""The one place that turns a stored credential into a working provider client: the secret
decrypted in a short unit of work, refreshes serialised and saved by services.token_store
before the new tokens are used, the Zoom S2S token cached across stages and processes, and
the credential marked dead when the provider rejects it for good."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr

from leap.context import Runtime, open_context
from leap.db.models import Credential
from leap.db.scope import Scope
from leap.domain import CredentialKind, CredentialStatus
from leap.errors import UsageError
from leap.providers.http import RetryPolicy
from leap.providers.vk import VKAuth, VKClient
from leap.providers.youtube import YouTubeAuth, YouTubeClient
from leap.providers.zoom import CachedToken, S2SAuth, UserOAuth, ZoomAuth, ZoomClient
from leap.services import credentials, token_store
from leap.services.token_store import CredentialStore

if TYPE_CHECKING:
    from leap.providers.transcription import Transcriber


def secret_of(runtime: Runtime, scope: Scope, cred_id: int) -> dict[str, Any]:
    with open_context(runtime, scope) as ctx:
        return credentials.secret_of(ctx, ctx.repos.credentials.require(cred_id))


def mark_dead(runtime: Runtime, scope: Scope, cred_id: int, reason: str) -> None:
    """In its own unit of work: the failing stage's rollback must not undo it."""
    with open_context(runtime, scope) as ctx:
        credentials.mark_dead(ctx, ctx.repos.credentials.require(cred_id), reason)


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
        return UserOAuth(
            http,
            base,
            str(secret["client_id"]),
            str(secret["client_secret"]),
            token_store.zoom_tokens(secret),
            store=CredentialStore(
                runtime, scope, cred.id, token_store.zoom_tokens, token_store.with_zoom_tokens
            ),
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


def youtube_client(
    runtime: Runtime, scope: Scope, cred_id: int, http: httpx.Client
) -> tuple[YouTubeClient, dict[str, Any]]:
    """The client and the secret it came from (its client_id names the Google project whose
    quota the upload spends)."""
    s = runtime.settings.youtube
    secret = secret_of(runtime, scope, cred_id)
    # The access token another stage or process refreshed is used until it lapses.
    tokens = token_store.google_tokens(secret)
    auth = YouTubeAuth(
        http,
        token_uri=str(secret.get("token_uri") or s.token_uri),
        client_id=str(secret["client_id"]),
        client_secret=str(secret["client_secret"]),
        refresh_token=tokens.refresh_token,
        access_token=tokens.access_token or None,
        expires_at=tokens.expires_at or 0.0,
        store=CredentialStore(
            runtime, scope, cred_id, token_store.google_tokens, token_store.with_google_tokens
        ),
    )
    client = YouTubeClient(
        http,
        auth,
        api_base_url=s.api_base_url,
        upload_base_url=s.upload_base_url,
        costs=s.costs,
    )
    return client, secret


def vk_client(runtime: Runtime, scope: Scope, cred_id: int, http: httpx.Client) -> VKClient:
    s = runtime.settings.vk
    secret = secret_of(runtime, scope, cred_id)
    auth = VKAuth(
        http,
        id_base_url=s.id_base_url,
        tokens=token_store.vk_tokens(secret),
        store=CredentialStore(
            runtime, scope, cred_id, token_store.vk_tokens, token_store.with_vk_tokens
        ),
    )
    return VKClient(http, api_base_url=s.api_base_url, api_version=s.api_version, auth=auth)


def api_key(runtime: Runtime, scope: Scope, kind: CredentialKind, install_wide: SecretStr) -> str:
    """The user's own credential of this kind, else the install-wide key from settings."""
    with open_context(runtime, scope) as ctx:
        for cred in ctx.repos.credentials.list(kind=kind.value):
            if cred.status == CredentialStatus.ACTIVE.value:
                return str(credentials.secret_of(ctx, cred)["api_key"])
    key = install_wide.get_secret_value()
    if not key:
        raise UsageError(
            f"no {kind.value} API key: add one with 'leap credentials add "
            f"{kind.value} NAME --api-key-env VAR' (or set it install-wide)"
        )
    return key


def transcriber(
    runtime: Runtime, scope: Scope, http: httpx.Client, provider: str, model: str | None
) -> Transcriber:
    # Imported here: only a transcribe stage needs them (and the local one loads a model).
    from leap.providers.fireworks import FireworksTranscriber
    from leap.providers.local_whisper import LocalWhisperTranscriber
    from leap.providers.openai_audio import OpenAITranscriber

    s = runtime.settings
    if provider == "local":
        return LocalWhisperTranscriber.from_settings(s.local_whisper, model=model)
    if provider == "fireworks":
        return FireworksTranscriber(
            http,
            base_url=s.fireworks.base_url,
            api_key=api_key(runtime, scope, CredentialKind.FIREWORKS, s.fireworks.api_key),
            model=model or s.fireworks.model,
        )
    if provider == "openai":
        return OpenAITranscriber(
            http,
            base_url=s.openai.base_url,
            api_key=api_key(runtime, scope, CredentialKind.OPENAI, s.openai.api_key),
            model=model or s.openai.model,
            max_upload_mb=s.openai.max_upload_mb,
        )
    raise UsageError(
        f"unknown transcription provider '{provider}' "
        "(fireworks, fireworks-batch, openai, local, zoom-vtt)"
    )
