"""Zoom OAuth: Server-to-Server tokens (account_credentials) and user-level tokens with
refresh-token rotation, both behind the ZoomAuth protocol that ZoomClient uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from leap.logs import register_secret
from leap.providers.http import (
    CredentialRejected,
    PermanentError,
    RetryPolicy,
    Sleep,
    classify_response,
    error_excerpt,
    token_grant,
)
from leap.providers.oauth import EXPIRY_MARGIN_S, MemoryStore, RotatingAuth, TokenStore

PROVIDER = "zoom"
Clock = Callable[[], float]


class ZoomAuth(Protocol):
    def token(self) -> str: ...

    def invalidate(self) -> None: ...


@dataclass(frozen=True)
class OAuthTokens:
    access_token: str
    refresh_token: str
    expires_at: float  # epoch seconds


def utcnow(clock: Clock) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


def _token_classifier(clock: Clock, hint: str) -> Callable[[httpx.Response], None]:
    def classify(response: httpx.Response) -> None:
        # Any refusal by the token endpoint means this credential cannot be used as it is.
        if response.status_code in (400, 401, 403):
            raise CredentialRejected(
                f"zoom: the token endpoint rejected the credential "
                f"(HTTP {response.status_code}: {error_excerpt(response)}); {hint}",
                provider=PROVIDER,
                status=response.status_code,
            )
        classify_response(response, PROVIDER, utcnow(clock))

    return classify


def _post_token(
    http: httpx.Client,
    oauth_base_url: str,
    client_id: str,
    client_secret: str,
    form: dict[str, str],
    *,
    clock: Clock,
    policy: RetryPolicy,
    sleep: Sleep,
    hint: str,
) -> dict[str, Any]:
    url = oauth_base_url.rstrip("/") + "/oauth/token"
    # The token endpoint may quote the request back in an error (the Basic header, the form);
    # whatever path the secrets came by, redaction must know them before it answers.
    register_secret(client_secret, user=client_id)
    for field in ("refresh_token", "code", "code_verifier"):
        register_secret(form.get(field))
    data = token_grant(
        lambda: http.post(url, data=form, auth=(client_id, client_secret)),
        _token_classifier(clock, hint),
        policy,
        provider=PROVIDER,
        sleep=sleep,
    )
    # What comes back is as secret as what went out; an error quoting it must not show it.
    for field in ("access_token", "refresh_token"):
        value = data.get(field)
        register_secret(value if isinstance(value, str) else None)
    return data


def _expires_at(data: dict[str, Any], clock: Clock) -> float:
    lifetime = data.get("expires_in")
    if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
        lifetime = 3600  # Zoom's documented lifetime, should a response ever omit it
    return clock() + float(lifetime)


@dataclass(frozen=True)
class CachedToken:
    access_token: str
    expires_at: float  # epoch seconds


class TokenCache(Protocol):
    """Where an S2S token outlives one client: shared by stages, `leap` processes and leapd
    workers, so one token serves them all for its hour."""

    def load(self) -> CachedToken | None: ...

    def store(self, token: CachedToken) -> None: ...

    def forget(self, token: CachedToken) -> None:
        """Drop `token` if it is still the cached one (a fresher one stays)."""


class S2SAuth:
    """Server-to-Server OAuth: the cached token until a minute before its expiry, then a fresh
    account_credentials token (there is no refresh token). With a `cache`, the token is read
    from and written to it, so other clients and processes reuse it."""

    def __init__(
        self,
        http: httpx.Client,
        oauth_base_url: str,
        account_id: str,
        client_id: str,
        client_secret: str,
        *,
        cache: TokenCache | None = None,
        cached: CachedToken | None = None,
        clock: Clock = time.time,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._http = http
        self._base = oauth_base_url
        self._account_id = account_id
        self._client_id = client_id
        self._client_secret = client_secret
        self._cache = cache
        self._clock = clock
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        # `cached`: what the caller already read from the cache with the credential.
        self._current: CachedToken | None = cached
        # Set by a 401: the next token comes from Zoom, never from the cache, which may still
        # hold the token just refused.
        self._must_fetch = False
        self.fetches = 0

    def _fresh(self, token: CachedToken | None) -> bool:
        return token is not None and self._clock() < token.expires_at - EXPIRY_MARGIN_S

    def token(self) -> str:
        if not self._must_fetch and not self._fresh(self._current) and self._cache is not None:
            self._current = self._cache.load()
        if self._must_fetch or self._current is None or not self._fresh(self._current):
            self._current = self._fetch()
            self._must_fetch = False
            if self._cache is not None:
                self._cache.store(self._current)
        register_secret(self._current.access_token)
        return self._current.access_token

    def _fetch(self) -> CachedToken:
        data = _post_token(
            self._http,
            self._base,
            self._client_id,
            self._client_secret,
            {"grant_type": "account_credentials", "account_id": self._account_id},
            clock=self._clock,
            policy=self._policy,
            sleep=self._sleep,
            hint="check the account id, client id and client secret of the S2S app",
        )
        self.fetches += 1
        return CachedToken(str(data["access_token"]), _expires_at(data, self._clock))

    def invalidate(self) -> None:
        if self._current is not None and self._cache is not None:
            # Others should not keep presenting a token Zoom has refused.
            self._cache.forget(self._current)
        self._current = None
        self._must_fetch = True


def _tokens_from(data: dict[str, Any], previous_refresh: str, clock: Clock) -> OAuthTokens:
    refresh = data.get("refresh_token")
    return OAuthTokens(
        access_token=data["access_token"],
        # Zoom always rotates; keep the old one only if a response ever omits it.
        refresh_token=refresh if isinstance(refresh, str) and refresh else previous_refresh,
        expires_at=_expires_at(data, clock),
    )


REAUTH_HINT = "re-authenticate the Zoom credential (leap credentials add)"


def exchange_authorization_code(
    http: httpx.Client,
    oauth_base_url: str,
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    *,
    code_verifier: str | None = None,
    clock: Clock = time.time,
    policy: RetryPolicy | None = None,
    sleep: Sleep = time.sleep,
) -> OAuthTokens:
    """Trade the code of the user-level OAuth redirect for the first token pair."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier:
        form["code_verifier"] = code_verifier
    data = _post_token(
        http,
        oauth_base_url,
        client_id,
        client_secret,
        form,
        clock=clock,
        policy=policy or RetryPolicy(),
        sleep=sleep,
        hint="the code may have expired or been used already; authorise again",
    )
    if not isinstance(data.get("refresh_token"), str):
        raise PermanentError(
            "zoom: the token response has no refresh_token", provider=PROVIDER, status=200
        )
    return _tokens_from(data, "", clock)


