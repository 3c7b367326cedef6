"""A fake OpenAI-compatible `/v1/audio/transcriptions` (docs/platforms.md, "OpenAI-compatible
servers") that really listens: it decodes the uploaded audio (tests.fakes.audio_words) and answers
what was "said" in it.

Also the machinery FakeFireworks shares: multipart parsing, response rendering, fault knobs,
latency proportional to the audio's length, and decode caching.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from leap.text.transcript import Word
from tests.fakes.audio_words import listen, sentences
from tests.fakes.server import DropConnection

# Whisper names for the codes the fakes answer in (OpenAI reports names, Fireworks codes).
LANGUAGE_NAMES = {"en": "english", "ru": "russian", "de": "german", "fr": "french"}


@dataclass
class Fault:
    """One injected answer: status, headers and a body (JSON-encoded unless bytes), or a
    dropped connection (status None)."""

    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = field(default_factory=dict)


@dataclass(frozen=True)
class Upload:
    """What one transcription request carried, for request-shape assertions."""

    route: str
    path: str
    query: dict[str, str]
    authorization: str | None
    fields: dict[str, list[str]]
    field_order: tuple[str, ...]
    filename: str | None
    content_type: str | None
    size: int


_DISPOSITION_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_multipart(
    request: httpx.Request,
) -> tuple[dict[str, list[str]], list[str], dict[str, tuple[str, str, bytes]]]:
    """(text fields by name, field names in order, files by name as (filename, type, bytes))
    of a multipart/form-data request; ValueError when it is not one."""
    ctype = request.headers.get("content-type", "")
    m = re.search(r'boundary="?([^";]+)"?', ctype)
    if not ctype.lower().startswith("multipart/form-data") or m is None:
        raise ValueError(f"not multipart/form-data: {ctype!r}")
    body = request.read()
    delimiter = b"--" + m.group(1).encode("latin-1")
    fields: dict[str, list[str]] = {}
    order: list[str] = []
    files: dict[str, tuple[str, str, bytes]] = {}
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise ValueError("truncated multipart body")
    for part in chunks[1:-1]:
        head, sep, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("multipart part without headers")
        content = content.removesuffix(b"\r\n")
        headers: dict[str, str] = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        params = dict(_DISPOSITION_RE.findall(headers.get("content-disposition", "")))
        name = params.get("name")
        if name is None:
            raise ValueError("multipart part without a name")
        order.append(name)
        if "filename" in params:
            ptype = headers.get("content-type", "application/octet-stream")
            files[name] = (params["filename"], ptype, content)
        else:
            fields.setdefault(name, []).append(content.decode("utf-8"))
    return fields, order, files


def _fmt_ts(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def render_captions(segments: Sequence[Sequence[Word]], fmt: str) -> str:
    """SRT or WebVTT of sentence segments (for response_format srt/vtt)."""
    sep = "," if fmt == "srt" else "."
    blocks = []
    for i, seg in enumerate(segments, 1):
        cue = f"{_fmt_ts(seg[0].start, sep)} --> {_fmt_ts(seg[-1].end, sep)}"
        text = " ".join(w.text for w in seg)
        blocks.append(f"{i}\n{cue}\n{text}\n" if fmt == "srt" else f"{cue}\n{text}\n")
    body = "\n".join(blocks)
    return body if fmt == "srt" else "WEBVTT\n\n" + body


class FakeAudioAPI:
    """Shared state and knobs of the fake transcription servers.

    Knobs (route names per subclass; "transcribe" everywhere):
      inject(route, Fault, n)                 the next n requests of a route get this answer
      inject_429(route, n, retry_after=1.0)   ... 429 with Retry-After (None: without)
      inject_5xx(route, n, status=503)        ... a 5xx
      inject_drop(route, n)                   ... a dropped connection, no response
      inject_malformed(route, n)              ... 200 with a body that is not JSON
      inject_401(route, n)                    ... 401 as for a bad key
      max_upload_bytes                        larger request bodies get 413 (None: no limit)
      seconds_per_audio_minute                a transcription answers no sooner than this
                                              many seconds per minute of uploaded audio
      cache_decodes                           decode identical uploads once
      hallucination                           text Whisper "hears" in the longest silence
                                              of each upload (lead-in, pause or tail of at
                                              least 5 s), as it does ("Thank you for
                                              watching."); None: only what was said
    Counters: requests[route], bytes_received, audio_seconds, uploads (Upload per
    transcription request), decodes (files actually decoded).
    """

    ROUTES: tuple[str, ...] = ("transcribe",)

    def __init__(
        self,
        *,
        api_key: str | None,
        max_upload_bytes: int | None,
        seconds_per_audio_minute: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        cache_decodes: bool = True,
    ) -> None:
        self.api_key = api_key
        self.max_upload_bytes = max_upload_bytes
        self.seconds_per_audio_minute = seconds_per_audio_minute
        self.sleep = sleep
        self.cache_decodes = cache_decodes
        self.requests: Counter[str] = Counter()
        self.bytes_received = 0
        self.audio_seconds = 0.0
        self.decodes = 0
        self.uploads: list[Upload] = []
        self._lock = threading.RLock()
        self._faults: dict[str, deque[Fault]] = {r: deque() for r in self.ROUTES}
        self._cache: dict[str, tuple[list[Word], float]] = {}
        self.hallucination: str | None = None

    # -- knobs -------------------------------------------------------------------------------

    def inject(self, route: str, fault: Fault, n: int = 1) -> None:
        if route not in self.ROUTES:
            raise ValueError(f"unknown route {route!r}; one of {self.ROUTES}")
        with self._lock:
            self._faults[route].extend([fault] * n)

    def inject_429(
        self, route: str = "transcribe", n: int = 1, *, retry_after: float | None = 1.0
    ) -> None:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        body = {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}}
        self.inject(route, Fault(429, headers, body), n)

    def inject_5xx(self, route: str = "transcribe", n: int = 1, *, status: int = 503) -> None:
        body = {"error": {"message": "The server is overloaded", "type": "server_error"}}
        self.inject(route, Fault(status, {}, body), n)

    def inject_drop(self, route: str = "transcribe", n: int = 1) -> None:
        self.inject(route, Fault(None), n)

    def inject_malformed(self, route: str = "transcribe", n: int = 1) -> None:
        self.inject(route, Fault(200, {"content-type": "application/json"}, b'{"text": "tru'), n)

    def inject_401(self, route: str = "transcribe", n: int = 1) -> None:
        self.inject(route, Fault(401, {}, self.error_body(401, "Invalid API key")), n)

    # -- helpers for subclasses --------------------------------------------------------------

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        kind = "invalid_request_error" if status < 500 else "server_error"
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}

    def error(self, status: int, message: str) -> httpx.Response:
        return httpx.Response(status, json=self.error_body(status, message))

    def take_fault(self, route: str) -> httpx.Response | None:
        """Count the request; the injected answer for it, if any (raises DropConnection)."""
        with self._lock:
            self.requests[route] += 1
            fault = self._faults[route].popleft() if self._faults[route] else None
        if fault is None:
            return None
        if fault.status is None:
            raise DropConnection(route)
        if isinstance(fault.body, bytes):
            return httpx.Response(fault.status, headers=fault.headers, content=fault.body)
        return httpx.Response(fault.status, headers=fault.headers, json=fault.body)

    def too_large(self, request: httpx.Request) -> httpx.Response | None:
        size = len(request.read())
        with self._lock:
            self.bytes_received += size
        if self.max_upload_bytes is not None and size > self.max_upload_bytes:
            limit = self.max_upload_bytes
            return self.error(
                413, f"Maximum content size limit ({limit}) exceeded ({size} bytes read)"
            )
        return None

    def record(
        self,
        route: str,
        request: httpx.Request,
        fields: dict[str, list[str]],
        order: list[str],
        upload: tuple[str, str, bytes] | None,
    ) -> None:
        entry = Upload(
            route=route,
            path=request.url.path,
            query=dict(request.url.params),
            authorization=request.headers.get("authorization"),
            fields=fields,
            field_order=tuple(order),
            filename=upload[0] if upload else None,
            content_type=upload[1] if upload else None,
            size=len(upload[2]) if upload else 0,
        )
        with self._lock:
            self.uploads.append(entry)

    def hear(self, data: bytes, filename: str) -> tuple[list[Word], float]:
        """The words in uploaded bytes and their duration (decoded with ffmpeg)."""
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            cached = self._cache.get(digest) if self.cache_decodes else None
        if cached is None:
            suffix = Path(filename).suffix or ".bin"
            with tempfile.TemporaryDirectory(prefix="fake-audio-") as tmp:
                path = Path(tmp) / f"upload{suffix}"
                path.write_bytes(data)
                cached = listen(path)
            with self._lock:
                self.decodes += 1
                if self.cache_decodes:
                    self._cache[digest] = cached
        with self._lock:
            self.audio_seconds += cached[1]
        return cached

    def heard(self, words: list[Word], duration_s: float) -> list[Word]:
        """`words` plus the hallucination, if set, in the middle of the longest silence."""
        if not self.hallucination:
            return words
        return with_hallucination(words, duration_s, self.hallucination)

    def wait_like_a_server(self, began: float, duration_s: float) -> None:
        """Answer no sooner than seconds_per_audio_minute per minute of audio after `began`
        (decoding counts towards it, as a real server's own decoding would)."""
        target = self.seconds_per_audio_minute * duration_s / 60.0
        left = target - (time.monotonic() - began)
        if left > 0:
            self.sleep(left)

    @staticmethod
    def render(
        fmt: str, verbose: dict[str, Any], segments: Sequence[Sequence[Word]]
    ) -> httpx.Response:
        if fmt == "verbose_json":
            return httpx.Response(200, json=verbose)
        if fmt == "json":
            return httpx.Response(200, json={"text": verbose["text"]})
        if fmt == "text":
            return httpx.Response(200, text=verbose["text"])
        return httpx.Response(200, text=render_captions(segments, fmt))


def with_hallucination(words: Sequence[Word], duration_s: float, text: str) -> list[Word]:
    """`words` with `text`'s words, 0.4 s each, centred in the longest gap of at least 5 s
    (before the first word, between two, or after the last); unchanged if there is none.
    The gap leaves more than SENTENCE_GAP_S either side, so it is a segment of its own."""
    edges = [0.0, *(t for w in words for t in (w.start, w.end)), duration_s]
    gaps = [(edges[i + 1] - edges[i], edges[i]) for i in range(0, len(edges), 2)]
    length, start = max(gaps, default=(0.0, 0.0))
    parts = text.split()
    if length < 5.0 or not parts:
        return list(words)
    t = start + (length - 0.4 * len(parts)) / 2
    ghost = [
        Word(round(t + 0.4 * i, 3), round(t + 0.4 * i + 0.35, 3), p) for i, p in enumerate(parts)
    ]
    return sorted([*words, *ghost], key=lambda w: w.start)


def segment_dicts(
    groups: Sequence[Sequence[Word]], *, language: str, fireworks: bool, nested_words: bool
) -> list[dict[str, Any]]:
    """verbose_json segments, one per sentence, with the fields each provider sends."""
    out = []
    for i, seg in enumerate(groups):
        entry: dict[str, Any] = {
            "id": i,
            "seek": 0,
            "start": round(seg[0].start, 3),
            "end": round(seg[-1].end, 3),
            "text": " " + " ".join(w.text for w in seg),
            "tokens": [50364 + k for k in range(len(seg))],
            "temperature": 0.0,
            "avg_logprob": -0.2,
            "compression_ratio": 1.1,
            "no_speech_prob": 0.01,
        }
        if fireworks:
            entry.update(
                audio_start=max(0.0, round(seg[0].start - 0.1, 3)),
                audio_end=round(seg[-1].end + 0.1, 3),
                language=language,
                no_speech=False,
            )
        if nested_words:
            entry["words"] = word_dicts(seg, language=language, fireworks=fireworks)
        out.append(entry)
    return out


def word_dicts(words: Sequence[Word], *, language: str, fireworks: bool) -> list[dict[str, Any]]:
    out = []
    for w in words:
        entry: dict[str, Any] = {"word": w.text, "start": round(w.start, 3), "end": round(w.end, 3)}
        if fireworks:
            entry.update(language=language, probability=0.98, hallucination_score=0.0)
        out.append(entry)
    return out


class FakeOpenAIAudio(FakeAudioAPI):
    """OpenAI's transcription endpoint at any base URL (path ending /audio/transcriptions).

    Behaves as §6.1 describes whisper-1: response_format json (default), text, srt, vtt or
    verbose_json; `timestamp_granularities[]` (repeated) only with verbose_json; the language
    reported by name ("english"); words only at the top level; a 25 MiB request limit.
    `api_key=None` is a self-hosted server without auth (any Authorization is ignored).
    `verbose_models`: models that may answer verbose_json (others 400, like gpt-4o-transcribe).
    """

    def __init__(
        self,
        *,
        api_key: str | None = "sk-test-openai",
        max_upload_bytes: int | None = 25 * 1024 * 1024,
        seconds_per_audio_minute: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        cache_decodes: bool = True,
        verbose_models: Callable[[str], bool] = lambda m: not m.startswith("gpt-"),
    ) -> None:
        super().__init__(
            api_key=api_key,
            max_upload_bytes=max_upload_bytes,
            seconds_per_audio_minute=seconds_per_audio_minute,
            sleep=sleep,
            cache_decodes=cache_decodes,
        )
        self.verbose_models = verbose_models

    def handler(self, request: httpx.Request) -> httpx.Response:
        began = time.monotonic()
        if request.method != "POST" or not request.url.path.endswith("/audio/transcriptions"):
            return self.error(404, f"Invalid URL ({request.method} {request.url.path})")
        fault = self.take_fault("transcribe")
        if fault is not None:
            return fault
        auth = request.headers.get("authorization")
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            return self.error(401, "Incorrect API key provided")
        too_large = self.too_large(request)
        if too_large is not None:
            return too_large
        try:
            fields, order, files = parse_multipart(request)
        except ValueError as exc:
            return self.error(400, f"Could not parse multipart form: {exc}")
        upload = files.get("file")
        self.record("transcribe", request, fields, order, upload)
        if upload is None:
            return self.error(400, "Missing required parameter: 'file'")
        model = (fields.get("model") or [""])[0]
        if not model:
            return self.error(400, "Missing required parameter: 'model'")
        fmt = (fields.get("response_format") or ["json"])[0]
        if fmt not in ("json", "text", "srt", "vtt", "verbose_json"):
            return self.error(400, f"Invalid response_format {fmt!r}")
        granularities = fields.get("timestamp_granularities[]", [])
        if granularities and fmt != "verbose_json":
            return self.error(400, "timestamp_granularities requires response_format=verbose_json")
        if fmt == "verbose_json" and not self.verbose_models(model):
            return self.error(400, f"response_format 'verbose_json' is not compatible with {model}")
        if any(g not in ("word", "segment") for g in granularities):
            return self.error(400, f"Invalid timestamp_granularities {granularities!r}")
        if Path(upload[0]).suffix.lower().lstrip(".") not in {
            "flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm",
        }:  # fmt: skip
            return self.error(400, f"Invalid file format {upload[0]!r}")
        try:
            words, duration = self.hear(upload[2], upload[0])
        except ValueError:
            return self.error(400, "Audio file might be corrupted or unsupported")
        words = self.heard(words, duration)
        code = (fields.get("language") or ["en"])[0]
        groups = sentences(words)
        verbose: dict[str, Any] = {
            "task": "transcribe",
            "language": LANGUAGE_NAMES.get(code, code),
            "duration": round(duration, 3),
            "text": " ".join(w.text for w in words),
            "usage": {"type": "duration", "seconds": round(duration + 0.5)},
        }
        wanted = set(granularities) or {"segment"}
        if "segment" in wanted:
            verbose["segments"] = segment_dicts(
                groups, language=code, fireworks=False, nested_words=False
            )
        if "word" in wanted:
            verbose["words"] = word_dicts(words, language=code, fireworks=False)
        self.wait_like_a_server(began, duration)
        return self.render(fmt, verbose, groups)
