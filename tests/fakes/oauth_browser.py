"""A tiny "browser" for OAuth tests: it opens a fake's authorize URL, and when the fake answers
with a redirect (the consent went through, or was refused) it follows that one hop to LEAP's
loopback server, as a real browser would.

Importable (visit, redirect_target) and runnable as a script, so it can stand in for the user's
browser through Python's webbrowser module:

    BROWSER="python /abs/path/tests/fakes/oauth_browser.py %s"

webbrowser runs that command and waits for it to exit; the exit status is 0 when the final page
answered below 400, else 1. Only the standard library and httpx are used, and nothing from the
tests package, so it works wherever it is run from."""

from __future__ import annotations

import sys

import httpx

_REDIRECTS = (302, 303)


def _client(timeout: float) -> httpx.Client:
    # trust_env=False: a proxy from the environment must not intercept 127.0.0.1.
    return httpx.Client(trust_env=False, follow_redirects=False, timeout=timeout)


def visit(url: str, *, timeout: float = 10.0) -> httpx.Response:
    """GET `url`; on a 302/303 with a Location, GET that (one hop) and return its response,
    otherwise return the first response (an error page the provider showed itself)."""
    with _client(timeout) as client:
        first = client.get(url)
        location = first.headers.get("Location")
        if first.status_code not in _REDIRECTS or not location:
            return first
        return client.get(first.url.join(location))


def redirect_target(url: str, *, timeout: float = 10.0) -> str:
    """GET `url`, require a redirect and return its Location without visiting it: what a user
    on a headless machine copies from the browser's failed page to paste into LEAP."""
    with _client(timeout) as client:
        response = client.get(url)
    location = response.headers.get("Location")
    if response.status_code not in _REDIRECTS or not location:
        raise RuntimeError(
            f"expected a redirect from {url}, got {response.status_code}: {response.text[:200]}"
        )
    return str(response.url.join(location))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: oauth_browser.py URL", file=sys.stderr)
        return 2
    try:
        response = visit(argv[1])
    except httpx.HTTPError as exc:
        print(f"oauth_browser: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0 if response.status_code < 400 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