class UserOAuth(RotatingAuth[OAuthTokens]):
    """User-level OAuth with refresh-token rotation: every refresh returns a new refresh token
    and invalidates the old one, so the store saves the pair before it is used and lets one
    holder refresh at a time (with `on_refresh` alone: a store for this process)."""

    def __init__(
        self,
        http: httpx.Client,
        oauth_base_url: str,
        client_id: str,
        client_secret: str,
        tokens: OAuthTokens,
        on_refresh: Callable[[OAuthTokens], None] | None = None,
        *,
        store: TokenStore[OAuthTokens] | None = None,
        clock: Clock = time.time,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._http = http
        self._base = oauth_base_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        if store is None:
            store = MemoryStore(tokens, on_refresh or (lambda _t: None), clock=clock)
        super().__init__(tokens, self._grant, store, clock=clock)

    def _grant(self, stored: OAuthTokens) -> OAuthTokens:
        data = _post_token(
            self._http,
            self._base,
            self._client_id,
            self._client_secret,
            {"grant_type": "refresh_token", "refresh_token": stored.refresh_token},
            clock=self._clock,
            policy=self._policy,
            sleep=self._sleep,
            hint=REAUTH_HINT,
        )
        return _tokens_from(data, stored.refresh_token, self._clock)


def authorize_url(
    oauth_base_url: str, client_id: str, redirect_uri: str, state: str, challenge: str
) -> str:
    """Where the user consents (§1.2): authorization code with PKCE S256."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{oauth_base_url.rstrip('/')}/oauth/authorize?{query}"


def revoke(
    http: httpx.Client, oauth_base_url: str, client_id: str, client_secret: str, token: str
) -> None:
    """Revoke a user token at Zoom (POST /oauth/revoke); a refusal raises PermanentError."""
    register_secret(client_secret, user=client_id)
    register_secret(token)
    response = http.post(
        oauth_base_url.rstrip("/") + "/oauth/revoke",
        params={"token": token},
        auth=(client_id, client_secret),
    )
    if response.status_code != 200:
        raise PermanentError(
            f"zoom did not revoke the token (HTTP {response.status_code}: "
            f"{error_excerpt(response)})",
            provider=PROVIDER,
            status=response.status_code,
        )
