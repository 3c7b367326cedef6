"""What every provider client shares: the httpx client factory (with an overall deadline for
ordinary API calls), the provider error tree, Retry-After parsing, JSON bodies made safe for
the database, and the retry loop (backoff with full jitter inside a sleep budget).

ProviderError (exit 1)            a provider call failed
├── RetryableError                429, 5xx, timeouts, dropped connections; retried, then raised
│   └── DeadlineExceeded          an API call outlived its overall deadline; not retried
└── PermanentError                other 4xx, malformed responses; never retried
    ├── AccessTokenRejected       401: the caller may refresh its token once and try again
    └── ResourceNotFound (exit 3) the provider says the thing does not exist (also a NotFound)
CredentialRejected (exit 5)       the credential itself is dead (also a CredentialDead)
"""

from __future__ import annotations

import functools
import json
import logging
import math
import random
import re
import ssl
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpcore
import httpx

from leap import __version__
from leap.errors import CredentialDead, LeapError, NotFound
from leap.logs import redact

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]
Classifier = Callable[[httpx.Response], None]


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace, redact anything token-like and cap the length of a message part."""
    flat = redact(" ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class ProviderError(LeapError):
    def __init__(self, message: str, *, provider: str, status: int | None = None) -> None:
        super().__init__(one_line(message, 500))
        self.provider = provider
        self.status = status


class Deferred(ProviderError):
    """The platform asks to come back later (a spent quota, flood control): not a failure.
    Publishing parks the target until retry_at."""

    def __init__(
        self, message: str, *, provider: str, status: int | None, reason: str, retry_at: datetime
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.reason = reason
        self.retry_at = retry_at


class RetryableError(ProviderError):
    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.retry_after = retry_after


class DeadlineExceeded(RetryableError):
    """An ordinary API call did not finish within its overall deadline: a stalled or trickling
    server. Not retried (each try would take the whole deadline again); a later run may."""


class PermanentError(ProviderError):
    pass


class AccessTokenRejected(PermanentError):
    """A 401 on an API call: permanent for this token, so the client refreshes it once."""


class ResourceNotFound(PermanentError, NotFound):
    pass


class CredentialRejected(CredentialDead):
    def __init__(self, message: str, *, provider: str, status: int | None = None) -> None:
        super().__init__(one_line(message, 500))
        self.provider = provider
        self.status = status


# ---------------------------------------------------------------------------------------------
# The overall deadline
#
# httpx's timeouts bound each socket operation, so a server sending one byte a second holds a
# call forever. Ordinary API calls (not streamed, a small in-memory body) therefore also get a
# deadline for the whole exchange: connect, request, headers and body. It is enforced under
# httpcore, where every socket read and write has its timeout cut to the time left, so even
# a trickle of headers ends on time. Streamed downloads and file uploads keep only their
# per-operation timeouts: their length grows with the file, not with the server's mood.

API_DEADLINE_S = 120.0
# A body bigger than this (a thumbnail, say) takes as long as the uplink makes it take.
DEADLINE_BODY_LIMIT = 1024 * 1024


@dataclass
class _Call:
    deadline: float  # time.monotonic()
    expired: bool = False


_current: ContextVar[_Call | None] = ContextVar("leap_http_call", default=None)


def _budget(timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
    """`timeout` cut to what is left of the current call's deadline (if it has one)."""
    call = _current.get()
    if call is None:
        return timeout
    left = call.deadline - time.monotonic()
    if left <= 0:
        call.expired = True
        raise expired("the overall deadline passed")
    return left if timeout is None else min(timeout, left)


