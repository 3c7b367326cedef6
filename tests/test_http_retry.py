"""The shared provider HTTP layer (Retry-After, backoff, budget, error mapping) and the fake
HTTP server every provider fake runs on."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from leap import __version__
from leap.errors import CredentialDead, NotFound
from leap.providers.http import (
    DEADLINE_BODY_LIMIT,
    AccessTokenRejected,
    CredentialRejected,
    DeadlineExceeded,
    PermanentError,
    ResourceNotFound,
    RetryableError,
    RetryPolicy,
    classify_response,
    clean_text,
    json_body,
    make_http_client,
    parse_retry_after,
    send_with_retry,
)
from tests.fakes.server import DropConnection, mock_transport, serve

NOW = datetime(2026, 5, 30, 23, 59, 0, tzinfo=UTC)


class Sleeps(list[float]):
    """An injected sleep that records instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class _TopRandom(random.Random):
    """Always draws the top of the range, to observe the jitter ceiling."""

    def random(self) -> float:
        return 1.0 - 1e-12


# ---------------------------------------------------------------------------------------------
# parse_retry_after


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("1.5", 1.5),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("Sun, 31 May 2026 00:00:00 GMT", 60.0),
        ("2026-05-31T00:00:00Z", 60.0),
        ("2026-05-31T03:00:00+03:00", 60.0),
        ("2026-05-31T00:00:00", 60.0),  # naive: UTC
        ("2026-05-30T00:00:00Z", 0.0),  # in the past
        ("Sat, 30 May 2026 00:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("-5", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_naive_now_is_utc() -> None:
    assert parse_retry_after("2026-05-31T00:00:00Z", NOW.replace(tzinfo=None)) == 60.0


# ---------------------------------------------------------------------------------------------
# RetryPolicy


def test_backoff_doubles_then_caps() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0, rng=_TopRandom())
    ceilings = [policy.delay(attempt, None) for attempt in range(1, 10)]
    assert ceilings == pytest.approx([0.5, 1, 2, 4, 8, 16, 30, 30, 30])


def test_full_jitter_stays_within_bounds_and_varies() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0, rng=random.Random(42))
    for attempt in range(1, 12):
        ceiling = min(30.0, 0.5 * 2 ** (attempt - 1))
        samples = [policy.delay(attempt, None) for _ in range(300)]
        assert all(0.0 <= s <= ceiling for s in samples)
        assert max(samples) > 0.8 * ceiling and min(samples) < 0.2 * ceiling  # full jitter
    assert policy.delay(10_000, None) <= 30.0  # no overflow on absurd attempt numbers


def test_retry_after_is_honoured_exactly() -> None:
    policy = RetryPolicy(max_delay=30.0, rng=random.Random(1))
    assert policy.delay(1, 2.5) == 2.5
    assert policy.delay(3, 45.0) == 45.0  # waiting less than asked only buys another 429


def test_next_delay_attempts_and_budget() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=1.0, budget_s=10.0, rng=_TopRandom())
    assert policy.next_delay(1, None, slept=0.0) == pytest.approx(1.0)
    assert policy.next_delay(3, None, slept=0.0) is None  # third try was the last
    assert policy.next_delay(2, None, slept=9.5) == pytest.approx(0.5)  # clipped to budget
    assert policy.next_delay(2, None, slept=10.0) is None
    assert policy.next_delay(1, 8.0, slept=1.0) == 8.0
    assert policy.next_delay(1, 9.5, slept=1.0) is None  # beyond the budget: give up


# ---------------------------------------------------------------------------------------------
# send_with_retry


def _scripted(
    responses: list[httpx.Response | Exception],
) -> tuple[Callable[[], httpx.Response], list[int], httpx.Client]:
    """A send() that answers from a script, through a real httpx client."""
    script = iter(responses)
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        item = next(script)
        if isinstance(item, Exception):
            raise item
        return item

    client = make_http_client(transport=httpx.MockTransport(handler))

    def send() -> httpx.Response:
        calls.append(1)
        return client.get("https://api.example/v1/things?access_token=s3cret-in-query")

    return send, calls, client


def _classify(response: httpx.Response) -> None:
    classify_response(response, "example", NOW)


@pytest.fixture
def closing() -> Iterator[list[httpx.Client]]:
    clients: list[httpx.Client] = []
    yield clients
    for c in clients:
        c.close()


