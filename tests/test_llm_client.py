"""The chat client against the fake DeepSeek: endpoints, auth, JSON mode, DeepSeek's quirks
(keep-alive lines, blanked-out answers, 402) and retries, in-process and over real HTTP."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from leap.errors import CredentialDead, LeapError, QuotaExceeded
from leap.providers.http import (
    CredentialRejected,
    PermanentError,
    ProviderError,
    RetryableError,
    RetryPolicy,
    make_http_client,
)
from leap.providers.llm import (
    DEFAULT_MODEL,
    AnswerTruncated,
    BadAnswer,
    ChatClient,
    InsufficientBalance,
    Usage,
    chat_url,
    extract_json_object,
)
from tests.fakes.llm import FakeChat
from tests.fakes.server import mock_transport, serve

BASE = "https://api.deepseek.com"
KEY = "sk-fake-deepseek"
MESSAGES = [
    {"role": "system", "content": "Reply in JSON."},
    {"role": "user", "content": "[00:00:00] hello there everyone\n[00:05:00] arima models now"},
]


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@dataclass
class Rig:
    fake: FakeChat
    client: ChatClient
    sleeps: Sleeps


@pytest.fixture
def fake() -> FakeChat:
    return FakeChat(api_key=KEY)


@pytest.fixture
def http(fake: FakeChat) -> Iterator[httpx.Client]:
    with make_http_client(transport=mock_transport(fake.handler)) as client:
        yield client


def make_client(http: httpx.Client, sleeps: Sleeps, **kwargs: object) -> ChatClient:
    options: dict[str, object] = {
        "base_url": BASE,
        "api_key": KEY,
        "policy": RetryPolicy(max_attempts=5, budget_s=60.0, rng=random.Random(7)),
        "sleep": sleeps,
    }
    options.update(kwargs)
    return ChatClient(http, **options)  # type: ignore[arg-type]


@pytest.fixture
def rig(fake: FakeChat, http: httpx.Client) -> Rig:
    sleeps = Sleeps()
    return Rig(fake, make_client(http, sleeps), sleeps)


# ---------------------------------------------------------------------------------------------
# URLs and the request


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://api.deepseek.com", "https://api.deepseek.com/chat/completions"),
        ("https://api.deepseek.com/", "https://api.deepseek.com/chat/completions"),
        ("https://api.deepseek.com/v1", "https://api.deepseek.com/v1/chat/completions"),
        ("https://api.openai.com/v1", "https://api.openai.com/v1/chat/completions"),
        ("http://localhost:11434/v1/", "http://localhost:11434/v1/chat/completions"),
        (" http://x.test/v1/chat/completions ", "http://x.test/v1/chat/completions"),
    ],
)
def test_chat_url(base: str, url: str) -> None:
    assert chat_url(base) == url


def test_request_shape_for_deepseek(rig: Rig) -> None:
    data, usage = rig.client.complete_json(MESSAGES, max_tokens=1000)
    assert data["topics"][0] == {"start": "00:00:00", "title": "hello there everyone"}
    body = rig.fake.bodies[0]
    assert body["model"] == DEFAULT_MODEL == "deepseek-flash"
    assert body["response_format"] == {"type": "json_object"}
    assert body["stream"] is False
    assert body["max_tokens"] == 1000
    assert body["temperature"] == 0.2
    assert body["thinking"] == {"type": "disabled"}
    assert body["messages"] == MESSAGES
    assert rig.fake.paths == ["/chat/completions"]
    assert rig.fake.auth_headers == [f"Bearer {KEY}"]
    assert usage == Usage(rig.fake.prompt_tokens, rig.fake.completion_tokens)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    assert rig.sleeps == []


def test_openai_style_base_with_v1_and_no_thinking_field(
    http: httpx.Client, fake: FakeChat
) -> None:
    client = make_client(http, Sleeps(), base_url="https://llm.example.test/v1", model="gpt-x")
    client.complete_json(MESSAGES, max_tokens=500)
    assert fake.paths == ["/v1/chat/completions"]
    assert "thinking" not in fake.bodies[0]
    assert fake.bodies[0]["model"] == "gpt-x"


def test_extra_body_overrides_the_default(http: httpx.Client, fake: FakeChat) -> None:
    client = make_client(http, Sleeps(), extra_body={"user_id": "leap"})
    client.complete_json(MESSAGES, max_tokens=500)
    assert fake.bodies[0]["user_id"] == "leap"
    assert "thinking" not in fake.bodies[0]


def test_no_key_sends_no_authorization() -> None:
    fake = FakeChat(api_key=None)  # Ollama ignores keys
    with make_http_client(transport=mock_transport(fake.handler)) as http:
        client = make_client(http, Sleeps(), base_url="http://localhost:11434/v1", api_key=None)
        data, _ = client.complete_json(MESSAGES, max_tokens=500)
    assert data["topics"]
    assert fake.auth_headers == [None]


def test_blank_model_is_refused(http: httpx.Client) -> None:
    with pytest.raises(ValueError, match="model"):
        make_client(http, Sleeps(), model="  ")


# ---------------------------------------------------------------------------------------------
# DeepSeek's answer quirks


def test_keepalive_blank_lines_before_the_body(rig: Rig) -> None:
    rig.fake.keepalive_lines = 25
    data, _ = rig.client.complete_json(MESSAGES, max_tokens=1000)
    assert data["themes"]
    rig.fake.inject("keepalive")
    rig.fake.keepalive_lines = 0
    assert rig.client.complete_json(MESSAGES, max_tokens=1000)[0] == data


@pytest.mark.parametrize("kind", ["whitespace", "empty", "null", "non_json", "wrong_shape"])
def test_a_bad_answer_is_asked_again(rig: Rig, kind: str) -> None:
    rig.fake.inject(kind, 2)
    data, usage = rig.client.complete_json(MESSAGES, max_tokens=1000)
    assert rig.fake.requests == 3 if kind != "wrong_shape" else rig.fake.requests == 1
    if kind == "wrong_shape":
        # Valid JSON of another shape is the caller's business (topics.parse_answer).
        assert data == {"summary": "a lecture"}
        return
    assert data["topics"]
    # Every attempt is billed, so every attempt counts.
    assert usage == Usage(rig.fake.prompt_tokens, rig.fake.completion_tokens)
    assert len(rig.sleeps) == 2


@pytest.mark.parametrize("kind", ["whitespace", "non_json"])
def test_a_bad_answer_every_time_is_a_permanent_error(rig: Rig, kind: str) -> None:
    rig.fake.inject(kind, 10)
    with pytest.raises(BadAnswer) as info:
        rig.client.complete_json(MESSAGES, max_tokens=1000)
    assert rig.fake.requests == 3
    assert isinstance(info.value, PermanentError)
    assert "3 times" in info.value.message
    assert info.value.exit_code == 1


@pytest.mark.parametrize("kind", ["fenced", "prose"])
def test_json_in_fences_or_prose_is_accepted(rig: Rig, kind: str) -> None:
    plain, _ = rig.client.complete_json(MESSAGES, max_tokens=1000)
    rig.fake.inject(kind)
    wrapped, _ = rig.client.complete_json(MESSAGES, max_tokens=1000)
    assert wrapped == plain
    assert rig.fake.requests == 2


def test_cut_off_answer_is_permanent(rig: Rig) -> None:
    rig.fake.inject("length")
    with pytest.raises(AnswerTruncated, match=r"answer cut off \(max_tokens=1000"):
        rig.client.complete_json(MESSAGES, max_tokens=1000)
    assert rig.fake.requests == 1


def test_a_too_small_max_tokens_is_reported_as_cut_off(rig: Rig) -> None:
    with pytest.raises(AnswerTruncated, match="max_tokens=3"):
        rig.client.complete_json(MESSAGES, max_tokens=3)


@pytest.mark.parametrize("kind", ["system_resource", "no_choices", "429", "500", "503", "drop"])
def test_transient_failures_are_retried(rig: Rig, kind: str) -> None:
    rig.fake.inject(kind, 2)
    data, _ = rig.client.complete_json(MESSAGES, max_tokens=1000)
    assert data["topics"]
    assert rig.fake.requests == 3
    assert len(rig.sleeps) == 2


def test_retry_after_is_honoured(rig: Rig) -> None:
    rig.fake.inject("429", retry_after="7")
    rig.client.complete_json(MESSAGES, max_tokens=1000)
    assert rig.sleeps == [7.0]


def test_retries_run_out(rig: Rig) -> None:
    rig.fake.inject("503", 50)
    with pytest.raises(RetryableError, match="retries exhausted"):
        rig.client.complete_json(MESSAGES, max_tokens=1000)
    assert rig.fake.requests == 5


# ---------------------------------------------------------------------------------------------
# Errors that must not be retried


def test_insufficient_balance_is_a_quota_error_with_exit_code_4(rig: Rig) -> None:
    rig.fake.inject("402", 5)
    with pytest.raises(InsufficientBalance) as info:
        rig.client.complete_json(MESSAGES, max_tokens=1000)
    error = info.value
    assert isinstance(error, QuotaExceeded)
    assert isinstance(error, ProviderError)
    assert isinstance(error, PermanentError)
    assert isinstance(error, LeapError)
    assert error.exit_code == 4
    assert error.status == 402
    assert "insufficient balance" in error.message.lower()
    assert "Insufficient Balance" in error.message  # the server's own words
    assert rig.fake.requests == 1
    assert rig.sleeps == []


def test_a_rejected_key_is_a_dead_credential(http: httpx.Client, fake: FakeChat) -> None:
    client = make_client(http, Sleeps(), api_key="sk-wrong")
    with pytest.raises(CredentialRejected) as info:
        client.complete_json(MESSAGES, max_tokens=1000)
    assert isinstance(info.value, CredentialDead)
    assert info.value.exit_code == 5
    assert "sk-wrong" not in info.value.message
    assert fake.requests == 1


def test_injected_401_too(rig: Rig) -> None:
    rig.fake.inject("401")
    with pytest.raises(CredentialRejected):
        rig.client.complete_json(MESSAGES, max_tokens=1000)


def test_retired_model_is_permanent_and_says_which(http: httpx.Client, fake: FakeChat) -> None:
    client = make_client(http, Sleeps(), model="deepseek-chat")
    with pytest.raises(PermanentError, match="deepseek-chat") as info:
        client.complete_json(MESSAGES, max_tokens=1000)
    assert info.value.status == 400
    assert "Model Not Exist" in info.value.message
    assert fake.requests == 1


def test_json_mode_needs_the_word_json(rig: Rig) -> None:
    with pytest.raises(PermanentError, match="word 'json'"):
        rig.client.complete_json([{"role": "user", "content": "hello"}], max_tokens=100)


def test_unknown_path_is_permanent(http: httpx.Client) -> None:
    client = make_client(http, Sleeps(), base_url="https://api.deepseek.com/v2")
    with pytest.raises(PermanentError) as info:
        client.complete_json(MESSAGES, max_tokens=100)
    assert info.value.status == 404


def test_malformed_200_body_is_permanent() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"\n\n<html>gateway</html>")

    with make_http_client(transport=mock_transport(handler)) as http:
        client = make_client(http, Sleeps())
        with pytest.raises(PermanentError, match="malformed JSON"):
            client.complete_json(MESSAGES, max_tokens=100)


# ---------------------------------------------------------------------------------------------
# Pure helpers


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('  \n{"a": 1}\n ', {"a": 1}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('```\n{"a": [1, 2]}\n```', {"a": [1, 2]}),
        ('Sure! ```json\n{"a": 1}\n``` Anything else?', {"a": 1}),
        ('Here it is: {"a": {"b": 2}} — done', {"a": {"b": 2}}),
        ('{"тема": "ряды"}', {"тема": "ряды"}),
        ("[1, 2]", None),
        ("", None),
        ("   ", None),
        ("no json here", None),
        ('{"a": 1', None),
    ],
)
def test_extract_json_object(content: str, expected: object) -> None:
    assert extract_json_object(content) == expected


def test_usage_adds_up() -> None:
    assert Usage(1, 2) + Usage(10, 20) == Usage(11, 22)
    assert Usage().total_tokens == 0


# ---------------------------------------------------------------------------------------------
# Over a real HTTP server


def test_real_server_with_slow_keepalive_lines_and_v1_path() -> None:
    fake = FakeChat(api_key=KEY)
    fake.keepalive_lines = 4
    fake.keepalive_delay = 0.05  # the lines really arrive before the body, one by one
    fake.inject("503")
    fake.inject("drop")
    with serve(fake.handler) as url, make_http_client() as http:
        sleeps = Sleeps()
        client = make_client(http, sleeps, base_url=url + "/v1")
        data, usage = client.complete_json(MESSAGES, max_tokens=1000)
        fake.inject("402")
        with pytest.raises(InsufficientBalance):
            client.complete_json(MESSAGES, max_tokens=1000)
    assert data["topics"][1]["start"] == "00:05:00"
    assert usage.completion_tokens > 0
    assert fake.served["503"] == fake.served["drop"] == fake.served["402"] == 1
    assert fake.paths == ["/v1/chat/completions"] * 4
    assert len(sleeps) == 2
