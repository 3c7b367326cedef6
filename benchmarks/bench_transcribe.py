"""Transcription benchmark: a 3-hour "speech" recording through chunked transcription against
a fake provider on 127.0.0.1 that listens to every chunk and answers after a delay
proportional to its length (its own decoding is warmed up first, untimed: a real provider
decodes on its machines, not ours), at concurrency 1 and 4 in the same run.

Reports wall time at each concurrency and their ratio (target: 4 is >= 3.2x faster), MB of
audio uploaded per hour of recording (target <= 15 MB/h), and checks that every spoken word
came back exactly once. Silence detection runs once, timed apart (the stage can reuse it).

    .venv/bin/python -m benchmarks.bench_transcribe [--hours 3] [--format ogg|mp3]
        [--provider fireworks|openai] [--seconds-per-minute 0.2] [--chunk-minutes 16]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

from tests.fakes.audio_words import make_speech
from tests.fakes.fireworks import FakeFireworks
from tests.fakes.openai_audio import FakeAudioAPI, FakeOpenAIAudio
from tests.fakes.server import serve

from leap.media.ffmpeg import locate, probe
from leap.media.ffmpeg_ops import detect_silence
from leap.pipeline.chunking import transcribe_audio
from leap.providers.fireworks import FireworksTranscriber
from leap.providers.http import make_http_client
from leap.providers.openai_audio import OpenAITranscriber
from leap.providers.transcription import Transcriber
from leap.text.transcript import Transcript, Word


def speech_file(directory: Path, hours: float, fmt: str) -> tuple[Path, list[Word]]:
    """The recording and its truth, generated once and cached in `directory`."""
    path = directory / f"bench-speech-{hours:g}h.{fmt}"
    truth_path = path.with_name(path.name + ".truth.json")
    if path.is_file() and truth_path.is_file():
        truth = [Word(*w) for w in json.loads(truth_path.read_text())]
        print(f"using cached {path} ({path.stat().st_size / 1e6:.1f} MB)")
        return path, truth
    directory.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    # 24 kbps CBR, mono 16 kHz: what extract_audio writes for Opus (MP3 there is 32 kbps).
    truth = make_speech(path, total_s=hours * 3600.0, seed=2026, bitrate="24k")
    truth_path.write_text(json.dumps([[w.start, w.end, w.text] for w in truth]))
    print(
        f"generated {path} in {time.perf_counter() - began:.1f} s: {len(truth)} words, "
        f"{path.stat().st_size / 1e6:.1f} MB"
    )
    return path, truth


def check(transcript: Transcript, truth: list[Word]) -> str:
    got = transcript.words
    if [w.text for w in got] != [w.text for w in truth]:
        return f"MISMATCH: {len(got)} words back for {len(truth)} spoken"
    worst = max(abs(g.start - t.start) for g, t in zip(got, truth, strict=True))
    return f"all {len(truth)} words exactly once, start error <= {worst * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=3.0)
    parser.add_argument("--format", choices=("ogg", "mp3"), default="ogg")
    parser.add_argument("--provider", choices=("fireworks", "openai"), default="fireworks")
    parser.add_argument(
        "--seconds-per-minute",
        type=float,
        default=0.2,
        help="fake latency per minute of audio (Fireworks-like 1 s/min, scaled down)",
    )
    parser.add_argument(
        "--chunk-minutes",
        type=float,
        default=16.0,
        help="max chunk length: 3 h in 16-min chunks is 12 chunks, 3 rounds of 4",
    )
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "leap-bench")
    opts = parser.parse_args()

    tools = locate()
    path, truth = speech_file(opts.dir, opts.hours, opts.format)
    info = probe(tools, path)
    hours = info.duration_s / 3600.0
    began = time.perf_counter()
    silences = detect_silence(tools, path, noise_db=-35.0, min_silence_s=1.0)
    detect_s = time.perf_counter() - began
    print(
        f"input: {info.duration_s / 60:.0f} min, {info.size_bytes / 1e6:.1f} MB; "
        f"silence detection {detect_s:.1f} s ({len(silences)} silences)"
    )

    fake: FakeAudioAPI
    if opts.provider == "fireworks":
        fake = FakeFireworks(api_key="k")
    else:
        fake = FakeOpenAIAudio(api_key="k")
    walls: dict[int, float] = {}
    sent: dict[int, int] = {}
    with serve(fake.handler) as url, make_http_client() as http:
        client: Transcriber
        if opts.provider == "fireworks":
            client = FireworksTranscriber(
                http, base_url=url + "/v1", api_key="k", model="whisper-v3-turbo"
            )
        else:
            client = OpenAITranscriber(http, base_url=url + "/v1", api_key="k", model="whisper-1")

        def run(concurrency: int) -> tuple[float, Transcript]:
            with tempfile.TemporaryDirectory(prefix="leap-bench-chunks-") as work:
                began = time.perf_counter()
                transcript = transcribe_audio(
                    tools,
                    path,
                    client,
                    language="en",
                    prompt=None,
                    workdir=Path(work),
                    concurrency=concurrency,
                    max_chunk_s=opts.chunk_minutes * 60.0,
                    silences=silences,
                )
                return time.perf_counter() - began, transcript

        # A real provider decodes on its own machines; this fake decodes on ours, and on two
        # cores that would be timed as if it were LEAP's work. So it hears every chunk once
        # first (untimed, no latency); the timed runs cut the same bytes and hit its cache.
        warm_s, _ = run(2)
        decoded = fake.decodes
        print(f"warm-up: the fake decoded {decoded} chunks in {warm_s:.1f} s (untimed)")
        fake.seconds_per_audio_minute = opts.seconds_per_minute
        for concurrency in (1, 4):
            before = sum(u.size for u in fake.uploads)
            walls[concurrency], transcript = run(concurrency)
            sent[concurrency] = sum(u.size for u in fake.uploads) - before
            print(
                f"concurrency {concurrency}: {walls[concurrency]:6.1f} s, "
                f"{transcript.meta['chunks']} chunks, {sent[concurrency] / 1e6:.1f} MB sent; "
                f"{check(transcript, truth)}"
            )
        if fake.decodes != decoded:
            print(f"note: {fake.decodes - decoded} chunks differed from the warm-up's bytes")

    ideal = opts.seconds_per_minute * info.duration_s / 60.0
    speedup = walls[1] / walls[4]
    per_hour = sent[4] / 1e6 / hours
    print(
        f"\nserver-side latency alone: {ideal:.1f} s of audio processing at concurrency 1"
        f"\nspeed-up at concurrency 4: {speedup:.2f}x (target >= 3.2x)"
        f"\naudio sent: {per_hour:.1f} MB per hour of recording (target <= 15 MB/h)"
    )
    if not math.isfinite(speedup) or speedup < 3.2 or per_hour > 15:
        print("TARGET MISSED")


if __name__ == "__main__":
    main()