def test_retries_5xx_then_succeeds(closing: list[httpx.Client]) -> None:
    send, calls, client = _scripted(
        [httpx.Response(503), httpx.Response(502), httpx.Response(200, json={"ok": True})]
    )
    closing.append(client)
    sleeps = Sleeps()
    policy = RetryPolicy(base_delay=0.5, rng=random.Random(3))
    response = send_with_retry(send, _classify, policy, provider="example", sleep=sleeps)
    assert response.json() == {"ok": True}
    assert len(calls) == 3 and len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("Sun, 31 May 2026 00:00:00 GMT", 60.0), ("2026-05-31T00:00:30Z", 90.0)],
)
def test_429_honours_retry_after(closing: list[httpx.Client], header: str, expected: float) -> None:
    send, _calls, client = _scripted(
        [httpx.Response(429, headers={"Retry-After": header}), httpx.Response(200)]
    )
    closing.append(client)
    sleeps = Sleeps()
    send_with_retry(send, _classify, RetryPolicy(), provider="example", sleep=sleeps)
    assert sleeps == [expected]


def test_permanent_errors_are_not_retried(closing: list[httpx.Client]) -> None:
    send, calls, client = _scripted(
        [httpx.Response(404, json={"code": 1, "message": "nope"}), httpx.Response(200)]
    )
    closing.append(client)
    sleeps = Sleeps()
    with pytest.raises(PermanentError) as info:
        send_with_retry(send, _classify, RetryPolicy(), provider="example", sleep=sleeps)
    assert info.value.status == 404 and info.value.provider == "example"
    assert "nope" in info.value.message
    assert calls == [1] and sleeps == []
    assert info.value.exit_code == 1


def test_401_is_permanent_for_the_token(closing: list[httpx.Client]) -> None:
    send, calls, client = _scripted([httpx.Response(401), httpx.Response(200)])
    closing.append(client)
    with pytest.raises(AccessTokenRejected):
        send_with_retry(send, _classify, RetryPolicy(), provider="example", sleep=Sleeps())
    assert calls == [1]


def test_budget_exhaustion_raises_instead_of_hanging(closing: list[httpx.Client]) -> None:
    send, calls, client = _scripted([httpx.Response(503) for _ in range(1000)])
    closing.append(client)
    sleeps = Sleeps()
    policy = RetryPolicy(max_attempts=1000, base_delay=1.0, max_delay=4.0, budget_s=10.0)
    with pytest.raises(RetryableError) as info:
        send_with_retry(send, _classify, policy, provider="example", sleep=sleeps)
    assert "retries exhausted" in info.value.message
    assert info.value.status == 503
    assert sum(sleeps) <= 10.0 + 1e-9
    assert len(calls) == len(sleeps) + 1 >= 4


def test_max_attempts_counts_every_try(closing: list[httpx.Client]) -> None:
    send, calls, client = _scripted([httpx.Response(500) for _ in range(10)])
    closing.append(client)
    sleeps = Sleeps()
    with pytest.raises(RetryableError, match="after 3 attempts"):
        send_with_retry(send, _classify, RetryPolicy(max_attempts=3), provider="x", sleep=sleeps)
    assert len(calls) == 3 and len(sleeps) == 2


def test_retry_after_beyond_budget_gives_up_at_once(closing: list[httpx.Client]) -> None:
    daily = httpx.Response(429, headers={"Retry-After": "2026-05-31T12:00:00Z"})
    send, calls, client = _scripted([daily, httpx.Response(200)])
    closing.append(client)
    sleeps = Sleeps()
    with pytest.raises(RetryableError) as info:
        send_with_retry(send, _classify, RetryPolicy(budget_s=120), provider="x", sleep=sleeps)
    assert calls == [1] and sleeps == []
    assert info.value.retry_after == pytest.approx(12 * 3600 + 60)
    assert "retries exhausted" in info.value.message


def test_transport_errors_are_retried_but_not_misconfiguration(
    closing: list[httpx.Client],
) -> None:
    send, calls, client = _scripted(
        [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.Response(200)]
    )
    closing.append(client)
    sleeps = Sleeps()
    assert send_with_retry(send, _classify, RetryPolicy(), provider="x", sleep=sleeps).is_success
    assert len(calls) == 3 and len(sleeps) == 2

    send, calls, client = _scripted([httpx.UnsupportedProtocol("ftp?"), httpx.Response(200)])
    closing.append(client)
    with pytest.raises(PermanentError):
        send_with_retry(send, _classify, RetryPolicy(), provider="x", sleep=sleeps)
    assert calls == [1]


def test_errors_raised_by_send_itself_are_not_retried_again() -> None:
    # An inner retry loop (e.g. the token endpoint) already spent its own budget.
    calls: list[int] = []

    def send() -> httpx.Response:
        calls.append(1)
        raise RetryableError("inner loop exhausted", provider="x")

    with pytest.raises(RetryableError, match="inner loop"):
        send_with_retry(send, _classify, RetryPolicy(), provider="x", sleep=Sleeps())
    assert calls == [1]


