"""An OpenAI-compatible chat-completions client for JSON answers (DeepSeek, OpenAI, Ollama, ...):
retries, DeepSeek's quirks (keep-alive blank lines, blanked-out JSON, 402) and token usage."""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from leap.errors import QuotaExceeded
from leap.providers.http import (
    CredentialRejected,
    PermanentError,
    RetryableError,
    RetryPolicy,
    Sleep,
    classify_response,
    error_excerpt,
    loads,
    one_line,
    send_with_retry,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MODEL",
    "DEFAULT_TIMEOUT",
    "FALLBACK_MODEL",
    "AnswerTruncated",
    "BadAnswer",
    "ChatClient",
    "InsufficientBalance",
    "Usage",
    "chat_url",
    "extract_json_object",
]

log = logging.getLogger(__name__)

# docs/platforms.md, "DeepSeek: chat": deepseek-chat/deepseek-reasoner answer 400 since 2026-07-24.
DEFAULT_BASE_URL = "https://api.deepseek.com"
DEFAULT_MODEL = "deepseek-flash"
FALLBACK_MODEL = "deepseek-v4-flash"

# DeepSeek holds a busy request open for up to 10 minutes (older docs: 30) sending blank lines
# before the answer starts, so reads must wait far longer than any other provider's.
DEFAULT_TIMEOUT = httpx.Timeout(connect=15.0, read=900.0, write=60.0, pool=60.0)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


class InsufficientBalance(PermanentError, QuotaExceeded):
    """402: the LLM account has run out of money. Exit code 4, like any quota."""

    exit_code = QuotaExceeded.exit_code


class AnswerTruncated(PermanentError):
    """finish_reason "length": the JSON was cut off; the same request would be cut off again."""


class BadAnswer(PermanentError):
    """The model kept answering with no JSON object (empty, blanked out, or prose)."""


def chat_url(base_url: str) -> str:
    """The chat-completions endpoint under `base_url`.

    The base is used as given, so it must carry the API version when the server wants one:
    DeepSeek `https://api.deepseek.com` (its `/v1` also works), OpenAI
    `https://api.openai.com/v1`, Ollama `http://localhost:11434/v1`. A base that already ends
    in `/chat/completions` is taken as the endpoint itself.
    """
    base = base_url.strip().rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    return base + "/chat/completions"


def _default_extra_body(base_url: str) -> dict[str, Any]:
    # DeepSeek V4 thinks by default: slower, dearer and no better at extracting JSON. Other
    # servers may reject the unknown field (OpenAI answers 400), so it goes to DeepSeek only.
    host = (urlsplit(base_url.strip()).hostname or "").lower()
    if host == "deepseek.com" or host.endswith(".deepseek.com"):
        return {"thinking": {"type": "disabled"}}
    return {}


_FENCE = re.compile(r"```[A-Za-z0-9_-]*\s*\n?(.*?)\n?\s*```", re.DOTALL)


def extract_json_object(content: str) -> dict[str, Any] | None:
    """The JSON object in a model's answer: bare, inside ``` fences, or embedded in prose
    (first `{` to last `}`); None when there is none."""
    text = content.strip()
    candidates = [text]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    first, last = text.find("{"), text.rfind("}")
    if 0 <= first < last:
        candidates.append(text[first : last + 1])
    for candidate in candidates:
        try:
            data = loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    return None


# A token count past this is a broken server, not a bill (it would not fit the usage rows).
_MAX_TOKENS = 10**12


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not math.isfinite(value):  # JSON's Infinity and NaN
        return 0
    return min(max(0, int(value)), _MAX_TOKENS)


def _usage(data: Mapping[str, Any]) -> Usage:
    raw = data.get("usage")
    if not isinstance(raw, Mapping):
        return Usage()
    return Usage(_int(raw.get("prompt_tokens")), _int(raw.get("completion_tokens")))


def _parse_body(response: httpx.Response, provider: str) -> dict[str, Any]:
    # Keep-alive blank lines may precede the JSON; the body is read whole before parsing.
    raw = response.read().strip()
    try:
        data = loads(raw)
    except ValueError as exc:
        raise PermanentError(
            f"{provider}: malformed JSON in a {response.status_code} response",
            provider=provider,
            status=response.status_code,
        ) from exc
    if not isinstance(data, dict):
        raise PermanentError(
            f"{provider}: the response is not a JSON object", provider=provider, status=200
        )
    return data


