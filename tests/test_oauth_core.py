"""The pure parts of OAuth (providers.oauth): when a holder must refresh, PKCE, reading a
redirect or a paste, and one refresh for many threads."""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from dataclasses import dataclass

import pytest

from leap.errors import AuthorizationFailed, UsageError
from leap.providers.oauth import (
    MemoryStore,
    Pkce,
    RotatingAuth,
    is_fresh,
    needs_grant,
    parse_pasted,
    read_redirect,
)

NOW = 1_000_000.0


@dataclass(frozen=True)
class Tok:
    access_token: str
    expires_at: float | None
    refresh_token: str = "r0"


FRESH = NOW + 3600
STALE = NOW + 30  # inside the one-minute margin


@pytest.mark.parametrize(
    ("stored", "seen", "refused", "expected"),
    [
        # Another holder refreshed meanwhile: use its token, whatever we saw.
        (Tok("b", FRESH), Tok("a", FRESH), True, False),
        (Tok("b", FRESH), Tok("a", STALE), False, False),
        # The store holds what we hold: refresh if it was refused or is about to lapse.
        (Tok("a", FRESH), Tok("a", FRESH), True, True),
        (Tok("a", FRESH), Tok("a", FRESH), False, False),
        (Tok("a", STALE), Tok("a", STALE), False, True),
        # Another token, but stale too: refresh.
        (Tok("b", STALE), Tok("a", STALE), False, True),
        # Never expiring (a pasted VK token): fresh until refused.
        (Tok("a", None), Tok("a", None), False, False),
        (Tok("a", None), Tok("a", None), True, True),
        # No access token yet (a credential stored with only a refresh token).
        (Tok("", 0.0), Tok("", 0.0), False, True),
    ],
)
def test_needs_grant(stored: Tok, seen: Tok, refused: bool, expected: bool) -> None:
    assert needs_grant(stored, seen, refused=refused, now=NOW) is expected


def test_is_fresh_margin() -> None:
    assert is_fresh(Tok("a", NOW + 61), NOW)
    assert not is_fresh(Tok("a", NOW + 59), NOW)
    assert not is_fresh(Tok("", None), NOW)


def test_pkce_is_rfc7636_s256() -> None:
    seen = set()
    for _ in range(50):
        p = Pkce.new()
        assert re.fullmatch(r"[A-Za-z0-9_-]{43,128}", p.verifier)
        digest = hashlib.sha256(p.verifier.encode()).digest()
        assert p.challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        seen.add(p.verifier)
    assert len(seen) == 50


def test_read_redirect() -> None:
    ok = read_redirect({"code": "c1", "state": "s", "scope": "x"}, "s", "google")
    assert ok.code == "c1" and ok.params["scope"] == "x"
    with pytest.raises(AuthorizationFailed, match="consent was denied"):
        read_redirect({"error": "access_denied", "state": "s"}, "s", "zoom")
    with pytest.raises(AuthorizationFailed, match="invalid_scope"):
        read_redirect({"error": "invalid_scope"}, "s", "google")
    with pytest.raises(AuthorizationFailed, match="different state"):
        read_redirect({"code": "c1", "state": "other"}, "s", "google")
    with pytest.raises(AuthorizationFailed, match="different state"):
        read_redirect({"code": "c1"}, "s", "google")
    with pytest.raises(AuthorizationFailed, match="no code"):
        read_redirect({"state": "s"}, "s", "google")


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:8080/?state=s&code=4/0Ab-x_y",
        "  http://127.0.0.1:8080/?code=4/0Ab-x_y&state=s&scope=a%20b\n",
        "http://localhost/?code=4/0Ab-x_y&state=s",
        "?code=4/0Ab-x_y&state=s",
    ],
)
def test_pasted_redirect_urls(text: str) -> None:
    assert parse_pasted(text, "s", "google").code == "4/0Ab-x_y"


def test_pasted_bare_code_and_junk() -> None:
    assert parse_pasted("4/0AbCd-ef_gh", "s", "google").code == "4/0AbCd-ef_gh"
    for junk in ("", "   ", "hello world", "x" * 600, "code\x00", "<script>"):
        with pytest.raises(UsageError):
            parse_pasted(junk, "s", "google")
    with pytest.raises(UsageError, match="no code"):
        parse_pasted("http://127.0.0.1:1/?foo=bar", "s", "google")
    with pytest.raises(AuthorizationFailed, match="different state"):
        parse_pasted("http://127.0.0.1:1/?code=abc&state=evil", "s", "google")


def test_many_threads_one_refresh() -> None:
    """Eight threads find the token lapsed at once; one refreshes, the others wait and use
    what it saved (a rotating refresh token is spent once)."""
    clock = [NOW]
    grants: list[str] = []
    saved: list[Tok] = []
    start = Tok("a0", NOW - 1)
    lock = threading.Lock()

    def grant(stored: Tok) -> Tok:
        with lock:
            grants.append(stored.refresh_token)
        time.sleep(0.2)  # the token endpoint is slow: everyone piles up behind the lock
        return Tok("a1", clock[0] + 3600, refresh_token="r1")

    store = MemoryStore(start, saved.append, clock=lambda: clock[0])
    tokens: list[str] = []

    def worker() -> None:
        auth = RotatingAuth(start, grant, store, clock=lambda: clock[0])
        tokens.append(auth.token())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert grants == ["r0"] and tokens == ["a1"] * 8 and len(saved) == 1


def test_refused_token_refreshes_once_then_saved_set_is_reused() -> None:
    saved: list[Tok] = []
    issued = iter(["a1", "a2"])

    def grant(stored: Tok) -> Tok:
        return Tok(next(issued), NOW + 3600, refresh_token=stored.refresh_token + "+")

    store = MemoryStore(Tok("a0", NOW + 3600), saved.append, clock=lambda: NOW)
    first = RotatingAuth(Tok("a0", NOW + 3600), grant, store, clock=lambda: NOW)
    second = RotatingAuth(Tok("a0", NOW + 3600), grant, store, clock=lambda: NOW)
    first.invalidate()
    assert first.token() == "a1"
    # The second holder was refused the same old token: it gets a1, no second refresh.
    second.invalidate()
    assert second.token() == "a1"
    assert [t.access_token for t in saved] == ["a1"]
