"""What every transcription API shares: the Transcriber protocol, one tolerant verbose_json
parser for all of them, Whisper prompt building, and the multipart upload with retries."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx

from leap.providers.http import (
    Classifier,
    CredentialRejected,
    PermanentError,
    RetryPolicy,
    Sleep,
    classify_response,
    error_excerpt,
    json_body,
    send_with_retry,
)
from leap.text.transcript import Segment, Transcript, Word

__all__ = [
    "AudioTooLarge",
    "Transcriber",
    "build_prompt",
    "language_code",
    "parse_verbose_json",
    "post_audio",
    "transcription_classifier",
    "upload_name",
    "usage_minutes",
]

# A transcription is slow work on the server: an hour of audio can take minutes to answer.
DEFAULT_TIMEOUT_S = 900.0
REAUTH_HINT = "add a working key with `leap credentials add`"


@runtime_checkable
class Transcriber(Protocol):
    """Turns one audio file into a Transcript; times are seconds from the file's start."""

    name: str  # "fireworks", "openai", ...
    max_upload_bytes: int | None  # None: no limit

    def transcribe(self, audio: Path, *, language: str | None, prompt: str | None) -> Transcript:
        """Raises AudioTooLarge when the provider refuses the file's size (the caller chunks),
        CredentialRejected for a dead key, RetryableError/PermanentError otherwise."""
        ...


class AudioTooLarge(PermanentError):
    """The provider refused the upload for its size (HTTP 413): transcribe it in chunks."""

    def __init__(self, *, provider: str, size_bytes: int, status: int | None = 413) -> None:
        super().__init__(
            f"audio too large for {provider} ({size_bytes / 1e6:.1f} MB): it will be chunked",
            provider=provider,
            status=status,
        )
        self.size_bytes = size_bytes


# --------------------------------------------------------------------------- parsing

# Whisper's language table (code -> English name): OpenAI's verbose_json names the language
# ("russian"), Fireworks gives the code ("ru"); we store codes.
_WHISPER_LANGUAGES = (
    "en english,zh chinese,de german,es spanish,ru russian,ko korean,fr french,ja japanese,"
    "pt portuguese,tr turkish,pl polish,ca catalan,nl dutch,ar arabic,sv swedish,it italian,"
    "id indonesian,hi hindi,fi finnish,vi vietnamese,he hebrew,uk ukrainian,el greek,ms malay,"
    "cs czech,ro romanian,da danish,hu hungarian,ta tamil,no norwegian,th thai,ur urdu,"
    "hr croatian,bg bulgarian,lt lithuanian,la latin,mi maori,ml malayalam,cy welsh,sk slovak,"
    "te telugu,fa persian,lv latvian,bn bengali,sr serbian,az azerbaijani,sl slovenian,"
    "kn kannada,et estonian,mk macedonian,br breton,eu basque,is icelandic,hy armenian,"
    "ne nepali,mn mongolian,bs bosnian,kk kazakh,sq albanian,sw swahili,gl galician,mr marathi,"
    "pa punjabi,si sinhala,km khmer,sn shona,yo yoruba,so somali,af afrikaans,oc occitan,"
    "ka georgian,be belarusian,tg tajik,sd sindhi,gu gujarati,am amharic,yi yiddish,lo lao,"
    "uz uzbek,fo faroese,ht haitian creole,ps pashto,tk turkmen,nn nynorsk,mt maltese,"
    "sa sanskrit,lb luxembourgish,my myanmar,bo tibetan,tl tagalog,mg malagasy,as assamese,"
    "tt tatar,haw hawaiian,ln lingala,ha hausa,ba bashkir,jw javanese,su sundanese,yue cantonese,"
    "my burmese,ca valencian,nl flemish,ht haitian,lb letzeburgesch,ps pushto,pa panjabi,"
    "ro moldavian,ro moldovan,si sinhalese,es castilian,zh mandarin"
)
_NAME_TO_CODE = {
    name: code for code, name in (entry.split(" ", 1) for entry in _WHISPER_LANGUAGES.split(","))
}
_CODES = frozenset(_NAME_TO_CODE.values())