def test_error_messages_are_one_line_and_secret_free(closing: list[httpx.Client]) -> None:
    body = "bad\nrequest: access_token=s3cret-in-body\nAuthorization: Bearer abc.def.ghi"
    send, _calls, client = _scripted([httpx.Response(400, text=body)])
    closing.append(client)
    with pytest.raises(PermanentError) as info:
        send_with_retry(send, _classify, RetryPolicy(), provider="x", sleep=Sleeps())
    message = info.value.message
    assert "\n" not in message
    assert "s3cret" not in message and "abc.def.ghi" not in message
    assert "/v1/things" in message  # the path helps; the query (with its token) is left out


def test_error_tree_exit_codes() -> None:
    assert RetryableError("x", provider="p").exit_code == 1
    assert PermanentError("x", provider="p").exit_code == 1
    dead = CredentialRejected("x", provider="p", status=401)
    assert isinstance(dead, CredentialDead) and dead.exit_code == 5 and dead.status == 401
    gone = ResourceNotFound("x", provider="p", status=404)
    assert isinstance(gone, NotFound) and isinstance(gone, PermanentError)
    assert gone.exit_code == 3


def test_make_http_client_defaults() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(302, headers={"Location": "https://elsewhere.example/"})

    with make_http_client(timeout=5.0, transport=httpx.MockTransport(handler)) as client:
        response = client.get("https://api.example/")
        assert response.status_code == 302  # redirects are not followed by default
        assert client.timeout.read == 5.0
    assert seen[0].headers["User-Agent"] == f"leap/{__version__}"


# ---------------------------------------------------------------------------------------------
# The fake server (tests/fakes/server.py)


