"""Fireworks AI's Whisper (docs/platforms.md, "Fireworks: transcription"): the synchronous
transcription endpoint, and the cheaper Batch API whose submit and poll are separate calls, so a job
id survives a restart."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx

from leap.providers.http import (
    PermanentError,
    RetryPolicy,
    Sleep,
    json_body,
    loads,
    send_with_retry,
)
from leap.providers.transcription import (
    DEFAULT_TIMEOUT_S,
    AudioTooLarge,
    language_code,
    parse_verbose_json,
    post_audio,
    transcription_classifier,
)
from leap.text.transcript import Transcript

__all__ = [
    "AudioTooLarge",
    "FireworksBatch",
    "FireworksTranscriber",
    "base_url_for_model",
    "endpoint_id_for_model",
    "transcription_fields",
]

PROVIDER = "fireworks"
# §4.3: "max 1 GB, no duration limit" (current docs); configurable because it has changed.
DEFAULT_MAX_UPLOAD_BYTES = 1024**3

AuthScheme = Literal["bearer", "raw"]
# §4.3: the old Fireworks SDK sends `timestamp_granularities=word,segment`, the cookbook
# `timestamp_granularities[]=word,segment`, the OpenAI SDK one `[]` field per value.
GranularityEncoding = Literal["comma", "brackets", "repeated"]

_PENDING = {"submitted", "queued", "pending", "processing", "running", "in_progress", "started"}
_DONE = {"completed", "complete", "succeeded", "success", "done", "finished"}
_FAILED = {"failed", "failure", "error", "errored", "cancelled", "canceled", "expired", "rejected"}


def _is_turbo(model: str) -> bool:
    return "turbo" in model.lower()


def base_url_for_model(model: str, base_url: str) -> str:
    """The base URL that serves `model`: the serverless hosts serve one model each
    (§4.1: audio-prod.* whisper-v3, audio-turbo.* whisper-v3-turbo; a mismatch fails), so
    the first label of an audio-prod/audio-turbo host follows the model. Any other host (a
    dedicated deployment, the old api.fireworks.ai/inference, a local fake) is kept as is."""
    url = httpx.URL(base_url)
    labels = url.host.split(".")
    wanted = "audio-turbo" if _is_turbo(model) else "audio-prod"
    if labels[0] in ("audio-prod", "audio-turbo") and labels[0] != wanted:
        labels[0] = wanted
        return str(url.copy_with(host=".".join(labels)))
    return base_url


def endpoint_id_for_model(model: str) -> str:
    """The Batch API's `endpoint_id` query parameter for `model` (§4.5)."""
    return "audio-turbo" if _is_turbo(model) else "audio-prod"


def _auth(api_key: str, scheme: AuthScheme) -> dict[str, str]:
    # §4.2: sync docs send Bearer, batch docs the raw key; the fake accepts both.
    return {"Authorization": f"Bearer {api_key}" if scheme == "bearer" else api_key}


def transcription_fields(
    *,
    model: str,
    language: str | None,
    prompt: str | None,
    granularity_encoding: GranularityEncoding = "comma",
    alignment_model: str | None = "auto",
) -> list[tuple[str, str]]:
    """The multipart fields (besides `file`) of a verbose_json request with word and segment
    times. `alignment_model="auto"` asks for mms_fa (multilingual) when the language is
    known and not English, as §4.3 advises for Russian; None sends none."""
    fields = [("model", model), ("response_format", "verbose_json"), ("temperature", "0")]
    if granularity_encoding == "comma":
        fields.append(("timestamp_granularities", "word,segment"))
    elif granularity_encoding == "brackets":
        fields.append(("timestamp_granularities[]", "word,segment"))
    else:
        fields += [("timestamp_granularities[]", "word"), ("timestamp_granularities[]", "segment")]
    code = language_code(language) if language != "auto" else None
    if code:
        fields.append(("language", code))
    if prompt:
        fields.append(("prompt", prompt))
    if alignment_model == "auto":
        alignment_model = "mms_fa" if code and code != "en" else None
    if alignment_model:
        fields.append(("alignment_model", alignment_model))
    return fields


def _transcript(data: Any, *, model: str, duration_hint: float | None = None) -> Transcript:
    try:
        parsed = parse_verbose_json(data, duration_hint=duration_hint)
    except PermanentError as exc:
        raise PermanentError(f"{PROVIDER}: {exc.message}", provider=PROVIDER, status=200) from exc
    meta = {"provider": PROVIDER, "model": model}
    return Transcript(parsed.language, parsed.duration_s, parsed.segments, meta)


