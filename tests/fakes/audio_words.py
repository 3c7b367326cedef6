"""Test "speech" the fake transcribers really listen to: tone bursts whose pitch names a word,
short gaps between words and long ones (> 2 s) between sentences; make it, and decode it back.
"""

from __future__ import annotations

import functools
import math
import operator
import random
import subprocess
from array import array
from collections.abc import Sequence
from pathlib import Path

from leap.media.ffmpeg import locate
from leap.text.transcript import Word

# Pitch -> word, in the range of voices: low-bitrate Opus (SILK) mangles steady tones above
# ~1.5 kHz. 60 Hz apart, three DFT bins of the 50 ms window the decoder classifies.
VOCABULARY: tuple[tuple[float, str], ...] = (
    (330.0, "alpha"),
    (390.0, "bravo"),
    (450.0, "charlie"),
    (510.0, "delta"),
    (570.0, "echo"),
    (630.0, "foxtrot"),
    (690.0, "golf"),
    (750.0, "hotel"),
    (810.0, "india"),
    (870.0, "juliett"),
    (930.0, "kilo"),
    (990.0, "lima"),
)
FREQUENCY = {word: hz for hz, word in VOCABULARY}

MAKE_RATE = 16000
DECODE_RATE = 4000
FRAME = DECODE_RATE // 100  # samples per 10 ms envelope frame
AMPLITUDE = 0.3
RAMP_S = 0.01  # raised-cosine attack/release: no clicks, which would smear the spectrum
THRESHOLD = int(0.05 * 32767)  # a frame is "sound" when its peak passes ~-26 dBFS
BRIDGE = 11  # frames: 110 ms, below the shortest gap between words (150 ms)
MIN_WORD_S = 0.06  # shorter bursts are fragments cut at a chunk edge: not a word
WINDOW = DECODE_RATE // 20  # samples: the 50 ms classified per word
SENTENCE_GAP_S = 1.2  # the decoder starts a new segment after a pause this long


@functools.cache
def _ffmpeg() -> str:
    return locate().ffmpeg


def _codec_args(path: Path, bitrate: str) -> list[str]:
    suffix = path.suffix.lower()
    if suffix in {".ogg", ".opus"}:
        # Complexity 0: ~10x faster to encode than the default, and tones don't need more.
        args = ["-c:a", "libopus", "-b:a", bitrate, "-application", "voip"]
        return [*args, "-vbr", "off", "-compression_level", "0", "-f", "ogg"]
    if suffix == ".mp3":
        return ["-c:a", "libmp3lame", "-b:a", bitrate, "-f", "mp3"]
    if suffix == ".wav":
        return ["-c:a", "pcm_s16le", "-f", "wav"]
    if suffix == ".m4a":
        return ["-c:a", "aac", "-b:a", bitrate, "-f", "ipod"]
    raise ValueError(f"{path.name}: use .ogg, .opus, .mp3, .m4a or .wav")


def random_script(total_s: float, seed: int) -> list[tuple[float, str]]:
    """(start, word) pairs filling `total_s`: sentences of 2-12 words, 0.3-0.8 s each, gaps
    of 0.15-0.5 s inside a sentence and 2.2-4.5 s between sentences."""
    rng = random.Random(seed)
    words = [w for _, w in VOCABULARY]
    out: list[tuple[float, str]] = []
    t = rng.uniform(0.5, 3.0)
    while True:
        for _ in range(rng.randint(2, 12)):
            if t + 0.8 > total_s - 0.5:
                return out
            out.append((round(t, 2), rng.choice(words)))
            t += 0.8 + rng.uniform(0.15, 0.5)
        t += rng.uniform(2.2, 4.5)


def _durations(script: Sequence[tuple[float, str]], total_s: float, seed: int) -> list[float]:
    """Each word's length: 0.3-0.8 s, but never running into the next word or the end."""
    rng = random.Random(seed ^ 0x5EED)
    out = []
    for i, (start, _) in enumerate(script):
        limit = (script[i + 1][0] if i + 1 < len(script) else total_s) - start - 0.1
        out.append(round(min(rng.uniform(0.3, 0.8), limit), 2))
    return out