def _app(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/echo":
        return httpx.Response(
            200,
            json={
                "method": request.method,
                "query": dict(request.url.params),
                "body": request.content.decode(),
                "host": request.url.host,
                "x": request.headers.get("x-test"),
            },
        )
    if path == "/stream":
        sized = request.url.params.get("sized") == "1"
        chunks = (bytes([i]) * 65536 for i in range(80))  # 5 MiB, produced on demand
        headers = {"Content-Type": "video/mp4"}
        if sized:
            headers["Content-Length"] = str(80 * 65536)
        return httpx.Response(200, headers=headers, content=chunks)
    if path == "/cut":

        def cut() -> Iterator[bytes]:
            yield b"a" * 1000
            raise DropConnection

        return httpx.Response(200, headers={"Content-Length": "5000"}, content=cut())
    if path == "/drop":
        raise DropConnection
    if path == "/boom":
        raise RuntimeError("handler exploded")
    if path == "/empty":
        return httpx.Response(204)
    return httpx.Response(404, text="no route")


def _expected_stream() -> bytes:
    return b"".join(bytes([i]) * 65536 for i in range(80))


def test_server_round_trips_requests_and_streams() -> None:
    with serve(_app) as base, httpx.Client(base_url=base) as client:
        echo = client.post("/echo?a=1&b=two", content=b"payload", headers={"X-Test": "yes"})
        assert echo.json() == {
            "method": "POST",
            "query": {"a": "1", "b": "two"},
            "body": "payload",
            "host": "127.0.0.1",
            "x": "yes",
        }
        chunked_upload = client.put("/echo", content=iter([b"chunk-", b"ed"]))
        assert chunked_upload.json()["body"] == "chunk-ed"
        for sized in ("0", "1"):
            with client.stream("GET", "/stream", params={"sized": sized}) as response:
                assert response.headers["content-type"] == "video/mp4"
                if sized == "1":
                    assert response.headers["content-length"] == str(80 * 65536)
                else:
                    assert response.headers["transfer-encoding"] == "chunked"
                assert response.read() == _expected_stream()
        head = client.head("/stream", params={"sized": "1"})
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(80 * 65536)
        assert client.get("/empty").status_code == 204
        boom = client.get("/boom")
        assert boom.status_code == 500 and "handler exploded" in boom.text
        assert client.get("/echo").status_code == 200  # the server survives a handler error


def test_server_drop_connection_before_and_during_the_body() -> None:
    with serve(_app) as base, httpx.Client(base_url=base) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/drop")
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/cut")
        assert client.get("/echo").status_code == 200


def test_mock_transport_mirrors_the_server_on_drops_and_head() -> None:
    with httpx.Client(transport=mock_transport(_app), base_url="https://fake.test") as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/drop")
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/cut")
        head = client.head("/stream", params={"sized": "1"})
        assert head.content == b"" and head.headers["content-length"] == str(80 * 65536)
        with client.stream("GET", "/stream") as response:
            assert response.read() == _expected_stream()


def test_dropped_connection_is_retried_through_the_real_server() -> None:
    state = {"n": 0}

    def flaky(request: httpx.Request) -> httpx.Response:
        state["n"] += 1
        if state["n"] == 1:
            raise DropConnection
        return httpx.Response(200, json={"n": state["n"]})

    sleeps = Sleeps()
    with serve(flaky) as base, make_http_client(timeout=5) as client:
        response = send_with_retry(
            lambda: client.get(base + "/x"), _classify, RetryPolicy(), provider="x", sleep=sleeps
        )
    assert response.json() == {"n": 2} and len(sleeps) == 1


def test_server_shuts_down_with_idle_keepalive_connections_open() -> None:
    client = httpx.Client()
    try:
        with serve(_app) as base:
            assert client.get(base + "/echo").status_code == 200
        # The server is gone; its end of the pooled connection was closed cleanly.
        with pytest.raises(httpx.TransportError):
            client.get(base + "/echo", timeout=2)
    finally:
        client.close()


# ---------------------------------------------------------------------------------------------
# The overall deadline of ordinary API calls


def _slow_body(request: httpx.Request) -> httpx.Response:
    def trickle() -> Iterator[bytes]:
        for _ in range(6):
            time.sleep(0.25)
            yield b"x"

    return httpx.Response(200, content=trickle(), headers={"Content-Type": "application/json"})


def test_a_trickling_server_ends_by_the_deadline_headers_included() -> None:
    # One byte every 50 ms from the status line on: each read succeeds, none ever times out.
    with (
        serve(lambda _r: httpx.Response(200, json={"ok": True}), write_delay=lambda: 0.05) as base,
        make_http_client(timeout=0.5, deadline=1.0) as client,
    ):
        began = time.monotonic()
        with pytest.raises(DeadlineExceeded) as caught:
            client.get(base + "/api")
        took = time.monotonic() - began
    assert 1.0 <= took < 2.5, took
    assert "GET /api" in caught.value.message and "within 1 s" in caught.value.message
    assert isinstance(caught.value, RetryableError) and caught.value.exit_code == 1


def test_a_slow_body_misses_the_deadline_but_a_stream_does_not() -> None:
    with serve(_slow_body) as base, make_http_client(timeout=0.5, deadline=0.5) as client:
        # Deadline: twice the 0.5 s read timeout. The body takes 1.5 s.
        began = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            client.get(base + "/api")
        assert time.monotonic() - began < 1.5
        # A download streams and keeps only its per-read timeout.
        with client.stream("GET", base + "/media") as response:
            assert response.read() == b"x" * 6
        # A call that asks for a longer read timeout gets a deadline to match.
        assert client.get(base + "/api", timeout=2.0).content == b"x" * 6


def test_send_with_retry_does_not_retry_a_missed_deadline() -> None:
    calls = {"n": 0}

    def app(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return _slow_body(request)

    sleeps = Sleeps()
    with (
        serve(app) as base,
        make_http_client(timeout=0.4, deadline=0.8) as client,
        pytest.raises(DeadlineExceeded),
    ):
        send = lambda: client.get(base + "/x")  # noqa: E731
        send_with_retry(send, _classify, RetryPolicy(), provider="x", sleep=sleeps)
    assert calls["n"] == 1 and sleeps == []


def test_which_calls_get_a_deadline() -> None:
    with make_http_client(timeout=30.0, deadline=120.0) as client:

        def deadline(method: str, **kw: Any) -> float | None:
            return client.deadline_for(client.build_request(method, "https://api.test/", **kw))

        assert deadline("GET") == 120.0
        assert deadline("POST", json={"a": 1}) == 120.0
        assert deadline("POST", data={"grant_type": "x"}) == 120.0
        # A longer read timeout (an LLM thinking) stretches the deadline to twice it.
        assert deadline("POST", json={}, timeout=httpx.Timeout(30, read=900)) == 1800.0
        # Uploads: their time grows with the file, not with the server.
        assert deadline("PUT", content=iter([b"chunk"])) is None
        assert deadline("POST", files={"file": ("a.mp3", b"x")}) is None
        assert deadline("PUT", content=b"x" * (DEADLINE_BODY_LIMIT + 1)) is None
        assert deadline("GET", timeout=None) is None  # the caller turned timeouts off


# ---------------------------------------------------------------------------------------------
# JSON that the database can store


def test_json_body_replaces_lone_surrogates_and_nul() -> None:
    raw = b'{"topic": "a\\ud800b\\u0000c", "ok": "\\ud83d\\ude00", "n": [1, {"\\udfff": "x"}]}'
    data = json_body(httpx.Response(200, content=raw), "zoom")
    assert data == {"topic": "a\ufffdb\ufffdc", "ok": "\U0001f600", "n": [1, {"\ufffd": "x"}]}
    plain = b'{"topic": "\\u043b\\u0435\\u043a\\u0446\\u0438\\u044f"}'
    assert json_body(httpx.Response(200, content=plain), "zoom") == {"topic": "лекция"}
    assert clean_text("fine") == "fine"