def language_code(value: object) -> str | None:
    """An ISO-style code from a language code or Whisper language name; None when absent.
    Unknown values are kept (lower-cased) rather than guessed."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = " ".join(value.strip().lower().replace("_", "-").split())
    if text in _CODES:
        return text
    if text in _NAME_TO_CODE:
        return _NAME_TO_CODE[text]
    base = text.split("-", 1)[0]  # "en-us", "pt-br"
    return base if base in _CODES else text


def _malformed(why: str) -> PermanentError:
    return PermanentError(f"malformed transcription response: {why}", provider="transcription")


def _time(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _malformed(f"{what} is not a number ({value!r})")
    try:
        number = float(value)
    except (ValueError, OverflowError):  # OverflowError: an integer past any float
        raise _malformed(f"{what} is not a number ({_short(value)})") from None
    if not math.isfinite(number):
        raise _malformed(f"{what} is not finite ({value!r})")
    return max(0.0, number)


def _short(value: object) -> str:
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**40 else "a huge integer"
    return text if len(text) <= 60 else text[:59] + "…"


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        raise _malformed(f"text is not a string ({type(value).__name__})")
    return " ".join(str(value).split())


def _words(raw: object, where: str) -> list[Word]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _malformed(f"{where} words is not a list")
    out: list[Word] = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping):
            raise _malformed(f"{where} word {i} is not an object")
        # OpenAI and Fireworks say "word"; some self-hosted servers say "text".
        text = _text(item.get("word", item.get("text")))
        if not text:
            continue
        start = _time(item.get("start"), f"{where} word {i} start")
        end = max(start, _time(item.get("end"), f"{where} word {i} end"))
        out.append(Word(start, end, text))
    out.sort(key=lambda w: (w.start, w.end))
    return out


def _nearest(segments: Sequence[tuple[float, float]], t: float) -> int:
    """Index of the segment containing t, else of the one nearest to it."""
    best, best_gap = 0, math.inf
    for i, (start, end) in enumerate(segments):
        gap = 0.0 if start <= t <= end else min(abs(t - start), abs(t - end))
        if gap < best_gap:
            best, best_gap = i, gap
    return best


def parse_verbose_json(
    data: Mapping[str, Any], *, duration_hint: float | None = None
) -> Transcript:
    """A Transcript from an OpenAI/Fireworks/faster-whisper transcription response.

    Tolerates: words nested in segments or only at the top level (attached to the segment
    holding them), no words at all, a plain `{"text": ...}` answer (one segment), `language`
    as a code or a name, a missing `duration` (then `duration_hint`, `usage.seconds` or the
    last end), string numbers, negative times (clamped to 0) and end < start (raised to
    start); a segment is widened to span its words. Raises PermanentError for anything else
    that is not the expected shape.
    """
    if not isinstance(data, Mapping):
        raise _malformed(f"expected an object, got {type(data).__name__}")
    raw_segments = data.get("segments")
    if raw_segments is None:
        raw_segments = []
    if not isinstance(raw_segments, list):
        raise _malformed("segments is not a list")
    top_words = _words(data.get("words"), "top-level")

    spans: list[tuple[float, float, str, list[Word]]] = []
    for i, item in enumerate(raw_segments):
        if not isinstance(item, Mapping):
            raise _malformed(f"segment {i} is not an object")
        start = _time(item.get("start"), f"segment {i} start")
        end = max(start, _time(item.get("end"), f"segment {i} end"))
        spans.append((start, end, _text(item.get("text")), _words(item.get("words"), f"seg {i}")))
    spans.sort(key=lambda s: (s[0], s[1]))

    # Fireworks sends words both nested and at the top level: nested ones win.
    if top_words and not any(words for *_, words in spans):
        if spans:
            bounds = [(s[0], s[1]) for s in spans]
            for word in top_words:
                spans[_nearest(bounds, (word.start + word.end) / 2)][3].append(word)
        else:
            text = _text(data.get("text")) or " ".join(w.text for w in top_words)
            spans.append((top_words[0].start, top_words[-1].end, text, list(top_words)))
    if not spans:
        text = _text(data.get("text"))
        if text:
            end = duration_hint if duration_hint is not None else _duration(data) or 0.0
            spans.append((0.0, max(0.0, end), text, []))

    segments = tuple(
        Segment(
            # A segment spans its words, however loosely the provider timed either.
            min([start, *(w.start for w in words)]),
            max([end, *(w.end for w in words)]),
            text or " ".join(w.text for w in words),
            tuple(sorted(words, key=lambda w: (w.start, w.end))),
        )
        for start, end, text, words in spans
    )
    duration = _duration(data)
    if duration is None:
        duration = duration_hint
    if duration is None:
        duration = max((s.end for s in segments), default=0.0)
    return Transcript(language_code(data.get("language")), duration, segments)


def _duration(data: Mapping[str, Any]) -> float | None:
    for value in (data.get("duration"), _get(data.get("usage"), "seconds")):
        if value is not None:
            try:
                return _time(value, "duration")
            except PermanentError:
                continue  # a bad duration is recoverable: the segments still say how long
    return None


def _get(value: object, key: str) -> object:
    return value.get(key) if isinstance(value, Mapping) else None


def usage_minutes(transcript: Transcript) -> float:
    """Audio minutes billed for a transcript: what was uploaded (chunk overlaps included,
    meta["billed_s"]), else its duration."""
    billed = transcript.meta.get("billed_s")
    seconds = billed if isinstance(billed, int | float) else transcript.duration_s
    return max(0.0, float(seconds)) / 60.0


# --------------------------------------------------------------------------- prompts

# Scripts without spaces between words get their own list punctuation.
_SEPARATORS = {"zh": ("，", "。"), "yue": ("，", "。"), "ja": ("、", "。")}


def build_prompt(
    *,
    language: str | None,
    glossary: Sequence[str],
    max_chars: int = 800,
) -> str | None:
    """Whisper's `prompt` for a recording: the template's glossary terms, nothing else.

    Whisper reads its prompt as the text said just before the audio and copies its spelling
    (names, course terms), so the prompt is those terms as a list in the audio's language
    punctuation. Never the recording's title nor instructions: Whisper takes them for speech
    it already heard and skips or misplaces the real opening words ("STAT 312 Lecture 7" lost
    42 of 247 words and put the first sentence 20 s late, tests/data/README.md). Terms are
    de-duplicated ignoring case and spacing, and the list is cut at a term boundary to fit
    `max_chars` (Whisper reads only its last 224 tokens). None when there is nothing to say.
    """
    comma, stop = _SEPARATORS.get(language_code(language) or "", (", ", "."))
    seen: set[str] = set()
    terms: list[str] = []
    for raw in glossary:
        term = " ".join(str(raw).split()).strip(" ,;.")
        key = term.casefold()
        if term and key not in seen:
            seen.add(key)
            terms.append(term)
    if not terms or max_chars <= len(stop):
        return None
    budget = max_chars - len(stop)
    kept: list[str] = []
    used = 0
    for term in terms:
        extra = len(term) + (len(comma) if kept else 0)
        if used + extra > budget:
            if not kept:  # a first term longer than the budget: keep its first words
                cut = term[:budget].rsplit(" ", 1)[0] if " " in term[:budget] else term[:budget]
                kept.append(cut.rstrip(" ,;."))
            break
        kept.append(term)
        used += extra
    text = comma.join(k for k in kept if k)
    return text + stop if text else None


# --------------------------------------------------------------------------- uploading

_CONTENT_TYPES = {
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".oga": "audio/ogg",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".mp4": "audio/mp4",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".webm": "audio/webm",
}


def upload_name(audio: Path) -> tuple[str, str]:
    """The file name and content type to upload `audio` under. OpenAI infers the format from
    the name's extension and does not know ".opus", which is Ogg: send "audio.ogg"."""
    suffix = audio.suffix.lower()
    if suffix in {".opus", ".oga"}:
        suffix = ".ogg"
    return f"audio{suffix}", _CONTENT_TYPES.get(suffix, "application/octet-stream")


