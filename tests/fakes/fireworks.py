"""A fake Fireworks audio API (docs/platforms.md, "Fireworks: transcription") that really listens:
sync transcription on both hosts' paths with every granularity encoding, and the Batch API (body as
a JSON string)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.fakes.audio_words import sentences
from tests.fakes.openai_audio import FakeAudioAPI, parse_multipart, segment_dicts, word_dicts

_POLL_RE = re.compile(r"/v1/accounts/([^/]+)/batch_job/([^/]+)")
_SYNC_PATHS = ("/v1/audio/transcriptions", "/inference/v1/audio/transcriptions")


@dataclass
class BatchJob:
    account_id: str
    endpoint_id: str
    status: str  # processing | completed | failed
    polls_left: int
    body: str | None = None  # the verbose result, serialized, as Fireworks returns it
    content_type: str = "application/json"
    message: str | None = None


class FakeFireworks(FakeAudioAPI):
    """Fireworks' audio hosts in one handler; serve it at any base URL B and point LEAP at
    base_url=B + "/v1" (or B + "/inference/v1") and batch_base_url=B + "/v1".

    Routes (for knobs and counters): transcribe (POST /v1/audio/transcriptions, also under
    /inference), batch_submit (the same POST with ?endpoint_id=), batch_poll
    (GET /v1/accounts/ACCOUNT/batch_job/ID).
    Accepts `Authorization: Bearer KEY`, the raw `Authorization: KEY` and `?api_key=KEY`
    (§4.2). `timestamp_granularities` as one comma-joined field, `timestamp_granularities[]`
    comma-joined, or `timestamp_granularities[]` repeated (§4.3); every encoding seen is
    appended to `granularity_encodings`. On an audio-prod.* / audio-turbo.* host a model of
    the other kind is refused (§4.1); `endpoint_id` must match the model.
    Batch knobs: polls_to_complete (pending answers before "completed"), complete(batch_id),
    fail(batch_id, message); jobs holds every BatchJob by batch id.
    """

    ROUTES = ("transcribe", "batch_submit", "batch_poll")

    def __init__(
        self,
        *,
        api_key: str = "fw-test-key",
        account_id: str = "fake-account",
        max_upload_bytes: int | None = 1024**3,
        seconds_per_audio_minute: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
        cache_decodes: bool = True,
        polls_to_complete: int = 2,
    ) -> None:
        super().__init__(
            api_key=api_key,
            max_upload_bytes=max_upload_bytes,
            seconds_per_audio_minute=seconds_per_audio_minute,
            sleep=sleep,
            cache_decodes=cache_decodes,
        )
        self.account_id = account_id
        self.polls_to_complete = polls_to_complete
        self.jobs: dict[str, BatchJob] = {}
        self.granularity_encodings: list[str] = []

    def error_body(self, status: int, message: str) -> dict[str, Any]:
        kind = "invalid_request_error" if status < 500 else "internal_server_error"
        return {"error": {"object": "error", "type": kind, "message": message}}

    # -- batch knobs -------------------------------------------------------------------------

    def complete(self, batch_id: str) -> None:
        with self._lock:
            self.jobs[batch_id].polls_left = 0

    def fail(self, batch_id: str, message: str = "transcription failed: audio undecodable") -> None:
        with self._lock:
            job = self.jobs[batch_id]
            job.status, job.message, job.body = "failed", message, None

    # -- dispatch ----------------------------------------------------------------------------

    def handler(self, request: httpx.Request) -> httpx.Response:
        began = time.monotonic()
        path = request.url.path
        if request.method == "POST" and path in _SYNC_PATHS:
            route = "batch_submit" if "endpoint_id" in request.url.params else "transcribe"
            fault = self.take_fault(route)
            if fault is not None:
                return fault
            if not self._authorized(request):
                return self.error(401, "The API key you provided is invalid.")
            return self._transcribe(request, route, began)
        if request.method == "GET" and (m := _POLL_RE.fullmatch(path)):
            fault = self.take_fault("batch_poll")
            if fault is not None:
                return fault
            if not self._authorized(request):
                return self.error(401, "The API key you provided is invalid.")
            return self._poll(m.group(1), m.group(2))
        return self.error(404, f"Not found: {request.method} {path}")

    def _authorized(self, request: httpx.Request) -> bool:
        header = request.headers.get("authorization", "").strip()
        key = header[7:].strip() if header.lower().startswith("bearer ") else header
        return self.api_key in (key, request.url.params.get("api_key"))

    def _granularities(self, fields: dict[str, list[str]]) -> list[str] | None:
        plain, brackets = (
            fields.get("timestamp_granularities"),
            fields.get("timestamp_granularities[]"),
        )
        if plain and brackets:
            return None
        if plain:
            self.granularity_encodings.append("comma")
            values = plain
        elif brackets:
            encoding = "repeated" if len(brackets) > 1 else "brackets"
            self.granularity_encodings.append(encoding)
            values = brackets
        else:
            return []
        return [g.strip() for v in values for g in v.split(",") if g.strip()]

    def _transcribe(self, request: httpx.Request, route: str, began: float) -> httpx.Response:
        too_large = self.too_large(request)
        if too_large is not None:
            return too_large
        try:
            fields, order, files = parse_multipart(request)
        except ValueError as exc:
            return self.error(400, f"invalid multipart body: {exc}")
        upload = files.get("file")
        self.record(route, request, fields, order, upload)
        if upload is None:
            return self.error(400, "field 'file' is required")
        model = (fields.get("model") or ["whisper-v3"])[0]
        if model not in ("whisper-v3", "whisper-v3-turbo"):
            return self.error(404, f"Model not found: {model}")
        host = request.url.host
        turbo = model.endswith("turbo")
        if (host.startswith("audio-turbo") and not turbo) or (
            host.startswith("audio-prod") and turbo
        ):
            return self.error(400, f"model {model} is not served by {host}")
        endpoint = request.url.params.get("endpoint_id")
        if route == "batch_submit" and endpoint != ("audio-turbo" if turbo else "audio-prod"):
            return self.error(400, f"endpoint_id {endpoint!r} does not serve {model}")
        fmt = (fields.get("response_format") or ["json"])[0]
        if fmt not in ("json", "text", "srt", "verbose_json", "vtt"):
            return self.error(400, f"unsupported response_format {fmt!r}")
        granularities = self._granularities(fields)
        if granularities is None:
            return self.error(400, "timestamp_granularities given twice")
        if any(g not in ("word", "segment") for g in granularities):
            return self.error(400, f"invalid timestamp_granularities {granularities!r}")
        if granularities and fmt != "verbose_json":
            return self.error(400, "timestamp_granularities requires response_format=verbose_json")
        try:
            words, duration = self.hear(upload[2], upload[0])
        except ValueError:
            return self.error(400, "could not decode the audio file")
        words = self.heard(words, duration)
        code = (fields.get("language") or ["en"])[0]
        groups = sentences(words)
        with_words = "word" in granularities
        verbose: dict[str, Any] = {
            "task": "transcribe",
            "language": code,
            "duration": round(duration, 3),
            "text": " ".join(w.text for w in words),
            "segments": segment_dicts(
                groups, language=code, fireworks=True, nested_words=with_words
            ),
        }
        if with_words:
            verbose["words"] = word_dicts(words, language=code, fireworks=True)
        if route == "batch_submit":
            return self._submit(endpoint or "", fmt, verbose, groups)
        self.wait_like_a_server(began, duration)
        return self.render(fmt, verbose, groups)

    def _submit(
        self, endpoint: str, fmt: str, verbose: dict[str, Any], groups: list[list[Any]]
    ) -> httpx.Response:
        batch_id = "batch-" + secrets.token_hex(8)
        rendered = self.render(fmt, verbose, groups)
        body = rendered.text
        with self._lock:
            self.jobs[batch_id] = BatchJob(
                account_id=self.account_id,
                endpoint_id=endpoint,
                status="processing",
                polls_left=self.polls_to_complete,
                body=body,
                content_type="application/json" if fmt.endswith("json") else "text/plain",
            )
        return httpx.Response(
            200,
            json={
                "status": "submitted",
                "batch_id": batch_id,
                "account_id": self.account_id,
                "endpoint_id": endpoint,
                "message": "Request submitted successfully",
            },
        )

    def _poll(self, account_id: str, batch_id: str) -> httpx.Response:
        with self._lock:
            job = self.jobs.get(batch_id)
            if job is None or job.account_id != account_id:
                return self.error(404, f"batch job {batch_id} not found")
            if job.status == "processing":
                if job.polls_left > 0:
                    job.polls_left -= 1
                else:
                    job.status = "completed"
            answer: dict[str, Any] = {
                "status": job.status,
                "batch_id": batch_id,
                "message": job.message,
            }
            if job.status == "completed":
                answer.update(content_type=job.content_type, body=job.body)
        return httpx.Response(200, json=answer)
