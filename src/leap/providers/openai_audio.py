"""Any OpenAI-compatible `/v1/audio/transcriptions` (docs/platforms.md, "OpenAI-compatible
servers"): OpenAI's whisper-1, or a self-hosted faster-whisper server (speaches and the like), where
the API key may be absent."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from leap.providers.http import PermanentError, RetryPolicy, Sleep
from leap.providers.transcription import (
    DEFAULT_TIMEOUT_S,
    AudioTooLarge,
    language_code,
    parse_verbose_json,
    post_audio,
)
from leap.text.transcript import Transcript

__all__ = ["AudioTooLarge", "OpenAITranscriber", "openai_fields"]

PROVIDER = "openai"


def _verbose(model: str) -> bool:
    # §6.1: verbose_json and timestamps are whisper-1's; gpt-4o(-mini)-transcribe answer json.
    return not model.lower().startswith("gpt-")


def openai_fields(*, model: str, language: str | None, prompt: str | None) -> list[tuple[str, str]]:
    """The multipart fields (besides `file`), granularities as the OpenAI SDK sends them:
    one `timestamp_granularities[]` field per value."""
    fields = [("model", model), ("temperature", "0")]
    if _verbose(model):
        fields += [
            ("response_format", "verbose_json"),
            ("timestamp_granularities[]", "word"),
            ("timestamp_granularities[]", "segment"),
        ]
    else:
        fields.append(("response_format", "json"))
    code = language_code(language) if language != "auto" else None
    if code:
        fields.append(("language", code))
    if prompt:
        fields.append(("prompt", prompt))
    return fields


class OpenAITranscriber:
    """POST {base_url}/audio/transcriptions; 413 or a file over `max_upload_mb` MiB (OpenAI's
    25 MiB) raises AudioTooLarge, so the caller chunks. `name` tells providers apart in
    transcript meta and logs ("openai", "speaches", ...)."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        max_upload_mb: int | None = 25,
        policy: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        name: str = PROVIDER,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.max_upload_bytes = max_upload_mb * 1024 * 1024 if max_upload_mb else None
        self.model = model
        self.url = base_url.rstrip("/") + "/audio/transcriptions"
        self._http = http
        # A local server without auth must not get "Bearer None" (some reject any header).
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._timeout_s = timeout_s

    def transcribe(self, audio: Path, *, language: str | None, prompt: str | None) -> Transcript:
        size = audio.stat().st_size
        if self.max_upload_bytes is not None and size > self.max_upload_bytes:
            raise AudioTooLarge(provider=self.name, size_bytes=size, status=None)
        data = post_audio(
            self._http,
            self.url,
            audio,
            fields=openai_fields(model=self.model, language=language, prompt=prompt),
            headers=self._headers,
            provider=self.name,
            policy=self._policy,
            sleep=self._sleep,
            timeout_s=self._timeout_s,
        )
        try:
            parsed = parse_verbose_json(data)
        except PermanentError as exc:
            raise PermanentError(
                f"{self.name}: {exc.message}", provider=self.name, status=200
            ) from exc
        meta = {"provider": self.name, "model": self.model}
        return Transcript(parsed.language, parsed.duration_s, parsed.segments, meta)
