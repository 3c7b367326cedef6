"""Zoom as a source: a client built from the source's credential (rotated refresh tokens are
committed before use), and meetings turned into SourceItems; a meeting that cannot be turned
into one, or that Zoom described too poorly, is skipped with its reason."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import TYPE_CHECKING

import httpx

from leap.context import Runtime, open_context
from leap.db.models import Credential, InputSource
from leap.db.scope import Scope
from leap.domain import CredentialKind
from leap.errors import UsageError
from leap.providers.http import ProviderError, RetryPolicy
from leap.providers.zoom import (
    CachedToken,
    OAuthTokens,
    S2SAuth,
    UserOAuth,
    ZoomAuth,
    ZoomClient,
    ZoomMeeting,
)
from leap.services import credentials
from leap.services.source_item import SourceItem

if TYPE_CHECKING:
    from leap.services.sync import Syncer, SyncResult

log = logging.getLogger(__name__)


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


def make_auth(
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


def make_client(
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
        make_auth(runtime, scope, cred, secret, http, CachedToken(*found) if found else None),
        policy,
        sleep=sleep or time.sleep,
    )


def meeting_item(m: ZoomMeeting, host: str | None) -> SourceItem:
    return SourceItem(
        # The UUID identifies one occurrence; the numeric id is shared by a recurring series.
        external_id=m.uuid,
        title=m.topic,
        start_time=m.start_time,
        duration_s=float(m.duration_min * 60),
        size_bytes=m.total_size or sum(f.file_size or 0 for f in m.files),
        host=m.host_email or host,
        meeting_id=m.meeting_id,
        files=tuple(f.to_dict() for f in m.files),
    )


class _HostLookup:
    """The host's e-mail for meetings that do not name one: optional, asked for once. An app
    without the user scope (only recordings granted, a common set-up) syncs without it."""

    def __init__(self, client: ZoomClient, user: str, result: SyncResult) -> None:
        self._client = client
        self.user = user
        self._result = result
        self._asked = "@" in user
        self.email: str | None = user if self._asked else None

    def __call__(self) -> str | None:
        if not self._asked:
            self._asked = True
            try:
                self.email = str(self._client.get_user(self.user).get("email") or "") or None
            except ProviderError as exc:
                # CredentialRejected is no ProviderError: a dead credential still stops sync.
                self._result.warnings.append(
                    f"host e-mail left empty: the Zoom user lookup failed ({exc.message})"
                )
                log.warning("zoom: host e-mail lookup failed, syncing without it: %s", exc)
        return self.email


def zoom_pages(
    syncer: Syncer, src: InputSource, start: date, end: date, result: SyncResult
) -> Iterator[list[SourceItem]]:
    if src.credential_id is None:
        raise UsageError(f"zoom source '{src.name}' has no credential")
    client = make_client(syncer.runtime, syncer.scope, src.credential_id, syncer.http, syncer.sleep)
    host = _HostLookup(client, str(src.config.get("zoom_user") or "me"), result)
    reported = 0
    try:
        for page in client.iter_recording_pages(host.user, start, end):
            reported = _report_skips(client, result, reported)
            email = host() if not all(m.host_email for m in page) else host.email
            items: list[SourceItem] = []
            for m in page:
                try:
                    items.append(meeting_item(m, email))
                except Exception as exc:  # one meeting's surprise must not end the listing
                    result.skip(m.uuid, f"{type(exc).__name__}: {exc}")
            yield items
    finally:
        # Meetings Zoom described too poorly to keep (no uuid, no start time...), and why.
        _report_skips(client, result, reported)


def _report_skips(client: ZoomClient, result: SyncResult, reported: int) -> int:
    for label, reason in client.skipped[reported:]:
        result.skip(label, reason)
    return len(client.skipped)