def _first_choice(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        return choices[0]
    return None


class ChatClient:
    """`complete_json` sends one chat request in JSON mode and returns the parsed object.

    401 raises CredentialRejected, 402 InsufficientBalance (exit 4), other 4xx PermanentError;
    429, 5xx, timeouts, dropped connections and DeepSeek's `insufficient_system_resource`
    are retried under `policy` (Retry-After honoured). An answer that is empty, whitespace
    (DeepSeek blanks out invalid JSON) or holds no JSON object is asked again up to
    `bad_answer_retries` times, then BadAnswer; a cut-off answer raises AnswerTruncated.
    `extra_body` adds fields to every request; by default DeepSeek hosts get thinking
    disabled and other servers nothing.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None,
        model: str = DEFAULT_MODEL,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        extra_body: Mapping[str, Any] | None = None,
        bad_answer_retries: int = 2,
        provider: str = "llm",
    ) -> None:
        if not model.strip():
            raise ValueError("an LLM model name is required")
        self._http = http
        self.url = chat_url(base_url)
        self._api_key = api_key
        self.model = model.strip()
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._timeout = timeout
        self._extra = dict(_default_extra_body(base_url) if extra_body is None else extra_body)
        self._bad_answer_retries = max(0, bad_answer_retries)
        self.provider = provider
        self.request_count = 0

    def complete_json(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = 0.2
    ) -> tuple[dict[str, Any], Usage]:
        """The model's JSON object and the tokens spent (every attempt counts: all are billed)."""
        body: dict[str, Any] = {
            **self._extra,
            "model": self.model,
            "messages": messages,
            "response_format": {"type": "json_object"},
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": False,
        }
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"

        def send() -> httpx.Response:
            self.request_count += 1
            return self._http.post(self.url, json=body, headers=headers, timeout=self._timeout)

        spent = Usage()
        problem = ""
        for attempt in range(1, self._bad_answer_retries + 2):
            response = send_with_retry(
                send, self._classify, self._policy, provider=self.provider, sleep=self._sleep
            )
            try:
                data = _parse_body(response, self.provider)
            finally:
                response.close()
            spent += _usage(data)
            choice = _first_choice(data) or {}
            message = choice.get("message")
            content = message.get("content") if isinstance(message, Mapping) else None
            if choice.get("finish_reason") == "length":
                raise AnswerTruncated(
                    f"{self.provider}: answer cut off (max_tokens={max_tokens} reached)",
                    provider=self.provider,
                    status=200,
                )
            text = content if isinstance(content, str) else ""
            if not text.strip():
                problem = "an empty answer"
            else:
                parsed = extract_json_object(text)
                if parsed is not None:
                    return parsed, spent
                problem = f"an answer with no JSON object ({one_line(text, 80)!r})"
            if attempt <= self._bad_answer_retries:
                log.info("%s: %s; asking again (%d)", self.provider, problem, attempt)
                self._sleep(self._policy.delay(attempt, None))
        raise BadAnswer(
            f"{self.provider}: model {self.model} gave {problem} "
            f"{self._bad_answer_retries + 1} times in a row",
            provider=self.provider,
            status=200,
        )

    def _classify(self, response: httpx.Response) -> None:
        status = response.status_code
        where = f"{self.provider}: HTTP {status} from {self.url}"
        if status == 401:
            raise CredentialRejected(
                f"{where}: the API key was rejected ({error_excerpt(response)}); "
                "add a valid key with `leap credentials add llm`",
                provider=self.provider,
                status=status,
            )
        if status == 402:
            raise InsufficientBalance(
                f"{self.provider}: insufficient balance on the LLM account (HTTP 402: "
                f"{error_excerpt(response)}); top it up or switch topics.provider to simple",
                provider=self.provider,
                status=status,
            )
        if status in (400, 404, 422):
            raise PermanentError(
                f"{where}: {error_excerpt(response)} (check the [llm] base_url and "
                f"model settings; model={self.model!r})",
                provider=self.provider,
                status=status,
            )
        classify_response(response, self.provider, datetime.now(UTC))
        # An overloaded DeepSeek may commit to 200 and only then report a failure in-band.
        data = _parse_body(response, self.provider)
        choice = _first_choice(data)
        if choice is None:
            detail = data.get("error")
            raise RetryableError(
                f"{self.provider}: a 200 response without choices"
                + (f" ({one_line(json.dumps(detail), 200)})" if detail else ""),
                provider=self.provider,
                status=status,
            )
        if choice.get("finish_reason") == "insufficient_system_resource":
            raise RetryableError(
                f"{self.provider}: the server ran out of resources mid-answer",
                provider=self.provider,
                status=status,
            )