@functools.lru_cache(maxsize=2048)
def _burst(word: str, n: int) -> bytes:
    hz = FREQUENCY[word]
    ramp = max(1, min(int(RAMP_S * MAKE_RATE), n // 2))
    step = 2 * math.pi * hz / MAKE_RATE
    samples = array("h", bytes(2 * n))
    for i in range(n):
        edge = min(i, n - 1 - i)
        gain = 0.5 - 0.5 * math.cos(math.pi * edge / ramp) if edge < ramp else 1.0
        samples[i] = int(32767 * AMPLITUDE * gain * math.sin(step * i))
    return samples.tobytes()


def make_speech(
    path: Path,
    words: Sequence[tuple[float, str]] | None = None,
    *,
    total_s: float,
    seed: int = 0,
    bitrate: str = "24k",
) -> list[Word]:
    """Write "speech" to `path` (codec by suffix: .ogg/.opus Opus, .mp3, .m4a, .wav; mono
    16 kHz) and return the truth: one Word per burst, times in seconds.

    `words` gives (start, word) pairs; None makes a random script (see random_script)."""
    script = sorted(words) if words is not None else random_script(total_s, seed)
    lengths = _durations(script, total_s, seed)
    for (start, word), length in zip(script, lengths, strict=True):
        if word not in FREQUENCY or length <= 0 or start < 0:
            raise ValueError(f"cannot place {word!r} at {start} s")
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y"]
    cmd += ["-f", "s16le", "-ar", str(MAKE_RATE), "-ac", "1", "-i", "pipe:0"]
    cmd += [*_codec_args(path, bitrate), f"file:{path}"]
    truth: list[Word] = []
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    try:
        written = 0  # samples
        for (start, word), length in zip(script, lengths, strict=True):
            begin, n = round(start * MAKE_RATE), round(length * MAKE_RATE)
            if begin < written:
                raise ValueError(f"{word!r} at {start} s overlaps the word before it")
            proc.stdin.write(bytes(2 * (begin - written)) + _burst(word, n))
            written = begin + n
            truth.append(Word(begin / MAKE_RATE, (begin + n) / MAKE_RATE, word))
        end = round(total_s * MAKE_RATE)
        proc.stdin.write(bytes(2 * max(0, end - written)))
        proc.stdin.close()
        err = proc.stderr.read()
        code = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    if code != 0:
        raise RuntimeError(f"ffmpeg failed making {path.name}: {err.decode(errors='replace')}")
    return truth


@functools.cache
def _tables() -> list[tuple[str, array[float], array[float]]]:
    out = []
    for hz, word in VOCABULARY:
        step = 2 * math.pi * hz / DECODE_RATE
        cos = array("d", (math.cos(step * i) for i in range(WINDOW)))
        sin = array("d", (math.sin(step * i) for i in range(WINDOW)))
        out.append((word, cos, sin))
    return out


def _classify(samples: Sequence[int]) -> str:
    # One DFT bin per vocabulary pitch over the window (a Goertzel filter, written as two dot
    # products so the loops run in C).
    best, best_power = "", -1.0
    for word, cos, sin in _tables():
        re = sum(map(operator.mul, samples, cos))
        im = sum(map(operator.mul, samples, sin))
        power = re * re + im * im
        if power > best_power:
            best, best_power = word, power
    return best


def decode_pcm(path: Path) -> array[int]:
    """The file's audio as mono 8 kHz signed 16-bit samples."""
    cmd = [_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", "-i", f"file:{path}"]
    cmd += ["-vn", "-ac", "1", "-ar", str(DECODE_RATE), "-f", "s16le", "pipe:1"]
    proc = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL, timeout=600)
    if proc.returncode != 0:
        raise ValueError(f"cannot decode {path.name}: {proc.stderr.decode(errors='replace')}")
    pcm = array("h")
    pcm.frombytes(proc.stdout[: len(proc.stdout) // 2 * 2])
    return pcm


def decode_words(path: Path) -> list[Word]:
    """The words spoken in an audio file made by make_speech (or any cut of one), with times
    from the file's start: bursts found on a 10 ms peak envelope, named by their pitch."""
    return listen(path)[0]


def listen(path: Path) -> tuple[list[Word], float]:
    """decode_words, plus the file's decoded duration in seconds."""
    pcm = decode_pcm(path)
    return words_from_pcm(pcm), len(pcm) / DECODE_RATE


def words_from_pcm(pcm: array[int]) -> list[Word]:
    frames = (len(pcm) + FRAME - 1) // FRAME
    loud = [max(pcm[i * FRAME : (i + 1) * FRAME]) > THRESHOLD for i in range(frames)]
    out: list[Word] = []
    i = 0
    while i < frames:
        if not loud[i]:
            i += 1
            continue
        j = _burst_end(loud, i)
        start, end = _edge(pcm, i * FRAME, 1), _edge(pcm, min(j * FRAME, len(pcm)) - 1, -1) + 1
        i = j
        if (end - start) / DECODE_RATE < MIN_WORD_S:
            continue
        mid = (start + end) // 2
        lo = max(start, mid - WINDOW // 2)
        window = pcm[lo : lo + WINDOW]
        out.append(Word(start / DECODE_RATE, end / DECODE_RATE, _classify(window)))
    return out


def _burst_end(loud: Sequence[bool], i: int) -> int:
    """The frame after the burst starting at frame i; quiet spells shorter than BRIDGE frames
    inside it are codec dropouts (low-bitrate Opus dips on a steady tone), not word gaps."""
    j, frames = i, len(loud)
    while j < frames:
        if loud[j]:
            j += 1
            continue
        k = j
        while k < frames and k - j < BRIDGE and not loud[k]:
            k += 1
        if k < frames and loud[k] and k - j < BRIDGE:
            j = k
            continue
        return j
    return j


def _edge(pcm: array[int], index: int, direction: int) -> int:
    """The first sample from `index` (walking by `direction`, within its 10 ms frame) whose
    magnitude passes the threshold: burst edges to the sample, not the frame."""
    stop = index + direction * FRAME
    for k in range(index, stop, direction):
        if 0 <= k < len(pcm) and abs(pcm[k]) > THRESHOLD:
            return k
    return index


def sentences(words: Sequence[Word], gap_s: float = SENTENCE_GAP_S) -> list[list[Word]]:
    """Words grouped into sentences at pauses longer than `gap_s`."""
    out: list[list[Word]] = []
    for word in words:
        if out and word.start - out[-1][-1].end <= gap_s:
            out[-1].append(word)
        else:
            out.append([word])
    return out