def _cut(timeout: float | None, budget: float | None) -> bool:
    return budget is not None and (timeout is None or budget < timeout)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        budget = _budget(timeout, httpcore.ReadTimeout)
        try:
            return self._inner.read(max_bytes, budget)
        except httpcore.TimeoutException:
            _note_expiry(_cut(timeout, budget))
            raise

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        budget = _budget(timeout, httpcore.WriteTimeout)
        try:
            self._inner.write(buffer, budget)
        except httpcore.TimeoutException:
            _note_expiry(_cut(timeout, budget))
            raise

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        budget = _budget(timeout, httpcore.ConnectTimeout)
        try:
            inner = self._inner.start_tls(ssl_context, server_hostname, budget)
        except httpcore.TimeoutException:
            _note_expiry(_cut(timeout, budget))
            raise
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def _note_expiry(cut: bool) -> None:
    # A timeout that fired because the deadline shortened it is the deadline's doing.
    call = _current.get()
    if cut and call is not None:
        call.expired = True


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        budget = _budget(timeout, httpcore.ConnectTimeout)
        try:
            stream = self._inner.connect_tcp(host, port, budget, local_address, socket_options)
        except httpcore.TimeoutException:
            _note_expiry(_cut(timeout, budget))
            raise
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        budget = _budget(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, budget, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The one verifying TLS context of the process, made on first use. Each context loads
    certifi's CA bundle again (about 1 MB of RSS while it lives) and every stage, sync and
    leapd worker makes its own client; an SSLContext is safe to share between threads."""
    return httpx.create_ssl_context()


class _DeadlineTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        tls = shared_ssl_context()
        super().__init__(verify=tls)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        # httpx has no parameter for a network backend: swap the pool it built (empty, never
        # used) for the same pool over ours. A test over real sockets guards this.
        self._pool = httpcore.ConnectionPool(
            ssl_context=tls,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_DeadlineBackend(),
        )


class ApiClient(httpx.Client):
    """An httpx.Client whose ordinary calls end by an overall deadline (see above): at least
    `deadline_s`, or twice the call's read timeout when the caller asked for a longer one
    (an LLM thinking for minutes), so a legitimately slow answer still fits."""

    def __init__(self, *, deadline_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deadline_s = deadline_s

    def deadline_for(self, request: httpx.Request) -> float | None:
        """Seconds the whole exchange may take, or None for a call without a deadline."""
        if not isinstance(request.stream, httpx.ByteStream):
            return None  # a file or generator body: an upload
        if len(request.content) > DEADLINE_BODY_LIMIT:
            return None
        read = request.extensions.get("timeout", {}).get("read")
        if read is None:
            return None  # the caller turned timeouts off on purpose
        return max(self.deadline_s, 2 * float(read))

    def send(
        self, request: httpx.Request, *, stream: bool = False, **kwargs: Any
    ) -> httpx.Response:
        limit = None if stream else self.deadline_for(request)
        if limit is None:
            return super().send(request, stream=stream, **kwargs)
        timeouts = dict(request.extensions.get("timeout", {}))
        if timeouts.get("pool") is None or timeouts["pool"] > limit:
            timeouts["pool"] = limit  # waiting for a free connection counts too
        request.extensions["timeout"] = timeouts
        call = _Call(time.monotonic() + limit)
        token = _current.set(call)
        try:
            return super().send(request, stream=False, **kwargs)
        except httpx.TimeoutException as exc:
            if not call.expired:
                raise
            host = request.url.host or "server"
            raise DeadlineExceeded(
                f"{host}: {request.method} {request.url.path} got no complete answer within "
                f"{limit:g} s (the server stalls or trickles its reply); try again later",
                provider=host,
            ) from exc
        finally:
            _current.reset(token)


def make_http_client(
    timeout: float = 30.0,
    transport: httpx.BaseTransport | None = None,
    *,
    deadline: float = API_DEADLINE_S,
) -> ApiClient:
    """The client every provider uses: `timeout` per socket operation, `deadline` for a whole
    ordinary API call (enforced on real sockets; an injected transport is used as is)."""
    # Redirects stay off: resumable uploads read 308 themselves, and a download that wants
    # them turns them on per request.
    return ApiClient(
        deadline_s=deadline,
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        headers={"User-Agent": f"leap/{__version__}"},
        transport=transport or _DeadlineTransport(),
    )


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from `now` given a Retry-After of seconds, an HTTP-date or ISO 8601."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    when: datetime | None = None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            # Zoom's daily limit sends an ISO timestamp such as 2026-05-31T00:00:00Z
            when = datetime.fromisoformat(text)
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass
class RetryPolicy:
    """How often and how long to retry: attempts count every try, the first one included;
    budget_s bounds the total time spent sleeping between them."""

    max_attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    budget_s: float = 120.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """The pause after failed try number `attempt` (1-based), ignoring the budget."""
        if retry_after is not None:
            # Waiting less than the server asked only buys another 429.
            return max(0.0, retry_after)
        ceiling = min(self.max_delay, self.base_delay * 2 ** min(attempt - 1, 60))
        return self.rng.uniform(0.0, ceiling)

    def next_delay(self, attempt: int, retry_after: float | None, slept: float) -> float | None:
        """The pause before the next try, or None when attempts or the budget are used up."""
        if attempt >= self.max_attempts:
            return None
        remaining = self.budget_s - slept
        wanted = self.delay(attempt, retry_after)
        if retry_after is not None:
            return wanted if wanted <= remaining else None
        if remaining <= 0:
            return None
        return min(wanted, remaining)


def loads(raw: bytes | str) -> Any:
    """json.loads for what a server sent: nesting deeper than Python's recursion limit is a
    ValueError (as any other malformed JSON is), not a RecursionError."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def server_url(value: Any, what: str, provider: str) -> str:
    """A URL a server handed us to call next (an upload URL, a session Location): an
    absolute http(s) URL httpx can send to, else PermanentError naming `what`."""
    try:
        url = httpx.URL(value) if isinstance(value, str) else None
    except httpx.InvalidURL:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:79] + "…"
        raise PermanentError(f"{provider}: {what} is not a usable URL: {shown}", provider=provider)
    return str(value)


def error_excerpt(response: httpx.Response) -> str:
    """A short, safe description of an error body: JSON code/message/error fields or text."""
    try:
        body = response.read()
    except httpx.HTTPError:
        return ""
    try:
        data: Any = loads(body)
    except ValueError:
        return one_line(body.decode("utf-8", "replace"), 200)
    if isinstance(data, dict):
        if isinstance(data.get("error"), dict):  # Google/OpenAI style {"error": {...}}
            data = data["error"]
        parts = [
            f"{k}={data[k]}"
            for k in ("code", "error", "reason", "message", "error_description")
            if isinstance(data.get(k), str | int) and not isinstance(data.get(k), bool)
        ]
        if parts:
            return one_line(", ".join(parts), 200)
    return one_line(str(data), 200)


