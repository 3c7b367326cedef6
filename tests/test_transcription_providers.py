"""Transcription clients against fakes that really listen: request shapes, parsing, errors,
retries and the Fireworks batch cycle; plus the tolerant parser and prompt building."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from leap.providers.fireworks import (
    FireworksBatch,
    FireworksTranscriber,
    base_url_for_model,
    endpoint_id_for_model,
    transcription_fields,
)
from leap.providers.http import (
    CredentialRejected,
    PermanentError,
    RetryableError,
    RetryPolicy,
    make_http_client,
)
from leap.providers.openai_audio import OpenAITranscriber, openai_fields
from leap.providers.transcription import (
    AudioTooLarge,
    Transcriber,
    build_prompt,
    language_code,
    parse_verbose_json,
    upload_name,
    usage_minutes,
)
from leap.text.transcript import Segment, Transcript, Word
from tests.fakes.audio_words import decode_words, make_speech
from tests.fakes.fireworks import FakeFireworks
from tests.fakes.openai_audio import FakeOpenAIAudio, Fault
from tests.fakes.server import mock_transport, serve

FW_KEY = "fw-test-key"
OA_KEY = "sk-test-openai"
PROD = "https://audio-prod.api.fireworks.ai/v1"
TURBO = "https://audio-turbo.api.fireworks.ai/v1"
BATCH = "https://audio-batch.link.fireworks.ai/v1"
OPENAI = "https://api.openai.test/v1"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Word]]:
    path = tmp_path_factory.mktemp("speech") / "speech.ogg"
    return path, make_speech(path, total_s=45.0, seed=7)


def same_words(got: list[Word], truth: list[Word], tolerance: float = 0.1) -> None:
    assert [w.text for w in got] == [w.text for w in truth]
    for g, t in zip(got, truth, strict=True):
        assert abs(g.start - t.start) < tolerance and abs(g.end - t.end) < tolerance


def policy() -> RetryPolicy:
    return RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, rng=random.Random(1))


@pytest.fixture
def fw() -> FakeFireworks:
    return FakeFireworks(api_key=FW_KEY)


@pytest.fixture
def oa() -> FakeOpenAIAudio:
    return FakeOpenAIAudio(api_key=OA_KEY)


@pytest.fixture
def fw_http(fw: FakeFireworks) -> Iterator[httpx.Client]:
    with make_http_client(transport=mock_transport(fw.handler)) as client:
        yield client


@pytest.fixture
def oa_http(oa: FakeOpenAIAudio) -> Iterator[httpx.Client]:
    with make_http_client(transport=mock_transport(oa.handler)) as client:
        yield client


def fireworks(http: httpx.Client, sleeps: Sleeps | None = None, **kw: Any) -> FireworksTranscriber:
    args: dict[str, Any] = {"base_url": PROD, "api_key": FW_KEY, "model": "whisper-v3-turbo"}
    args.update(kw)
    sleep = sleeps if sleeps is not None else Sleeps()
    return FireworksTranscriber(http, policy=policy(), sleep=sleep, **args)


def openai(http: httpx.Client, sleeps: Sleeps | None = None, **kw: Any) -> OpenAITranscriber:
    args: dict[str, Any] = {"base_url": OPENAI, "api_key": OA_KEY, "model": "whisper-1"}
    args.update(kw)
    sleep = sleeps if sleeps is not None else Sleeps()
    return OpenAITranscriber(http, policy=policy(), sleep=sleep, **args)


# --------------------------------------------------------------------------- parse_verbose_json

W1 = {"word": "alpha", "start": 0.5, "end": 0.9}
W2 = {"word": "bravo", "start": 1.1, "end": 1.4}
W3 = {"word": "charlie", "start": 5.0, "end": 5.6}
SEG1 = {"start": 0.4, "end": 1.5, "text": " alpha bravo"}
SEG2 = {"start": 4.9, "end": 5.8, "text": " charlie"}


def flat(t: Transcript) -> list[tuple[float, float, str, list[tuple[float, float, str]]]]:
    return [
        (s.start, s.end, s.text, [(w.start, w.end, w.text) for w in s.words]) for s in t.segments
    ]


TOLERANT: list[tuple[str, dict[str, Any], Any]] = [
    (
        "nested words (Fireworks)",
        {"segments": [{**SEG1, "words": [W1, W2]}, {**SEG2, "words": [W3]}], "duration": 6},
        [
            (0.4, 1.5, "alpha bravo", [(0.5, 0.9, "alpha"), (1.1, 1.4, "bravo")]),
            (4.9, 5.8, "charlie", [(5.0, 5.6, "charlie")]),
        ],
    ),
    (
        "top-level words attached to their segments (OpenAI)",
        {"segments": [SEG1, SEG2], "words": [W3, W1, W2]},
        [
            (0.4, 1.5, "alpha bravo", [(0.5, 0.9, "alpha"), (1.1, 1.4, "bravo")]),
            (4.9, 5.8, "charlie", [(5.0, 5.6, "charlie")]),
        ],
    ),
    (
        "nested and top-level words: no duplicates",
        {"segments": [{**SEG1, "words": [W1, W2]}], "words": [W1, W2]},
        [(0.4, 1.5, "alpha bravo", [(0.5, 0.9, "alpha"), (1.1, 1.4, "bravo")])],
    ),
    (
        "a word between segments goes to the nearest",
        {"segments": [SEG1, SEG2], "words": [{"word": "x", "start": 1.6, "end": 1.8}]},
        [(0.4, 1.8, "alpha bravo", [(1.6, 1.8, "x")]), (4.9, 5.8, "charlie", [])],
    ),
    (
        "words without segments",
        {"text": "alpha bravo", "words": [W1, W2]},
        [(0.5, 1.4, "alpha bravo", [(0.5, 0.9, "alpha"), (1.1, 1.4, "bravo")])],
    ),
    ("text only (json format)", {"text": " hello  there "}, [(0.0, 0.0, "hello there", [])]),
    ("nothing at all (silence)", {}, []),
    ("empty segment text", {"segments": [{"start": 0, "end": 2, "text": ""}]}, [(0, 2, "", [])]),
    (
        "string numbers, clamped times",
        {
            "segments": [
                {"start": "-0.2", "end": "1.5", "text": "a"},
                {"start": 3, "end": 2, "text": "b"},
            ]
        },
        [(0.0, 1.5, "a", []), (3.0, 3.0, "b", [])],
    ),
    (
        "text key in words, blank words dropped, segments sorted",
        {
            "segments": [
                {**SEG2, "words": [{"text": "charlie", "start": 5, "end": 5.6}]},
                {**SEG1, "words": [{"word": " ", "start": 0.5, "end": 0.6}]},
            ]
        },
        [(0.4, 1.5, "alpha bravo", []), (4.9, 5.8, "charlie", [(5.0, 5.6, "charlie")])],
    ),
    (
        "null segments and null words",
        {"segments": None, "words": None, "text": None},
        [],
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"), [c[1:] for c in TOLERANT], ids=[c[0] for c in TOLERANT]
)
def test_parse_verbose_json_tolerates(data: dict[str, Any], expected: Any) -> None:
    assert flat(parse_verbose_json(data)) == expected


@pytest.mark.parametrize(
    ("data", "hint", "duration"),
    [
        ({"duration": 12.5, "segments": [SEG2]}, None, 12.5),
        ({"duration": "12.5"}, None, 12.5),
        ({"segments": [SEG2]}, 30.0, 30.0),
        ({"segments": [SEG2]}, None, 5.8),
        ({"usage": {"type": "duration", "seconds": 7}}, None, 7.0),
        ({"duration": "n/a", "segments": [SEG2]}, None, 5.8),
        ({}, None, 0.0),
        ({"text": "hi"}, 9.0, 9.0),
    ],
)
def test_parse_verbose_json_duration(
    data: dict[str, Any], hint: float | None, duration: float
) -> None:
    assert parse_verbose_json(data, duration_hint=hint).duration_s == duration


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("ru", "ru"),
        ("Russian", "ru"),
        ("english", "en"),
        ("EN", "en"),
        ("en-US", "en"),
        ("pt_BR", "pt"),
        ("haitian creole", "ht"),
        ("yue", "yue"),
        ("klingon", "klingon"),
        ("", None),
        (None, None),
        (3, None),
    ],
)
def test_language_code(value: Any, code: str | None) -> None:
    assert language_code(value) == code
    assert parse_verbose_json({"language": value}).language == code


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ([], "expected an object"),
        ("text", "expected an object"),
        (None, "expected an object"),
        ({"segments": {"0": SEG1}}, "segments is not a list"),
        ({"segments": ["x"]}, "segment 0 is not an object"),
        ({"segments": [{"start": "abc", "end": 1, "text": ""}]}, "segment 0 start"),
        ({"segments": [{"end": 1, "text": ""}]}, "segment 0 start"),
        ({"segments": [{"start": 0, "end": True, "text": ""}]}, "segment 0 end"),
        ({"segments": [{"start": math.nan, "end": 1, "text": ""}]}, "not finite"),
        ({"segments": [{"start": 0, "end": 1, "text": {"a": 1}}]}, "text is not a string"),
        ({"segments": [{**SEG1, "words": {"w": W1}}]}, "words is not a list"),
        ({"words": [W1, "bravo"]}, "word 1 is not an object"),
        ({"words": [{"word": "a", "start": 0, "end": [1]}]}, "word 0 end"),
    ],
)
def test_parse_verbose_json_rejects_malformed(data: Any, why: str) -> None:
    with pytest.raises(PermanentError, match="malformed transcription response") as info:
        parse_verbose_json(data)
    assert why in info.value.message


# --------------------------------------------------------------------------- build_prompt


def test_build_prompt_is_the_glossary_deduplicated() -> None:
    prompt = build_prompt(
        language="ru", glossary=["ARIMA", "Бокс–Дженкинс", "arima", "  ARIMA  ", "", "SARIMAX"]
    )
    assert prompt == "ARIMA, Бокс–Дженкинс, SARIMAX."


def test_build_prompt_never_takes_a_title() -> None:
    # A title in Whisper's prompt reads as speech already heard: the opening words were lost
    # (tests/data/README.md). There is no way to pass one any more.
    with pytest.raises(TypeError):
        build_prompt(language="en", glossary=["ARIMA"], title="STAT 312 Lecture 7")  # type: ignore[call-arg]


def test_build_prompt_is_none_when_empty() -> None:
    assert build_prompt(language=None, glossary=[]) is None
    assert build_prompt(language="en", glossary=["  ", ""]) is None
    assert build_prompt(language="en", glossary=["x"], max_chars=1) is None


def test_build_prompt_trims_on_a_term_boundary() -> None:
    glossary = [f"term{i:02d}" for i in range(100)]
    prompt = build_prompt(language="en", glossary=glossary, max_chars=50)
    assert prompt is not None and len(prompt) <= 50
    assert prompt.endswith(".") and prompt[:-1].split(", ") == glossary[: len(prompt.split(", "))]
    # Every kept term is whole.
    assert all(t in glossary for t in prompt[:-1].split(", "))


def test_build_prompt_cuts_an_overlong_first_term_at_a_word() -> None:
    prompt = build_prompt(language="en", glossary=["word " * 50, "X"], max_chars=23)
    assert prompt == "word word word word."


def test_build_prompt_uses_the_languages_punctuation() -> None:
    assert build_prompt(language="zh", glossary=["甲", "乙"]) == "甲，乙。"
    assert build_prompt(language="japanese", glossary=["講義", "東京"]) == "講義、東京。"


def test_usage_minutes() -> None:
    assert usage_minutes(Transcript("en", 90.0)) == 1.5
    assert usage_minutes(Transcript("en", 90.0, meta={"billed_s": 120})) == 2.0


# --------------------------------------------------------------------------- request shapes (pure)


@pytest.mark.parametrize(
    ("model", "base", "expected"),
    [
        ("whisper-v3-turbo", PROD, TURBO),
        ("whisper-v3", TURBO, PROD),
        ("whisper-v3", PROD, PROD),
        (
            "whisper-v3-turbo",
            "https://audio-prod.us-virginia-1.direct.fireworks.ai/v1",
            "https://audio-turbo.us-virginia-1.direct.fireworks.ai/v1",
        ),
        (
            "whisper-v3-turbo",
            "https://api.fireworks.ai/inference/v1",
            "https://api.fireworks.ai/inference/v1",
        ),
        ("whisper-v3-turbo", "http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
    ],
)
def test_base_url_for_model(model: str, base: str, expected: str) -> None:
    assert base_url_for_model(model, base) == expected


def test_endpoint_id_for_model() -> None:
    assert endpoint_id_for_model("whisper-v3") == "audio-prod"
    assert endpoint_id_for_model("whisper-v3-turbo") == "audio-turbo"


def test_transcription_fields() -> None:
    fields = transcription_fields(model="whisper-v3", language="ru", prompt="ARIMA.")
    assert fields == [
        ("model", "whisper-v3"),
        ("response_format", "verbose_json"),
        ("temperature", "0"),
        ("timestamp_granularities", "word,segment"),
        ("language", "ru"),
        ("prompt", "ARIMA."),
        ("alignment_model", "mms_fa"),
    ]
    english = dict(transcription_fields(model="m", language="english", prompt=None))
    assert (
        english["language"] == "en" and "alignment_model" not in english and "prompt" not in english
    )
    auto = dict(transcription_fields(model="m", language="auto", prompt=None))
    assert "language" not in auto
    repeated = transcription_fields(
        model="m", language=None, prompt=None, granularity_encoding="repeated"
    )
    assert [v for k, v in repeated if k == "timestamp_granularities[]"] == ["word", "segment"]


def test_openai_fields() -> None:
    fields = openai_fields(model="whisper-1", language="Russian", prompt=None)
    assert ("timestamp_granularities[]", "word") in fields
    assert ("timestamp_granularities[]", "segment") in fields
    assert ("language", "ru") in fields and ("response_format", "verbose_json") in fields
    plain = dict(openai_fields(model="gpt-4o-transcribe", language=None, prompt="p"))
    assert plain["response_format"] == "json" and plain["prompt"] == "p"
    assert "timestamp_granularities[]" not in plain


def test_upload_name() -> None:
    assert upload_name(Path("/x/a.opus")) == ("audio.ogg", "audio/ogg")
    assert upload_name(Path("a.MP3")) == ("audio.mp3", "audio/mpeg")
    assert upload_name(Path("a.xyz")) == ("audio.xyz", "application/octet-stream")


def test_clients_satisfy_the_protocol(fw_http: httpx.Client) -> None:
    assert isinstance(fireworks(fw_http), Transcriber)
    assert isinstance(openai(fw_http), Transcriber)


# --------------------------------------------------------------------------- Fireworks sync


def test_fireworks_transcribes_what_was_said(
    fw: FakeFireworks, fw_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    path, truth = speech
    transcript = fireworks(fw_http).transcribe(path, language="ru", prompt="alpha, bravo.")
    same_words(transcript.words, truth)
    assert transcript.language == "ru"
    assert transcript.duration_s == pytest.approx(45.0, abs=0.1)
    assert transcript.meta == {"provider": "fireworks", "model": "whisper-v3-turbo"}
    assert len(transcript.segments) > 1  # one per sentence
    (upload,) = fw.uploads
    assert upload.path == "/v1/audio/transcriptions"
    assert upload.authorization == f"Bearer {FW_KEY}"
    assert upload.filename == "audio.ogg" and upload.content_type == "audio/ogg"
    assert upload.fields == {
        "model": ["whisper-v3-turbo"],
        "response_format": ["verbose_json"],
        "temperature": ["0"],
        "timestamp_granularities": ["word,segment"],
        "language": ["ru"],
        "prompt": ["alpha, bravo."],
        "alignment_model": ["mms_fa"],
    }
    assert fw.granularity_encodings == ["comma"]


@pytest.mark.parametrize("encoding", ["comma", "brackets", "repeated"])
def test_fireworks_fake_accepts_every_granularity_encoding(
    encoding: Any, fw: FakeFireworks, fw_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    path, truth = speech
    client = fireworks(fw_http, granularity_encoding=encoding)
    same_words(client.transcribe(path, language=None, prompt=None).words, truth)
    assert fw.granularity_encodings == [encoding]


def test_fireworks_raw_key_and_old_inference_path(
    fw: FakeFireworks, fw_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    client = fireworks(
        fw_http,
        base_url="https://api.fireworks.ai/inference/v1",
        auth_scheme="raw",
        model="whisper-v3",
    )
    client.transcribe(speech[0], language="en", prompt=None)
    assert fw.uploads[0].authorization == FW_KEY
    assert fw.uploads[0].path == "/inference/v1/audio/transcriptions"


def test_fireworks_host_must_match_the_model(
    fw_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    # The fake refuses a turbo model on the prod host, as Fireworks does ...
    with pytest.raises(PermanentError, match=r"HTTP 400.*not served"):
        fireworks(fw_http, match_host_to_model=False).transcribe(
            speech[0], language=None, prompt=None
        )
    # ... and the default client moves to the turbo host by itself.
    assert fireworks(fw_http).url.startswith(TURBO)


@pytest.mark.parametrize("status", [401, 403])
def test_fireworks_dead_key(
    status: int, fw: FakeFireworks, fw_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    fw.inject("transcribe", Fault(status, {}, fw.error_body(status, "bad key")))
    with pytest.raises(
        CredentialRejected, match=f"fireworks: the API key was refused \\(HTTP {status}"
    ):
        fireworks(fw_http).transcribe(speech[0], language=None, prompt=None)
    assert fw.requests["transcribe"] == 1  # never retried


def test_fireworks_wrong_key_is_rejected(
    fw_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    with pytest.raises(CredentialRejected) as info:
        fireworks(fw_http, api_key="nope").transcribe(speech[0], language=None, prompt=None)
    assert info.value.exit_code == 5 and "nope" not in info.value.message


def test_fireworks_413_is_audio_too_large(
    fw: FakeFireworks, fw_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    fw.max_upload_bytes = 10_000
    with pytest.raises(
        AudioTooLarge, match=r"audio too large for fireworks \(0\.\d MB\): it will be chunked"
    ) as info:
        fireworks(fw_http).transcribe(speech[0], language=None, prompt=None)
    assert isinstance(info.value, PermanentError) and info.value.status == 413
    assert info.value.size_bytes == speech[0].stat().st_size


def test_fireworks_knows_its_limit_before_uploading(
    fw: FakeFireworks, fw_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    with pytest.raises(AudioTooLarge):
        fireworks(fw_http, max_upload_bytes=1000).transcribe(speech[0], language=None, prompt=None)
    assert fw.requests["transcribe"] == 0


def test_fireworks_retries_429_5xx_and_drops(
    fw: FakeFireworks, fw_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    fw.inject_429(n=1, retry_after=2.5)
    fw.inject_5xx(n=1, status=502)
    fw.inject_drop(n=1)
    sleeps = Sleeps()
    transcript = fireworks(fw_http, sleeps).transcribe(speech[0], language=None, prompt=None)
    same_words(transcript.words, speech[1])
    assert fw.requests["transcribe"] == 4
    assert sleeps[0] == 2.5 and len(sleeps) == 3  # Retry-After honoured, then backoff


def test_fireworks_gives_up_after_the_policy(
    fw: FakeFireworks, fw_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    fw.inject_5xx(n=10)
    with pytest.raises(RetryableError, match="retries exhausted"):
        fireworks(fw_http).transcribe(speech[0], language=None, prompt=None)
    assert fw.requests["transcribe"] == 4


def test_fireworks_malformed_json_is_permanent(
    fw: FakeFireworks, fw_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    fw.inject_malformed()
    with pytest.raises(PermanentError, match="malformed JSON"):
        fireworks(fw_http).transcribe(speech[0], language=None, prompt=None)
    fw.inject("transcribe", Fault(200, {}, {"segments": "nope"}))
    with pytest.raises(PermanentError, match="fireworks: malformed transcription response"):
        fireworks(fw_http).transcribe(speech[0], language=None, prompt=None)
    assert fw.requests["transcribe"] == 2


# --------------------------------------------------------------------------- Fireworks batch


def batch(http: httpx.Client, **kw: Any) -> FireworksBatch:
    args: dict[str, Any] = {"batch_base_url": BATCH, "api_key": FW_KEY, "model": "whisper-v3-turbo"}
    args.update(kw)
    return FireworksBatch(http, policy=policy(), sleep=Sleeps(), **args)


def test_batch_submit_then_poll_until_done(
    fw: FakeFireworks, fw_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    fw.polls_to_complete = 3
    handle = batch(fw_http).submit(speech[0], language="en", prompt="alpha.")
    account, batch_id = handle.split("/")
    assert account == "fake-account" and batch_id in fw.jobs
    (upload,) = fw.uploads
    assert upload.route == "batch_submit" and upload.query == {"endpoint_id": "audio-turbo"}
    assert upload.authorization == FW_KEY  # §4.2: the raw key for batch
    assert upload.fields["prompt"] == ["alpha."]
    # A restart builds a new client from settings and polls the persisted handle.
    later = batch(fw_http)
    assert [later.poll(handle) for _ in range(3)] == [None, None, None]
    transcript = later.poll(handle)
    assert transcript is not None
    same_words(transcript.words, speech[1])
    assert transcript.meta["provider"] == "fireworks"
    assert fw.requests["batch_submit"] == 1 and fw.requests["batch_poll"] == 4


def test_batch_result_body_is_a_json_string(
    fw: FakeFireworks, speech: tuple[Path, list[Word]]
) -> None:
    with make_http_client(transport=mock_transport(fw.handler)) as http:
        handle = batch(http, model="whisper-v3").submit(speech[0], language=None, prompt=None)
        fw.complete(handle.split("/")[1])
        raw = http.get(
            f"{BATCH}/accounts/{handle.replace('/', '/batch_job/')}",
            headers={"Authorization": FW_KEY},
        )
    answer = raw.json()
    assert answer["status"] == "completed" and answer["content_type"] == "application/json"
    assert isinstance(answer["body"], str) and json.loads(answer["body"])["segments"]
    assert fw.uploads[0].query == {"endpoint_id": "audio-prod"}


def test_batch_failure_raises_with_the_reason(
    fw: FakeFireworks, fw_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    client = batch(fw_http)
    handle = client.submit(speech[0], language=None, prompt=None)
    assert client.poll(handle) is None
    fw.fail(handle.split("/")[1], "audio undecodable")
    with pytest.raises(PermanentError, match=r"batch job .* failed: audio undecodable"):
        client.poll(handle)


def test_batch_unknown_job_and_bad_handles(fw_http: httpx.Client) -> None:
    with pytest.raises(PermanentError, match="HTTP 404"):
        batch(fw_http).poll("fake-account/batch-nope")
    with pytest.raises(PermanentError, match="not ACCOUNT_ID/BATCH_ID"):
        batch(fw_http).poll("batch-only")


def test_batch_bare_id_uses_the_configured_account(
    fw: FakeFireworks, fw_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    handle = batch(fw_http).submit(speech[0], language=None, prompt=None)
    fw.complete(handle.split("/")[1])
    assert batch(fw_http, account_id="fake-account").poll(handle.split("/")[1]) is not None


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        ({"status": "completed", "body": "not json"}, "body is not JSON"),
        ({"status": "completed"}, "without a result body"),
        (
            {"status": "completed", "body": "1\n00:00", "content_type": "text/plain"},
            "not verbose JSON",
        ),
        ({"status": "weird", "message": "quota"}, "weird: quota"),
    ],
)
def test_batch_odd_answers(
    answer: dict[str, Any], match: str, fw: FakeFireworks, fw_http: httpx.Client
) -> None:
    fw.inject("batch_poll", Fault(200, {}, answer))
    with pytest.raises(PermanentError, match=match):
        batch(fw_http).poll("a/b")


def test_batch_unknown_status_without_message_keeps_polling(
    fw: FakeFireworks, fw_http: httpx.Client
) -> None:
    fw.inject("batch_poll", Fault(200, {}, {"status": "warming_up", "message": None}))
    assert batch(fw_http).poll("a/b") is None


def test_batch_poll_retries_and_dead_key(
    fw: FakeFireworks, fw_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    handle = batch(fw_http).submit(speech[0], language=None, prompt=None)
    fw.inject_429("batch_poll", retry_after=0)
    fw.inject_drop("batch_poll")
    assert batch(fw_http).poll(handle) is None
    assert fw.requests["batch_poll"] == 3
    with pytest.raises(CredentialRejected):
        batch(fw_http, api_key="bad").poll(handle)


def test_batch_submit_without_ids_is_permanent(
    fw: FakeFireworks, fw_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    fw.inject("batch_submit", Fault(200, {}, {"status": "submitted"}))
    with pytest.raises(PermanentError, match="usable batch_id"):
        batch(fw_http).submit(speech[0], language=None, prompt=None)
    fw.inject("batch_submit", Fault(200, {}, {"batch_id": "b1"}))
    with pytest.raises(PermanentError, match="account_id"):
        batch(fw_http).submit(speech[0], language=None, prompt=None)


# --------------------------------------------------------------------------- OpenAI-compatible


def test_openai_transcribes_what_was_said(
    oa: FakeOpenAIAudio, oa_http: httpx.Client, tmp_path: Path, speech: tuple[Path, list[Word]]
) -> None:
    opus = tmp_path / "speech.opus"
    opus.write_bytes(speech[0].read_bytes())
    transcript = openai(oa_http).transcribe(opus, language="en", prompt="bravo.")
    same_words(transcript.words, speech[1])
    assert transcript.language == "en"  # answered as "english"
    assert transcript.meta == {"provider": "openai", "model": "whisper-1"}
    (upload,) = oa.uploads
    assert upload.authorization == f"Bearer {OA_KEY}"
    assert upload.filename == "audio.ogg"  # OpenAI refuses the .opus extension
    assert upload.fields["timestamp_granularities[]"] == ["word", "segment"]
    assert upload.field_order.count("timestamp_granularities[]") == 2
    assert upload.fields["response_format"] == ["verbose_json"]


def test_openai_self_hosted_without_a_key(speech: tuple[Path, list[Word]]) -> None:
    fake = FakeOpenAIAudio(api_key=None)
    with make_http_client(transport=mock_transport(fake.handler)) as http:
        client = openai(http, api_key=None, base_url="http://localhost:8000/v1", name="speaches")
        transcript = client.transcribe(speech[0], language=None, prompt=None)
    same_words(transcript.words, speech[1])
    assert fake.uploads[0].authorization is None
    assert transcript.meta["provider"] == "speaches"


def test_openai_dead_key_and_413(
    oa: FakeOpenAIAudio, oa_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    with pytest.raises(CredentialRejected, match="openai: the API key was refused"):
        openai(oa_http, api_key="wrong").transcribe(speech[0], language=None, prompt=None)
    oa.max_upload_bytes = 50_000
    with pytest.raises(AudioTooLarge, match="audio too large for openai"):
        openai(oa_http).transcribe(speech[0], language=None, prompt=None)
    assert openai(oa_http).max_upload_bytes == 25 * 1024 * 1024
    assert openai(oa_http, max_upload_mb=None).max_upload_bytes is None


def test_openai_retries_and_malformed(
    oa: FakeOpenAIAudio, oa_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    oa.inject_429(retry_after=None)
    oa.inject_5xx(status=500)
    sleeps = Sleeps()
    same_words(
        openai(oa_http, sleeps).transcribe(speech[0], language=None, prompt=None).words, speech[1]
    )
    assert len(sleeps) == 2 and oa.requests["transcribe"] == 3
    oa.inject_malformed()
    with pytest.raises(PermanentError, match="malformed JSON"):
        openai(oa_http).transcribe(speech[0], language=None, prompt=None)


def test_openai_json_only_model_gives_one_segment(
    oa_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    transcript = openai(oa_http, model="gpt-4o-transcribe").transcribe(
        speech[0], language=None, prompt=None
    )
    assert len(transcript.segments) == 1 and not transcript.words
    assert transcript.segments[0].text.split() == [w.text for w in speech[1]]


def test_openai_fake_refuses_what_openai_refuses(
    oa: FakeOpenAIAudio, oa_http: httpx.Client, speech: tuple[Path, list[Word]]
) -> None:
    data = speech[0].read_bytes()

    def post(files: dict[str, Any], fields: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {OA_KEY}"}
        return oa_http.post(
            f"{OPENAI}/audio/transcriptions", files=files, data=fields, headers=headers
        )

    ok_file = {"file": ("a.ogg", data, "audio/ogg")}
    assert post({"file": ("a.opus", data, "audio/ogg")}, {"model": "whisper-1"}).status_code == 400
    granular = {"model": "whisper-1", "timestamp_granularities[]": ["word"]}
    assert post(ok_file, granular).status_code == 400  # needs verbose_json
    verbose4o = {"model": "gpt-4o-transcribe", "response_format": "verbose_json"}
    assert post(ok_file, verbose4o).status_code == 400
    srt = post(ok_file, {"model": "whisper-1", "response_format": "srt"})
    assert srt.status_code == 200 and srt.text.startswith("1\n00:00:")
    vtt = post(ok_file, {"model": "whisper-1", "response_format": "vtt"})
    assert vtt.text.startswith("WEBVTT")
    words_only = post(ok_file, {**granular, "response_format": "verbose_json"}).json()
    assert "words" in words_only and "segments" not in words_only


# --------------------------------------------------------------------------- over real HTTP


def test_both_providers_over_a_real_http_server(speech: tuple[Path, list[Word]]) -> None:
    path, truth = speech
    fw, oa = FakeFireworks(api_key=FW_KEY), FakeOpenAIAudio(api_key=OA_KEY)
    with serve(fw.handler) as fw_url, serve(oa.handler) as oa_url, make_http_client() as http:
        fw.inject_drop()  # the real server closes the socket: retried
        sync = fireworks(http, base_url=fw_url + "/v1")
        same_words(sync.transcribe(path, language="ru", prompt=None).words, truth)
        client = batch(http, batch_base_url=fw_url + "/v1")
        handle = client.submit(path, language=None, prompt=None)
        fw.complete(handle.split("/")[1])
        done = client.poll(handle)
        assert done is not None
        same_words(done.words, truth)
        same_words(
            openai(http, base_url=oa_url + "/v1")
            .transcribe(path, language=None, prompt=None)
            .words,
            truth,
        )
    assert fw.requests["transcribe"] == 2 and fw.uploads[0].fields["language"] == ["ru"]
    assert oa.bytes_received > path.stat().st_size


def test_segments_hold_their_words(fw_http: httpx.Client, speech: tuple[Path, list[Word]]) -> None:
    transcript = fireworks(fw_http).transcribe(speech[0], language=None, prompt=None)
    for seg in transcript.segments:
        assert isinstance(seg, Segment) and seg.words
        assert seg.text == " ".join(w.text for w in seg.words)
        assert seg.start <= seg.words[0].start and seg.words[-1].end <= seg.end


# --------------------------------------------------------------------------- the fakes' ears


@pytest.mark.parametrize("suffix", [".ogg", ".mp3", ".wav"])
def test_speech_decodes_back_to_its_script(suffix: str, tmp_path: Path) -> None:
    script = [(0.5, "alpha"), (1.6, "lima"), (2.4, "golf"), (6.0, "kilo")]
    truth = make_speech(tmp_path / f"s{suffix}", script, total_s=8.0, seed=3)
    assert [(w.start, w.text) for w in truth] == script
    same_words(decode_words(tmp_path / f"s{suffix}"), truth, tolerance=0.08)
    with pytest.raises(ValueError, match="cannot place"):
        make_speech(tmp_path / "bad.wav", [(1.0, "alpha"), (1.1, "bravo")], total_s=3.0)