class FireworksTranscriber:
    """The synchronous API: one multipart POST per file, verbose_json back.

    `base_url` comes from settings ([fireworks] base_url); its host is matched to the model
    (base_url_for_model) unless `match_host_to_model` is False. Build `http` with
    make_http_client(); each request sets its own long read timeout (`timeout_s`).
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        base_url: str,
        api_key: str,
        model: str,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        max_upload_bytes: int | None = DEFAULT_MAX_UPLOAD_BYTES,
        auth_scheme: AuthScheme = "bearer",
        granularity_encoding: GranularityEncoding = "comma",
        alignment_model: str | None = "auto",
        match_host_to_model: bool = True,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.name = PROVIDER
        self.max_upload_bytes = max_upload_bytes
        self.model = model
        base = base_url_for_model(model, base_url) if match_host_to_model else base_url
        self.url = base.rstrip("/") + "/audio/transcriptions"
        self._http = http
        self._headers = _auth(api_key, auth_scheme)
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._encoding: GranularityEncoding = granularity_encoding
        self._alignment = alignment_model
        self._timeout_s = timeout_s

    def transcribe(self, audio: Path, *, language: str | None, prompt: str | None) -> Transcript:
        if self.max_upload_bytes is not None and audio.stat().st_size > self.max_upload_bytes:
            # Known in advance: don't upload a gigabyte to be told so.
            raise AudioTooLarge(provider=PROVIDER, size_bytes=audio.stat().st_size, status=None)
        fields = transcription_fields(
            model=self.model,
            language=language,
            prompt=prompt,
            granularity_encoding=self._encoding,
            alignment_model=self._alignment,
        )
        data = post_audio(
            self._http,
            self.url,
            audio,
            fields=fields,
            headers=self._headers,
            provider=PROVIDER,
            policy=self._policy,
            sleep=self._sleep,
            timeout_s=self._timeout_s,
        )
        return _transcript(data, model=self.model)


class FireworksBatch:
    """The Batch API (§4.5): submit() returns a job handle "ACCOUNT_ID/BATCH_ID"; poll() it
    later (minutes to a day) until it returns a Transcript.

    Both calls are stateless, so the caller must persist the handle right after submit():
    a restart then polls the same job instead of paying for a second one.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        batch_base_url: str,
        api_key: str,
        model: str,
        account_id: str | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        max_upload_bytes: int | None = DEFAULT_MAX_UPLOAD_BYTES,
        auth_scheme: AuthScheme = "raw",
        granularity_encoding: GranularityEncoding = "comma",
        alignment_model: str | None = "auto",
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.name = "fireworks-batch"
        self.max_upload_bytes = max_upload_bytes
        self.model = model
        self._base = batch_base_url.rstrip("/")
        self._account_id = account_id
        self._http = http
        self._headers = _auth(api_key, auth_scheme)
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._encoding: GranularityEncoding = granularity_encoding
        self._alignment = alignment_model
        self._timeout_s = timeout_s

    def submit(self, audio: Path, *, language: str | None, prompt: str | None) -> str:
        """Upload `audio` as a batch job; returns the handle to poll."""
        size = audio.stat().st_size
        if self.max_upload_bytes is not None and size > self.max_upload_bytes:
            raise AudioTooLarge(provider=PROVIDER, size_bytes=size, status=None)
        fields = transcription_fields(
            model=self.model,
            language=language,
            prompt=prompt,
            granularity_encoding=self._encoding,
            alignment_model=self._alignment,
        )
        data = post_audio(
            self._http,
            self._base + "/audio/transcriptions",
            audio,
            fields=fields,
            headers=self._headers,
            provider=PROVIDER,
            policy=self._policy,
            sleep=self._sleep,
            timeout_s=self._timeout_s,
            params={"endpoint_id": endpoint_id_for_model(self.model)},
        )
        if not isinstance(data, Mapping):
            raise PermanentError(f"{PROVIDER}: malformed batch submit response", provider=PROVIDER)
        batch_id, account = data.get("batch_id"), data.get("account_id") or self._account_id
        if not isinstance(batch_id, str) or not batch_id or "/" in batch_id:
            raise PermanentError(
                f"{PROVIDER}: batch submit answered without a usable batch_id ({batch_id!r})",
                provider=PROVIDER,
            )
        if not isinstance(account, str) or not account or "/" in account:
            raise PermanentError(
                f"{PROVIDER}: batch submit answered without an account_id; set it in settings",
                provider=PROVIDER,
            )
        return f"{account}/{batch_id}"

    def poll(self, batch_id: str) -> Transcript | None:
        """The finished job's Transcript; None while it is still pending. Raises
        PermanentError when the job failed (with Fireworks' reason) or is unknown."""
        account, _, job = batch_id.rpartition("/")
        account = account or self._account_id or ""
        if not account or not job:
            raise PermanentError(
                f"{PROVIDER}: batch job handle {batch_id!r} is not ACCOUNT_ID/BATCH_ID",
                provider=PROVIDER,
            )
        url = f"{self._base}/accounts/{quote(account, safe='')}/batch_job/{quote(job, safe='')}"

        def send() -> httpx.Response:
            return self._http.get(url, headers=self._headers)

        response = send_with_retry(
            send,
            transcription_classifier(PROVIDER),
            self._policy,
            provider=PROVIDER,
            sleep=self._sleep,
        )
        try:
            data = json_body(response, PROVIDER)
        finally:
            response.close()
        if not isinstance(data, Mapping):
            raise PermanentError(f"{PROVIDER}: malformed batch status response", provider=PROVIDER)
        status = str(data.get("status") or "").strip().lower()
        message = data.get("message")
        if status in _PENDING or (not status and data.get("body") is None):
            return None
        if status in _DONE:
            return _transcript(_batch_body(data, batch_id), model=self.model)
        if status in _FAILED or message:
            raise PermanentError(
                f"{PROVIDER}: batch job {batch_id} {status or 'failed'}: {message or 'no reason'}",
                provider=PROVIDER,
            )
        return None  # an unknown status without a message: keep polling


def _batch_body(data: Mapping[str, Any], batch_id: str) -> Any:
    # §4.5: the result is a *string* of serialized JSON (content_type says so).
    body = data.get("body")
    if isinstance(body, Mapping):
        return body  # tolerate a server that embeds the object
    if not isinstance(body, str | bytes) or not body:
        raise PermanentError(
            f"{PROVIDER}: batch job {batch_id} completed without a result body",
            provider=PROVIDER,
        )
    content_type = str(data.get("content_type") or "application/json").lower()
    if "json" not in content_type:
        raise PermanentError(
            f"{PROVIDER}: batch job {batch_id} returned {content_type}, not verbose JSON",
            provider=PROVIDER,
        )
    try:
        return loads(body)
    except ValueError as exc:
        raise PermanentError(
            f"{PROVIDER}: malformed transcription response: batch job {batch_id} body is not JSON",
            provider=PROVIDER,
        ) from exc