def transcription_classifier(
    provider: str, *, size_bytes: int = 0, reauth_hint: str = REAUTH_HINT
) -> Classifier:
    """401/403 -> CredentialRejected (an API key has no refresh), 413 -> AudioTooLarge,
    the rest as classify_response."""

    def classify(response: httpx.Response) -> None:
        status = response.status_code
        if status in (401, 403):
            detail = error_excerpt(response)
            raise CredentialRejected(
                f"{provider}: the API key was refused (HTTP {status}"
                + (f": {detail}" if detail else "")
                + f"); {reauth_hint}",
                provider=provider,
                status=status,
            )
        if status == 413:
            raise AudioTooLarge(provider=provider, size_bytes=size_bytes)
        classify_response(response, provider, datetime.now(UTC))

    return classify


def post_audio(
    http: httpx.Client,
    url: str,
    audio: Path,
    *,
    fields: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    provider: str,
    policy: RetryPolicy,
    sleep: Sleep = time.sleep,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    params: Mapping[str, str] | None = None,
    reauth_hint: str = REAUTH_HINT,
) -> Any:
    """POST `audio` as multipart `file` plus `fields` (repeat a name to repeat the field),
    retrying 429/5xx/dropped connections; return the JSON body.

    401/403 raise CredentialRejected, 413 AudioTooLarge, a non-JSON body PermanentError.
    The file is re-opened for every attempt, so a retry re-sends it whole.
    """
    try:
        size = audio.stat().st_size
    except OSError as exc:
        raise PermanentError(
            f"{provider}: cannot read {audio}: {exc.strerror or exc}", provider=provider
        ) from None
    name, content_type = upload_name(audio)
    data: dict[str, list[str]] = {}
    for key, value in fields:
        data.setdefault(key, []).append(value)
    form = {k: v[0] if len(v) == 1 else v for k, v in data.items()}
    # Writing 25 MB to a slow uplink must not hit the read timeout, nor the reverse.
    timeout = httpx.Timeout(timeout_s, connect=30.0)

    def send() -> httpx.Response:
        with audio.open("rb") as fh:
            return http.post(
                url,
                params=dict(params or {}),
                data=form,
                files={"file": (name, fh, content_type)},
                headers=dict(headers),
                timeout=timeout,
            )

    classify = transcription_classifier(provider, size_bytes=size, reauth_hint=reauth_hint)
    response = send_with_retry(send, classify, policy, provider=provider, sleep=sleep)
    try:
        return json_body(response, provider)
    finally:
        response.close()
