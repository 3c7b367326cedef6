"""A webhook receiver that records what it is sent, for tests.serve (real HTTP on 127.0.0.1).

Knobs: `status` (answer every request with it), `hang` (seconds to hold each request before
answering: a stalled receiver; `release()` ends every hold at once), `echo_path` (put the
request's path in the answer's body, as careless receivers do, to prove LEAP never repeats
it). `count` says how many requests arrived."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


@dataclass
class FakeWebhook:
    status: int = 200
    hang: float = 0.0
    echo_path: bool = False
    answer: str = "ok"
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _released: threading.Event = field(default_factory=threading.Event)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def last(self) -> Received:
        with self._lock:
            return self.received[-1]

    def release(self) -> None:
        """End every hold now (before the server shuts down, so no thread lingers)."""
        self._released.set()

    def handler(self, request: httpx.Request) -> httpx.Response:
        got = Received(
            request.method,
            request.url.path,
            {k.lower(): v for k, v in request.headers.items()},
            request.content,
        )
        with self._lock:
            self.received.append(got)
        if self.hang > 0:
            self._released.wait(self.hang)
        body = f"{self.answer} {request.url.path}" if self.echo_path else self.answer
        return httpx.Response(self.status, text=body)