# JSON escapes for a UTF-16 surrogate or NUL: the only way a decoded JSON string can hold
# text that PostgreSQL and SQLite refuse to store.
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:[dD][89a-fA-F][0-9a-fA-F]{2}|0000)")
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")


def clean_text(text: str) -> str:
    """`text` with lone surrogates and NUL replaced by U+FFFD, so any database stores it."""
    return _UNSTORABLE.sub("\ufffd", text)


def clean_json(data: Any) -> Any:
    """A decoded JSON value with every string (keys too) passed through clean_text."""
    if isinstance(data, str):
        return clean_text(data)
    if isinstance(data, list):
        return [clean_json(v) for v in data]
    if isinstance(data, dict):
        return {clean_text(k): clean_json(v) for k, v in data.items()}
    return data


def json_body(response: httpx.Response, provider: str) -> Any:
    """The response's JSON with unstorable characters replaced (see clean_text), or
    PermanentError when the body is not JSON."""
    try:
        raw = response.read()
        data = loads(raw)
        # Valid pairs come out of json.loads joined; only lone halves and NUL need the walk
        # (which recurses too: as deep as json.loads could go, from further down the stack).
        return clean_json(data) if _UNSTORABLE_ESCAPE.search(raw) else data
    except (ValueError, RecursionError) as exc:
        raise PermanentError(
            f"{provider}: malformed JSON in a {response.status_code} response",
            provider=provider,
            status=response.status_code,
        ) from exc


def classify_response(response: httpx.Response, provider: str, now: datetime) -> None:
    """Return for 1xx-3xx; raise RetryableError for 408/429/5xx, PermanentError otherwise."""
    status = response.status_code
    if status < 400:
        return
    detail = error_excerpt(response)
    what = f"{provider}: HTTP {status} on {response.request.method} {response.request.url.path}"
    message = f"{what}: {detail}" if detail else what
    if status in (408, 429) or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), now)
        raise RetryableError(message, provider=provider, status=status, retry_after=retry_after)
    if status == 401:
        raise AccessTokenRejected(message, provider=provider, status=status)
    raise PermanentError(message, provider=provider, status=status)


# Transport failures worth another try; the rest (bad URL scheme, proxy set-up, a request
# we could not even encode) would fail the same way again.
TRANSIENT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def send_with_retry(
    send: Callable[[], httpx.Response],
    classify: Classifier,
    policy: RetryPolicy,
    *,
    provider: str,
    sleep: Sleep = time.sleep,
) -> httpx.Response:
    """Call `send` until `classify` accepts its response.

    Retries transient transport errors raised by `send` and RetryableError raised by
    `classify`; anything else (PermanentError, CredentialRejected, errors of an inner retry
    loop raised from `send`) propagates at once. When attempts or the sleep budget run out,
    raises RetryableError saying so, chained to the last failure.
    """
    slept = 0.0
    attempt = 0
    while True:
        attempt += 1
        try:
            response = send()
        except httpx.TransportError as exc:
            if not isinstance(exc, TRANSIENT_ERRORS):
                raise PermanentError(
                    f"{provider}: request failed ({type(exc).__name__}: {exc})", provider=provider
                ) from exc
            error = RetryableError(
                f"{provider}: network error ({type(exc).__name__}: {exc})", provider=provider
            )
            cause: BaseException = exc
        else:
            try:
                classify(response)
            except RetryableError as exc:
                response.close()
                error, cause = exc, exc
            except BaseException:
                response.close()
                raise
            else:
                return response
        pause = policy.next_delay(attempt, error.retry_after, slept)
        if pause is None:
            why = (
                f"the server asked to wait {error.retry_after:.0f}s, beyond the retry budget"
                if error.retry_after is not None and attempt < policy.max_attempts
                else f"gave up after {attempt} attempts and {slept:.1f}s of waiting"
            )
            raise RetryableError(
                f"{error.message} (retries exhausted: {why})",
                provider=provider,
                status=error.status,
                retry_after=error.retry_after,
            ) from cause
        log.info("%s: attempt %d failed (%s); retrying in %.2fs", provider, attempt, error, pause)
        sleep(pause)
        slept += pause


def token_grant(
    send: Callable[[], httpx.Response],
    classify: Classifier,
    policy: RetryPolicy,
    *,
    provider: str,
    sleep: Sleep = time.sleep,
    what: str = "the token response",
) -> dict[str, Any]:
    """POST an OAuth token grant with retries; its JSON, which must carry an access_token."""
    response = send_with_retry(send, classify, policy, provider=provider, sleep=sleep)
    data = json_body(response, provider)
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        raise PermanentError(
            f"{provider}: {what} has no access_token", provider=provider, status=200
        )
    return data
