"""Chunked transcription: planning and merging as properties over many random inputs, then
real audio cut by ffmpeg and transcribed by a fake that really listens (up to 3 hours)."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from leap.media.ffmpeg import locate
from leap.media.ffmpeg_ops import run_ffmpeg
from leap.media.trim_plan import Interval
from leap.pipeline.chunking import (
    Chunk,
    chunk_cut_args,
    cut_points,
    max_chunk_seconds,
    merge,
    plan_chunks,
    transcribe_audio,
)
from leap.providers.fireworks import FireworksTranscriber
from leap.providers.http import CredentialRejected, RetryPolicy, make_http_client
from leap.providers.openai_audio import OpenAITranscriber
from leap.providers.transcription import AudioTooLarge
from leap.text.transcript import Segment, Transcript, Word
from tests.fakes.audio_words import make_speech
from tests.fakes.fireworks import FakeFireworks
from tests.fakes.openai_audio import FakeOpenAIAudio
from tests.fakes.server import mock_transport

TOOLS = locate()

# --------------------------------------------------------------------------- max_chunk_seconds


def test_max_chunk_seconds() -> None:
    # 10 MB/h audio and a 25 MB limit: 2.5 h, less 10 %.
    assert max_chunk_seconds(25_000_000, 10_000_000, 3600.0) == pytest.approx(8100.0)
    assert max_chunk_seconds(25, 100, 100.0, safety=1.0) == 25.0
    assert max_chunk_seconds(25, 0, 100.0) == math.inf
    assert max_chunk_seconds(25, 100, 0.0) == math.inf


# --------------------------------------------------------------------------- plan_chunks


def test_short_audio_is_one_chunk() -> None:
    assert plan_chunks(100.0, [], max_chunk_s=100.0) == [Chunk(0, 0.0, 100.0)]
    assert plan_chunks(0.0, [], max_chunk_s=10.0) == [Chunk(0, 0.0, 0.0)]


@pytest.mark.parametrize(
    ("duration", "max_chunk", "overlap"),
    [(math.nan, 10.0, 2.0), (-1.0, 10.0, 2.0), (100.0, 2.0, 2.0), (100.0, 10.0, -1.0)],
)
def test_plan_chunks_refuses_nonsense(duration: float, max_chunk: float, overlap: float) -> None:
    with pytest.raises(ValueError):
        plan_chunks(duration, [], max_chunk_s=max_chunk, overlap_s=overlap)


def test_cuts_go_in_the_middle_of_a_silence() -> None:
    chunks = plan_chunks(250.0, [Interval(80.0, 86.0), Interval(170.0, 174.0)], max_chunk_s=100.0)
    assert chunks == [Chunk(0, 0.0, 84.0), Chunk(1, 82.0, 173.0), Chunk(2, 171.0, 250.0)]
    assert cut_points(chunks) == [83.0, 172.0]


def test_the_latest_silence_that_holds_the_overlap_wins() -> None:
    silences = [Interval(50.0, 60.0), Interval(90.0, 90.5), Interval(95.0, 97.0)]
    assert cut_points(plan_chunks(150.0, silences, max_chunk_s=100.0)) == [96.0]


def test_a_silence_past_the_ideal_cut_is_used_up_to_it() -> None:
    # The ideal cut is 99 (a 100 s chunk with 1 s of overlap past it); the silence runs on.
    assert cut_points(plan_chunks(150.0, [Interval(95.0, 120.0)], max_chunk_s=100.0)) == [99.0]


def test_no_silence_means_hard_cuts_at_the_ideal_point() -> None:
    chunks = plan_chunks(250.0, [], max_chunk_s=100.0, overlap_s=2.0)
    assert chunks == [Chunk(0, 0.0, 100.0), Chunk(1, 98.0, 198.0), Chunk(2, 196.0, 250.0)]


def test_silences_beyond_the_search_window_are_ignored() -> None:
    assert cut_points(
        plan_chunks(250.0, [Interval(10.0, 20.0)], max_chunk_s=100.0, search_s=60.0)
    ) == [
        99.0,
        197.0,
    ]


def random_silences(rng: random.Random, duration: float) -> list[Interval]:
    out, t = [], rng.uniform(0, 30)
    while t < duration:
        length = rng.choice([0.3, 1.0, 2.5, 8.0, 40.0]) * rng.random()
        out.append(Interval(t, min(duration, t + length)))
        t += length + rng.expovariate(1 / rng.choice([5.0, 30.0, 200.0]))
    return out


@pytest.mark.parametrize("seed", range(300))
def test_plan_chunks_properties(seed: int) -> None:
    rng = random.Random(seed)
    duration = rng.uniform(1, 20_000)
    overlap = rng.choice([0.0, 0.5, 2.0, 5.0])
    max_chunk = rng.uniform(overlap + 1, 3000)
    search = rng.choice([0.0, 10.0, 60.0, 600.0])
    silences = random_silences(rng, duration) if seed % 4 else []
    chunks = plan_chunks(
        duration, silences, max_chunk_s=max_chunk, overlap_s=overlap, search_s=search
    )
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].start_s == 0.0 and chunks[-1].end_s == duration
    assert all(c.duration_s <= max_chunk + 1e-6 for c in chunks)
    for a, b in itertools.pairwise(chunks):
        assert a.start_s < b.start_s and a.end_s < b.end_s
        assert a.end_s - b.start_s == pytest.approx(overlap)
    cuts = cut_points(chunks)
    # Never more chunks than needed twice over: every chunk but the last is >= half the max.
    assert all(
        b - a >= (max_chunk - overlap) / 2 - 1e-6 for a, b in itertools.pairwise([0.0, *cuts])
    )
    for cut, chunk in zip(cuts, chunks, strict=False):
        ideal = chunk.start_s + max_chunk - overlap / 2
        window = (max(ideal - search, cut - 1e9), ideal)
        reachable = [s for s in silences if s.end > window[0] and s.start < window[1]]
        inside = any(s.start <= cut <= s.end for s in silences)
        assert inside or cut == pytest.approx(ideal) or not reachable


# --------------------------------------------------------------------------- merge


@dataclass
class Script:
    words: list[Word]
    sentence_of: list[int]
    silences: list[Interval]
    duration: float


def random_script(rng: random.Random, duration: float, *, pauses: bool) -> Script:
    """Words no longer than 1.6 s (with two chunks' timing errors, < the 2 s overlap);
    sentences separated by >= 1.2 s of
    silence when `pauses`, else one long monologue with short gaps only."""
    words: list[Word] = []
    sentence_of: list[int] = []
    silences: list[Interval] = []
    t, sentence = rng.uniform(0, 3), 0
    while True:
        for _ in range(rng.randint(1, 40)):
            length = rng.uniform(0.05, 1.6)
            if t + length > duration:
                return Script(words, sentence_of, silences, duration)
            words.append(Word(t, t + length, f"w{len(words)}"))
            sentence_of.append(sentence)
            t += length + rng.uniform(0.02, 0.6)
        if pauses:
            gap = rng.uniform(1.2, 6.0)
            silences.append(Interval(t + 0.1, t + gap - 0.1))
            t += gap
        sentence += 1


def hear(chunk: Chunk, script: Script, rng: random.Random, *, with_words: bool) -> Transcript:
    """What a transcriber might return for one chunk: whole words with jitter, fragments of
    words cut by the chunk's edges clipped (under a garbled name) or dropped, segments per
    sentence; times relative to the chunk."""
    visible: list[tuple[int, Word]] = []
    # Timing error: mostly per chunk (where its cut really began), a little per word.
    offset = rng.uniform(-0.15, 0.15)
    for sentence, w in zip(script.sentence_of, script.words, strict=True):
        if w.end <= chunk.start_s or w.start >= chunk.end_s:
            continue
        jitter = offset + rng.uniform(-0.01, 0.01)
        if w.start >= chunk.start_s and w.end <= chunk.end_s:
            start = max(0.0, w.start - chunk.start_s + jitter)
            visible.append(
                (sentence, Word(start, max(start, w.end - chunk.start_s + jitter), w.text))
            )
        elif rng.random() < 0.5:
            start, end = max(w.start, chunk.start_s), min(w.end, chunk.end_s)
            visible.append(
                (sentence, Word(start - chunk.start_s, end - chunk.start_s, "~" + w.text))
            )
    segments = []
    for _, group in itertools.groupby(visible, key=lambda p: p[0]):
        ws = [w for _, w in group]
        text = " ".join(w.text for w in ws)
        start, end = max(0.0, ws[0].start - 0.05), ws[-1].end + 0.05
        segments.append(Segment(start, end, text, tuple(ws) if with_words else ()))
    return Transcript("en", chunk.duration_s, tuple(segments), {"provider": "fake", "model": "m"})


def check_merged_words(merged: Transcript, script: Script) -> None:
    words = merged.words
    assert [w.text for w in words] == [w.text for w in script.words]  # no losses, no duplicates
    for got, truth in zip(words, script.words, strict=True):
        assert abs(got.start - truth.start) <= 0.161 and abs(got.end - truth.end) <= 0.161
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    starts = [s.start for s in merged.segments]
    assert starts == sorted(starts)
    for a, b in itertools.pairwise(merged.segments):
        # Padding (50 ms) and jitter (30 ms) aside, segments never overlap, across chunks too.
        assert a.end <= b.start + 0.5
    for seg in merged.segments:
        assert seg.words and seg.start <= seg.words[0].start and seg.words[-1].end <= seg.end
        assert seg.text == " ".join(w.text for w in seg.words)


@pytest.mark.parametrize("seed", range(200))
def test_merge_keeps_every_word_once(seed: int) -> None:
    rng = random.Random(seed)
    script = random_script(rng, rng.uniform(60, 3000), pauses=seed % 3 != 0)
    max_chunk = rng.uniform(20, 400)
    silences = script.silences if seed % 2 else []  # hard cuts too
    chunks = plan_chunks(
        script.duration, silences, max_chunk_s=max_chunk, search_s=rng.choice([5.0, 60.0])
    )
    merged = merge([(c, hear(c, script, rng, with_words=True)) for c in chunks])
    check_merged_words(merged, script)
    assert merged.meta == {
        "provider": "fake",
        "model": "m",
        "chunks": len(chunks),
        "billed_s": pytest.approx(sum(c.duration_s for c in chunks), abs=0.01),
    }
    assert merged.duration_s == script.duration and merged.language == "en"


@pytest.mark.parametrize("seed", range(100))
def test_merge_without_words_keeps_every_sentence_once(seed: int) -> None:
    rng = random.Random(seed)
    script = random_script(rng, rng.uniform(300, 3000), pauses=True)
    # Sentences are at most 40 words of < 2.5 s: a 200 s chunk always finds a pause to end in.
    chunks = plan_chunks(script.duration, script.silences, max_chunk_s=200.0, search_s=150.0)
    for cut in cut_points(chunks):
        assert any(s.start <= cut <= s.end for s in script.silences)
    merged = merge([(c, hear(c, script, rng, with_words=False)) for c in chunks])
    expected = [
        " ".join(w.text for _, w in group)
        for _, group in itertools.groupby(
            zip(script.sentence_of, script.words, strict=True), key=lambda p: p[0]
        )
    ]
    assert [s.text for s in merged.segments] == expected


def test_merge_splits_a_segment_across_the_cut_by_its_words() -> None:
    a, b = Chunk(0, 0.0, 11.0), Chunk(1, 9.0, 20.0)  # cut at 10
    left = Transcript(
        "en",
        11.0,
        (
            Segment(
                8.0,
                11.0,
                "one two three",
                (Word(8.0, 8.5, "one"), Word(9.2, 9.9, "two"), Word(10.2, 10.9, "three")),
            ),
        ),
    )
    right = Transcript(
        "en",
        11.0,
        (
            Segment(
                0.0,
                3.0,
                "two three four",
                (Word(0.2, 0.9, "two"), Word(1.2, 1.9, "three"), Word(2.2, 2.9, "four")),
            ),
        ),
    )
    merged = merge([(b, right), (a, left)])  # any order
    assert [(s.start, s.end, s.text) for s in merged.segments] == [
        (8.0, 9.9, "one two"),
        (10.2, 11.9, "three four"),
    ]


def test_merge_of_scripts_without_spaces_joins_without_them() -> None:
    a, b = Chunk(0, 0.0, 11.0), Chunk(1, 9.0, 20.0)
    words = (Word(9.0, 9.5, "東"), Word(9.6, 9.8, "京"), Word(10.5, 10.8, "都"))
    merged = merge(
        [
            (a, Transcript("ja", 11.0, (Segment(9.0, 10.8, "東京都", words),))),
            (b, Transcript("ja", 11.0, (Segment(1.5, 1.8, "都", (Word(1.5, 1.8, "都"),)),))),
        ]
    )
    assert [s.text for s in merged.segments] == ["東京", "都"]


def test_merge_picks_the_language_spoken_longest_and_handles_nothing() -> None:
    chunks = [
        (Chunk(0, 0.0, 100.0), Transcript("ru", 100.0)),
        (Chunk(1, 98.0, 130.0), Transcript("en", 32.0)),
    ]
    assert merge(chunks).language == "ru"
    assert merge([(Chunk(0, 0.0, 5.0), Transcript(None, 5.0))]).language is None
    empty = merge([])
    assert empty.segments == () and empty.meta["chunks"] == 0


# --------------------------------------------------------------------------- cutting


def test_chunk_cut_args_copy_same_container() -> None:
    args = chunk_cut_args(Path("/a/in.ogg"), Path("/w/c.ogg"), 125.5, 425.5)
    assert args[:6] == ["-ss", "115.500", "-i", "file:/a/in.ogg", "-ss", "10.000"]
    assert args[6:8] == ["-t", "300.000"]
    assert "copy" in args and args[-5:] == ["-f", "ogg", "-fflags", "+bitexact", "file:/w/c.ogg"]
    early = chunk_cut_args(Path("in.mp3"), Path("c.mp3"), 4.0, 10.0)
    assert early[:6] == ["-ss", "0.000", "-i", "file:in.mp3", "-ss", "4.000"]


def test_chunk_cut_args_reencode_from_video_and_refuse_unknown() -> None:
    args = chunk_cut_args(Path("in.mp4"), Path("c.ogg"), 0.0, 60.0)
    assert (
        "copy" not in args
        and "libopus" in args
        and args[args.index("-ac") : args.index("-ac") + 2] == ["-ac", "1"]
    )
    with pytest.raises(ValueError):
        chunk_cut_args(Path("in.mp4"), Path("c.xyz"), 0.0, 60.0)


# --------------------------------------------------------------------------- real audio


@pytest.fixture(scope="module")
def ten_minutes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Word]]:
    path = tmp_path_factory.mktemp("speech") / "ten.ogg"
    return path, make_speech(path, total_s=600.0, seed=11)


@pytest.fixture
def oa() -> FakeOpenAIAudio:
    return FakeOpenAIAudio(api_key="k")


@pytest.fixture
def oa_http(oa: FakeOpenAIAudio) -> Iterator[httpx.Client]:
    with make_http_client(transport=mock_transport(oa.handler)) as client:
        yield client


def openai(http: httpx.Client, max_bytes: int | None = None) -> OpenAITranscriber:
    client = OpenAITranscriber(
        http,
        base_url="https://api.openai.test/v1",
        api_key="k",
        model="whisper-1",
        policy=RetryPolicy(max_attempts=3, base_delay=0, rng=random.Random(0)),
        sleep=lambda s: None,
    )
    if max_bytes is not None:
        client.max_upload_bytes = max_bytes
    return client


def exactly_once(got: list[Word], truth: list[Word], tolerance: float = 0.5) -> None:
    assert [w.text for w in got] == [w.text for w in truth]
    worst = max(abs(g.start - t.start) for g, t in zip(got, truth, strict=True))
    assert worst < tolerance, worst


def test_audio_that_fits_goes_up_whole(
    oa: FakeOpenAIAudio, oa_http: httpx.Client, ten_minutes: tuple[Path, list[Word]], tmp_path: Path
) -> None:
    path, truth = ten_minutes
    seen: list[float] = []
    transcript = transcribe_audio(
        TOOLS,
        path,
        openai(oa_http),
        language="en",
        prompt=None,
        workdir=tmp_path / "w",
        progress=seen.append,
    )
    exactly_once(transcript.words, truth, 0.1)
    assert oa.requests["transcribe"] == 1 and seen == [1.0]
    assert transcript.meta == {
        "provider": "openai",
        "model": "whisper-1",
        "chunks": 1,
        "billed_s": pytest.approx(600.0, abs=0.1),
    }
    assert transcript.duration_s == pytest.approx(600.0, abs=0.1)


def test_large_audio_is_chunked_at_silences(
    oa: FakeOpenAIAudio, oa_http: httpx.Client, ten_minutes: tuple[Path, list[Word]], tmp_path: Path
) -> None:
    path, truth = ten_minutes
    limit = path.stat().st_size // 4
    seen: list[float] = []
    workdir = tmp_path / "w"
    transcript = transcribe_audio(
        TOOLS,
        path,
        openai(oa_http, limit),
        language="en",
        prompt="p",
        workdir=workdir,
        progress=seen.append,
    )
    exactly_once(transcript.words, truth)
    chunks = transcript.meta["chunks"]
    assert chunks >= 5 and oa.requests["transcribe"] == chunks
    assert all(u.size <= limit for u in oa.uploads)
    assert all(u.fields["prompt"] == ["p"] for u in oa.uploads)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 2
    assert list(workdir.iterdir()) == []  # chunk files removed
    assert 600.0 < transcript.meta["billed_s"] < 600.0 + 2.0 * chunks


def test_hard_cuts_lose_and_double_nothing(
    oa: FakeOpenAIAudio, oa_http: httpx.Client, ten_minutes: tuple[Path, list[Word]], tmp_path: Path
) -> None:
    path, truth = ten_minutes
    # No silences known: every cut is a hard cut, wherever it falls.
    transcript = transcribe_audio(
        TOOLS,
        path,
        openai(oa_http),
        language=None,
        prompt=None,
        workdir=tmp_path,
        max_chunk_s=47.3,
        silences=[],
    )
    exactly_once(transcript.words, truth)
    assert transcript.meta["chunks"] == 14  # 600 s in steps of 47.3 - 2 s


def test_a_413_on_the_whole_file_falls_back_to_chunks(
    oa: FakeOpenAIAudio, oa_http: httpx.Client, ten_minutes: tuple[Path, list[Word]], tmp_path: Path
) -> None:
    path, truth = ten_minutes
    # The server's real limit is far below the 25 MiB the client believes in.
    oa.max_upload_bytes = path.stat().st_size // 3
    transcript = transcribe_audio(
        TOOLS, path, openai(oa_http), language=None, prompt=None, workdir=tmp_path
    )
    exactly_once(transcript.words, truth)
    too_large = oa.requests["transcribe"] - transcript.meta["chunks"]
    assert too_large >= 2  # the whole file, then at least one chunk split again
    assert list(tmp_path.iterdir()) == []


def test_an_impossible_limit_is_refused(
    oa_http: httpx.Client, ten_minutes: tuple[Path, list[Word]], tmp_path: Path
) -> None:
    with pytest.raises(AudioTooLarge):
        transcribe_audio(
            TOOLS,
            ten_minutes[0],
            openai(oa_http, 1000),
            language=None,
            prompt=None,
            workdir=tmp_path,
        )


def test_the_transcript_does_not_depend_on_the_concurrency(
    ten_minutes: tuple[Path, list[Word]], tmp_path: Path
) -> None:
    results: dict[int, Transcript] = {}
    for concurrency in (1, 4):
        fake = FakeOpenAIAudio(api_key="k")
        with make_http_client(transport=mock_transport(fake.handler)) as http:
            results[concurrency] = transcribe_audio(
                TOOLS,
                ten_minutes[0],
                openai(http),
                language="en",
                prompt=None,
                workdir=tmp_path,
                max_chunk_s=60.0,
                concurrency=concurrency,
            )
    one, four = results[1], results[4]
    exactly_once(one.words, ten_minutes[1])
    assert one.meta["chunks"] >= 8
    assert one.segments == four.segments and one.meta == four.meta


def test_a_failing_chunk_fails_the_whole_and_cleans_up(
    oa: FakeOpenAIAudio, oa_http: httpx.Client, ten_minutes: tuple[Path, list[Word]], tmp_path: Path
) -> None:
    oa.inject_401()
    with pytest.raises(CredentialRejected):
        transcribe_audio(
            TOOLS,
            ten_minutes[0],
            openai(oa_http),
            language=None,
            prompt=None,
            workdir=tmp_path,
            max_chunk_s=60.0,
            concurrency=2,
        )
    assert list(tmp_path.iterdir()) == []
    assert oa.requests["transcribe"] < 12  # the rest were cancelled


def test_parallel_pieces_with_fireworks_and_mp3(tmp_path: Path) -> None:
    path = tmp_path / "speech.mp3"
    truth = make_speech(path, total_s=240.0, seed=5)
    fake = FakeFireworks(api_key="fw")
    with make_http_client(transport=mock_transport(fake.handler)) as http:
        client = FireworksTranscriber(
            http, base_url="https://fw.test/v1", api_key="fw", model="whisper-v3"
        )
        transcript = transcribe_audio(
            TOOLS,
            path,
            client,
            language="en",
            prompt=None,
            workdir=tmp_path / "w",
            max_chunk_s=60.0,
        )
    exactly_once(transcript.words, truth)
    assert transcript.meta["chunks"] == fake.requests["transcribe"] >= 4
    assert {u.filename for u in fake.uploads} == {"audio.mp3"}


def test_a_video_container_is_reencoded_into_speech_chunks(
    oa: FakeOpenAIAudio, oa_http: httpx.Client, tmp_path: Path
) -> None:
    wav = tmp_path / "speech.wav"
    truth = make_speech(wav, total_s=150.0, seed=9)
    mkv = tmp_path / "speech.mkv"
    run_ffmpeg(TOOLS, ["-i", str(wav), "-c:a", "pcm_s16le", str(mkv)], duration_s=None, timeout=60)
    transcript = transcribe_audio(
        TOOLS,
        mkv,
        openai(oa_http, 10**9),
        language=None,
        prompt=None,
        workdir=tmp_path / "w",
        max_chunk_s=50.0,
    )
    exactly_once(transcript.words, truth)
    assert {Path(u.filename or "").suffix for u in oa.uploads} == {".ogg"}


# --------------------------------------------------------------------------- three hours


@pytest.fixture(scope="session")
def three_hours(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Word]]:
    # MP3 (24 kbps CBR, 32 MB): ~4x faster to encode and decode than Opus, which keeps this
    # end-to-end test under a minute; the Opus path is covered by the 10-minute tests.
    path = tmp_path_factory.mktemp("three-hours") / "lecture.mp3"
    return path, make_speech(path, total_s=3 * 3600.0, seed=2026)


def test_three_hours_through_a_25_mb_limit(
    three_hours: tuple[Path, list[Word]], tmp_path: Path
) -> None:
    path, truth = three_hours
    assert path.stat().st_size > 25 * 1024 * 1024
    fake = FakeOpenAIAudio(api_key="k")
    with make_http_client(transport=mock_transport(fake.handler)) as http:
        four = transcribe_audio(
            TOOLS,
            path,
            openai(http),  # OpenAI's own 25 MiB
            language="en",
            prompt=None,
            workdir=tmp_path,
            concurrency=4,
        )
    exactly_once(four.words, truth)
    assert four.meta["chunks"] >= 2
    assert all(u.size <= 25 * 1024 * 1024 for u in fake.uploads)
    assert list(tmp_path.iterdir()) == []
