"""OAuth machinery shared by Google, VK ID and Zoom user tokens: one refresh path for all of
them (`RotatingAuth` asks a `TokenStore`, which serialises refreshes and saves the new tokens
before anyone uses them), PKCE, and reading the redirect that ends an authorisation.

Why a store decides, not the client: a rotating refresh token (Zoom, VK ID) works once. Two
holders of one credential that refresh at the same moment would both spend it, and the
second gets invalid_grant. So every refresh goes through `TokenStore.exchange`, which holds
a lock shared by every holder (a database row lock across processes; a thread lock in one),
re-reads the stored tokens, and refreshes only if nobody else already did
(docs/internals.md, "One refresh at a time")."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar
from urllib.parse import parse_qs, urlsplit

from leap.errors import AuthorizationFailed, UsageError
from leap.logs import register_secret

# Refresh this long before the access token lapses: a token that dies mid-request costs a 401.
EXPIRY_MARGIN_S = 60.0
Clock = Callable[[], float]


class Tokens(Protocol):
    """What every provider's token set has: the access token and when it lapses."""

    @property
    def access_token(self) -> str: ...

    @property
    def expires_at(self) -> float | None: ...  # epoch seconds; None: unknown, never lapses


T = TypeVar("T", bound=Tokens)
Grant = Callable[[T], T]


def is_fresh(tokens: Tokens, now: float, margin: float = EXPIRY_MARGIN_S) -> bool:
    if not tokens.access_token:
        return False
    return tokens.expires_at is None or now < tokens.expires_at - margin


def needs_grant(stored: T, seen: T, *, refused: bool, now: float) -> bool:
    """Under the store's lock: must this holder refresh, or is `stored` good to use?

    `seen` is what the holder used (refused by the provider when `refused`); `stored` is what
    the store holds now. A different, fresh access token in the store means another holder
    refreshed meanwhile: use it, and never spend the refresh token a second time."""
    if stored.access_token != seen.access_token and is_fresh(stored, now):
        return False
    return refused or not is_fresh(stored, now)


class TokenStore(Protocol[T]):
    def exchange(self, seen: T, grant: Grant[T], *, refused: bool) -> T:
        """The tokens to use: the stored ones if another holder refreshed, else `grant` of
        the stored ones, saved before they are returned."""
        ...


class MemoryStore(Generic[T]):
    """A store for one process: a thread lock, and `on_save` to keep the new tokens somewhere.
    A set whose saving failed is kept and saved again before use: its provider has already
    invalidated the old refresh token."""

    def __init__(self, tokens: T, on_save: Callable[[T], None], *, clock: Clock = time.time):
        self._current = tokens
        self._on_save = on_save
        self._clock = clock
        self._unsaved: T | None = None
        self._lock = threading.Lock()

    def exchange(self, seen: T, grant: Grant[T], *, refused: bool) -> T:
        with self._lock:
            if self._unsaved is None:
                if not needs_grant(self._current, seen, refused=refused, now=self._clock()):
                    return self._current
                self._unsaved = grant(self._current)
            self._on_save(self._unsaved)
            self._current, self._unsaved = self._unsaved, None
            return self._current


class RotatingAuth(Generic[T]):
    """An access token that refreshes a minute before it lapses, or after the provider
    refused it (`invalidate`), always through the store."""

    def __init__(
        self, tokens: T, grant: Grant[T], store: TokenStore[T], *, clock: Clock = time.time
    ) -> None:
        self._tokens = tokens
        self._grant = grant
        self._store = store
        self._clock = clock
        self._refused = False

    @property
    def tokens(self) -> T:
        return self._tokens

    def token(self) -> str:
        if self._refused or not is_fresh(self._tokens, self._clock()):
            self._tokens = self._store.exchange(self._tokens, self._grant, refused=self._refused)
            self._refused = False
        register_secret(self._tokens.access_token)
        return self._tokens.access_token

    def invalidate(self) -> None:
        self._refused = True


# ---------------------------------------------------------------------------------------------
# Authorisation: PKCE and the redirect


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        # 64 URL-safe characters: inside RFC 7636's 43-128 and VK ID's [A-Za-z0-9_-] alphabet.
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        register_secret(verifier)
        return cls(verifier, challenge)


def new_state() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Redirect:
    """What the provider sent back to the redirect URI."""

    code: str
    params: dict[str, str]


_CODE_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/+=")


def read_redirect(params: dict[str, str], state: str, provider: str) -> Redirect:
    """The code of a redirect, once its `state` is ours; a refusal or a foreign state is an
    AuthorizationFailed that names it (and never echoes the code)."""
    error = params.get("error")
    if error:
        detail = params.get("error_description") or params.get("error_reason") or ""
        if error == "access_denied":
            raise AuthorizationFailed(
                f"{provider}: consent was denied in the browser; nothing saved"
            )
        raise AuthorizationFailed(
            f"{provider}: the authorisation failed: {error}" + (f" ({detail})" if detail else "")
        )
    if params.get("state") != state:
        # Another tab's (or an attacker's) redirect: its code must not be exchanged.
        raise AuthorizationFailed(
            f"{provider}: the redirect carries a different state than this request sent "
            "(an old or foreign link); run the command again"
        )
    code = params.get("code", "")
    if not code:
        raise AuthorizationFailed(f"{provider}: the redirect carries no code")
    register_secret(code)
    return Redirect(code, params)


def parse_pasted(text: str, state: str, provider: str) -> Redirect:
    """What a headless user pastes: the whole redirect URL the browser failed to open (its
    state is checked), or the bare code shown by the provider's page."""
    text = text.strip()
    if not text:
        raise UsageError(f"{provider}: nothing was pasted")
    if "://" in text or text.startswith(("?", "/")) or "code=" in text or "error=" in text:
        parts = urlsplit(text)
        query = parts.query or (text[1:] if text.startswith("?") else "")
        params = {k: v[0] for k, v in parse_qs(query).items()}
        if not params and parts.fragment:
            params = {k: v[0] for k, v in parse_qs(parts.fragment).items()}
        if not params.get("code") and not params.get("error"):
            raise UsageError(
                f"{provider}: the pasted URL is not the redirect (it has no code); paste the "
                "address the browser shows after you allowed access"
            )
        return read_redirect(params, state, provider)
    if len(text) > 512 or not set(text) <= _CODE_CHARS:
        raise UsageError(
            f"{provider}: that is neither the redirect URL nor an authorisation code; paste the "
            "address the browser shows after you allowed access"
        )
    register_secret(text)
    return Redirect(text, {"code": text})
