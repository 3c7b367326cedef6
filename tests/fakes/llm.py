"""A fake DeepSeek/OpenAI-compatible chat server (docs/platforms.md, "DeepSeek: chat" and
"OpenAI-compatible servers"): /chat/completions with and without /v1, Bearer auth, JSON mode, usage,
deterministic answers read off the prompt, and fault knobs for every quirk the client claims to
survive."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from tests.fakes.server import DropConnection

# Every fault kind `inject` accepts. Answer faults shape a 200 answer; the rest replace it.
ANSWER_FAULTS = (
    "whitespace",  # content of spaces and newlines (DeepSeek blanks out invalid JSON)
    "empty",  # content ""
    "null",  # content null
    "fenced",  # the JSON inside ```json fences
    "prose",  # the JSON inside a sentence
    "non_json",  # prose without any JSON object
    "wrong_shape",  # valid JSON object with neither themes nor topics
    "length",  # finish_reason "length", the JSON cut in half
    "system_resource",  # finish_reason "insufficient_system_resource", no content
    "no_choices",  # a 200 body with an in-band error and no choices
    "keepalive",  # blank lines before the body (see also `keepalive_lines`)
)
HTTP_FAULTS = ("401", "402", "429", "500", "503", "drop")
FAULTS = ANSWER_FAULTS + HTTP_FAULTS
RETIRED_MODELS = ("deepseek-chat", "deepseek-reasoner")

_LINE = re.compile(r"^\[(\d{2}:\d{2}:\d{2})\] (.+)$", re.MULTILINE)
_AT_MOST = re.compile(r"at most (\d+)")


@dataclass
class _Fault:
    kind: str
    retry_after: str | None = None


def _seconds(stamp: str) -> int:
    h, m, s = (int(x) for x in stamp.split(":"))
    return h * 3600 + m * 60 + s


def _stamp(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _error(
    status: int, message: str, kind: str, code: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return httpx.Response(status, json=body, headers=headers)


class FakeChat:
    """An in-memory chat-completions server; `handler` serves it through MockTransport or
    tests.fakes.server.serve. Point the client at B (DeepSeek style) or B + "/v1".

    By default a map prompt (one with `[HH:MM:SS] text` lines) is answered with topics at
    evenly spread line times, titled by each line's first words, at most the "at most N" the
    prompt asks for; a reduce prompt (one holding {"parts": [...]}) with every part's topics
    and themes merged. `answer` replaces this with any function of the messages.

    Knobs:
      inject(kind, n=1, retry_after=None)   the next n requests get fault `kind` (FAULTS)
      keepalive_lines, keepalive_delay      blank lines before every 200 body, with a pause
                                            between them (the body is then streamed)
      bad_timestamps                        map answers also hold a topic past the end, a
                                            negative one, a near-duplicate 3 s later, one start
                                            in plain seconds, one without a title, and come
                                            in reverse order
      api_key (None: no auth), strict_2026 (retired model ids answer 400), require_json_word
    Counters: requests (chat calls, faults included), served (Counter of fault kinds and
    "ok"), bodies (each request's JSON), paths, prompt_tokens, completion_tokens (totals
    reported in usage), auth_headers.
    """

    def __init__(
        self,
        *,
        api_key: str | None = "sk-fake-deepseek",
        strict_2026: bool = True,
        require_json_word: bool = True,
    ) -> None:
        self.api_key = api_key
        self.strict_2026 = strict_2026
        self.require_json_word = require_json_word
        self.keepalive_lines = 0
        self.keepalive_delay = 0.0
        self.bad_timestamps = False
        self.answer: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None
        self.requests = 0
        self.served: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.auth_headers: list[str | None] = []
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._faults: deque[_Fault] = deque()
        self._lock = threading.Lock()

    # -- knobs -------------------------------------------------------------------------------

    def inject(self, kind: str, n: int = 1, *, retry_after: str | None = None) -> None:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULTS}")
        with self._lock:
            self._faults.extend(_Fault(kind, retry_after) for _ in range(n))

    @property
    def pending_faults(self) -> int:
        return len(self._faults)

    # -- the server --------------------------------------------------------------------------

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method != "POST" or path not in ("/chat/completions", "/v1/chat/completions"):
            return _error(404, f"no route {request.method} {path}", "invalid_request_error", "404")
        with self._lock:
            self.requests += 1
            self.paths.append(path)
            self.auth_headers.append(request.headers.get("Authorization"))
            fault = self._faults.popleft() if self._faults else None
        if self.api_key is not None and request.headers.get("Authorization") != (
            f"Bearer {self.api_key}"
        ):
            return self._count(
                "auth",
                _error(
                    401,
                    "Authentication Fails, Your api key is invalid",
                    "authentication_error",
                    "invalid_request_error",
                ),
            )
        try:
            body = json.loads(request.content)
        except ValueError:
            return _error(400, "Invalid request body: not JSON", "invalid_request_error", "400")
        with self._lock:
            self.bodies.append(body)
        invalid = self._validate(body)
        if invalid is not None:
            return self._count("invalid", invalid)
        if fault is not None and fault.kind in HTTP_FAULTS:
            if fault.kind == "drop":
                self._note("drop")
                raise DropConnection()
            return self._count(fault.kind, self._http_fault(fault))
        messages: list[dict[str, Any]] = body["messages"]
        data = self.answer(messages) if self.answer else self.default_answer(messages)
        content = json.dumps(data, ensure_ascii=False)
        finish = "stop"
        kind = fault.kind if fault else "ok"
        if kind == "whitespace":
            content = "\n \n  " + " " * 40
        elif kind == "empty":
            content = ""
        elif kind == "fenced":
            content = f"```json\n{json.dumps(data, ensure_ascii=False, indent=2)}\n```"
        elif kind == "prose":
            content = f"Here is the table of contents you asked for: {content} Hope it helps!"
        elif kind == "non_json":
            content = "Sorry, I cannot produce a table of contents for this transcript."
        elif kind == "wrong_shape":
            content = json.dumps({"summary": "a lecture"})
        elif kind == "length":
            content, finish = content[: len(content) // 2], "length"
        elif kind == "system_resource":
            content, finish = "", "insufficient_system_resource"
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, int) and len(content) // 4 + 1 > max_tokens:
            content, finish = content[: max_tokens * 4], "length"
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in messages) // 4 + 1
        completion_tokens = len(content) // 4 + 1
        with self._lock:
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
        payload: dict[str, Any] = {
            "id": f"chatcmpl-{self.requests}",
            "object": "chat.completion",
            "created": 1_780_000_000,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish,
                    "message": {
                        "role": "assistant",
                        "content": None if kind == "null" else content,
                        "reasoning_content": None,
                    },
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_cache_hit_tokens": 0,
                "prompt_cache_miss_tokens": prompt_tokens,
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
            "system_fingerprint": "fp_fake",
        }
        if kind == "no_choices":
            payload = {"error": {"message": "Service busy, try later", "type": "server_error"}}
        lines = self.keepalive_lines + (3 if kind == "keepalive" else 0)
        return self._count(kind, self._body(json.dumps(payload).encode(), lines))

    def _note(self, kind: str) -> None:
        with self._lock:
            self.served[kind] += 1

    def _count(self, kind: str, response: httpx.Response) -> httpx.Response:
        self._note(kind)
        return response

    def _validate(self, body: Any) -> httpx.Response | None:
        if not isinstance(body, dict):
            return _error(400, "Invalid request body", "invalid_request_error", "400")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _error(400, "Missing model", "invalid_request_error", "400")
        if self.strict_2026 and model in RETIRED_MODELS:
            return _error(400, "Model Not Exist", "invalid_request_error", "invalid_request_error")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "messages must be a non-empty list", "invalid_request_error", "400")
        if any(m.get("reasoning_content") for m in messages if isinstance(m, dict)):
            return _error(
                400, "reasoning_content must not be sent back", "invalid_request_error", "400"
            )
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_object" and self.require_json_word:
            text = " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
            if "json" not in text.lower():
                return _error(
                    400,
                    "Prompt must contain the word 'json' in some form to use 'response_format' "
                    "of type 'json_object'.",
                    "invalid_request_error",
                    "invalid_request_error",
                )
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and (
            isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
        ):
            return _error(422, "Invalid max_tokens value", "invalid_request_error", "422")
        if body.get("stream") not in (None, False):
            return _error(422, "this fake serves stream=false only", "invalid_request_error", "422")
        return None

    def _http_fault(self, fault: _Fault) -> httpx.Response:
        if fault.kind == "401":
            return _error(
                401, "Authentication Fails", "authentication_error", "invalid_request_error"
            )
        if fault.kind == "402":
            return _error(402, "Insufficient Balance", "unknown_error", "invalid_request_error")
        if fault.kind == "429":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            return _error(429, "Rate Limit Reached", "rate_limit_error", "rate_limit", headers)
        if fault.kind == "500":
            return _error(500, "Server Error", "server_error", "500")
        return _error(503, "Server Overloaded", "server_error", "503")

    def _body(self, data: bytes, blank_lines: int) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if blank_lines and self.keepalive_delay > 0:
            delay = self.keepalive_delay

            def chunks() -> Iterator[bytes]:
                for _ in range(blank_lines):
                    yield b"\n"
                    time.sleep(delay)
                yield data

            return httpx.Response(200, headers=headers, content=chunks())
        return httpx.Response(200, headers=headers, content=b"\n" * blank_lines + data)

    # -- answers -----------------------------------------------------------------------------

    def default_answer(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        user = next(
            (str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), ""
        )
        start = user.find('{"parts"')
        if start >= 0:
            return self._reduce(json.loads(user[start:].strip()))
        return self._map(user)

    def _map(self, user: str) -> dict[str, Any]:
        lines = _LINE.findall(user)
        found = _AT_MOST.search(user)
        limit = int(found.group(1)) if found else 5
        count = min(limit, len(lines))
        picks = [lines[i * len(lines) // count] for i in range(count)] if count else []
        topics: list[dict[str, Any]] = [
            {"start": stamp, "title": " ".join(text.split()[:5]).rstrip(".,;:")}
            for stamp, text in picks
        ]
        words = Counter(
            w.lower().strip(".,;:!?") for _, text in lines for w in text.split() if len(w) >= 6
        )
        themes = [w for w, _ in words.most_common(3)]
        if self.bad_timestamps and topics:
            last = _seconds(lines[-1][0])
            first = topics[0]
            topics.append({"start": _stamp(last + 10 * 3600), "title": "Past the end"})
            topics.append({"start": "-00:00:30", "title": "Before the start"})
            topics.append(
                {"start": _stamp(_seconds(first["start"]) + 3), "title": "Near duplicate"}
            )
            topics.append({"start": str(_seconds(first["start"]) + 1), "title": ""})
            if len(topics) > 1:
                second = topics[1]
                second["start"] = _seconds(second["start"])  # a number, not HH:MM:SS
            topics.reverse()
        return {"themes": themes, "topics": topics}

    def _reduce(self, data: dict[str, Any]) -> dict[str, Any]:
        themes: list[str] = []
        topics: list[dict[str, Any]] = []
        for part in data.get("parts", []):
            themes += [t for t in part.get("themes", []) if t not in themes]
            topics += part.get("topics", [])
        return {"themes": themes[:8], "topics": topics}
