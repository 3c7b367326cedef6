"""Transcribe audio too long or too large for one request: plan chunks that end in silences,
cut them, transcribe them concurrently, and merge them so no word is doubled or lost."""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from leap.media.ffmpeg import FFmpegTools, MediaError, probe
from leap.media.ffmpeg_ops import audio_suffix, detect_silence, run_ffmpeg
from leap.media.trim_plan import Interval, normalise
from leap.providers.transcription import AudioTooLarge, Transcriber
from leap.text.transcript import Segment, Transcript, Word

__all__ = [
    "Chunk",
    "chunk_cut_args",
    "cut_points",
    "max_chunk_seconds",
    "merge",
    "plan_chunks",
    "transcribe_audio",
]

log = logging.getLogger(__name__)

Progress = Callable[[float], None]


@runtime_checkable
class ReportsProgress(Protocol):
    """A transcriber that tells how far into one file it is (the local model decodes an
    hour for many minutes); an API answers a request all at once, so it needs no such
    method and its progress is chunks done / chunks planned."""

    def transcribe_reporting(
        self, audio: Path, *, language: str | None, prompt: str | None, progress: Progress
    ) -> Transcript: ...


# Below this a chunk is not worth splitting further: the provider's limit must be absurd.
MIN_CHUNK_S = 30.0
# Pauses between sentences; 1 s is enough to cut without splitting a word.
SILENCE_NOISE_DB = -35.0
SILENCE_MIN_S = 1.0
CUT_TIMEOUT_S = 600.0
# Input seeking lands on a container page before the target (Ogg: up to ~1 s); seeking this
# much earlier and then dropping packets up to the exact start keeps a copy cut within one
# packet (20 ms Opus, 72 ms MP3 at 16 kHz) of the plan, measured.
_PRESEEK_S = 10.0

# Audio containers a chunk is stream-copied into: no re-encoding, ~0.03 s per cut.
_COPY_MUXERS = {
    ".ogg": "ogg",
    ".opus": "ogg",
    ".oga": "ogg",
    ".mp3": "mp3",
    ".m4a": "ipod",
    ".aac": "adts",
    ".wav": "wav",
    ".flac": "flac",
    ".webm": "webm",
}
# Anything else (a video, say) is re-encoded as speech audio, like extract_audio does.
_SPEECH_CODECS = {
    ".ogg": ["-c:a", "libopus", "-b:a", "24k", "-application", "voip", "-f", "ogg"],
    ".mp3": ["-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"],
    ".m4a": ["-c:a", "aac", "-b:a", "32k", "-f", "ipod"],
}


@dataclass(frozen=True)
class Chunk:
    """Seconds [start_s, end_s) of the audio; neighbours overlap (see plan_chunks)."""

    index: int
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


# --------------------------------------------------------------------------- planning


def max_chunk_seconds(
    max_bytes: int, audio_bytes: int, duration_s: float, safety: float = 0.9
) -> float:
    """The longest chunk that fits `max_bytes` at the file's average bitrate, less a safety
    margin for variable bitrate and container overhead; inf when unknowable."""
    if audio_bytes <= 0 or duration_s <= 0 or not math.isfinite(duration_s):
        return math.inf
    return safety * max_bytes * duration_s / audio_bytes


def plan_chunks(
    duration_s: float,
    silences: Sequence[Interval],
    *,
    max_chunk_s: float,
    overlap_s: float = 2.0,
    search_s: float = 60.0,
) -> list[Chunk]:
    """Chunks covering [0, duration_s], none longer than `max_chunk_s`.

    Each cut point sits in a silence near the ideal cut (the latest one that holds the whole
    overlap, searching back up to `search_s`), else exactly at the ideal cut (a hard cut).
    Chunks reach `overlap_s / 2` past each cut point on both sides, so a word straddling a
    hard cut is whole in one of them; merge() then keeps each word from one side only.
    """
    if not (math.isfinite(duration_s) and duration_s >= 0):
        raise ValueError(f"duration must be a finite number >= 0, not {duration_s!r}")
    if not overlap_s >= 0 or not max_chunk_s > overlap_s:
        raise ValueError(f"max_chunk_s ({max_chunk_s}) must exceed overlap_s ({overlap_s})")
    if duration_s <= max_chunk_s:
        return [Chunk(0, 0.0, duration_s)]
    quiet = normalise(silences, duration_s)
    half = overlap_s / 2
    cuts: list[float] = []
    start, previous = 0.0, 0.0
    while duration_s - start > max_chunk_s:
        ideal = start + max_chunk_s - half
        # Never cut closer than half a chunk after the previous cut: progress, and no slivers.
        lo = max(ideal - search_s, previous + (ideal - previous) / 2)
        cut = _cut_in_silence(quiet, lo, ideal, overlap_s)
        cuts.append(cut)
        start, previous = cut - half, cut
    edges = [0.0, *cuts, duration_s]
    return [
        Chunk(
            i,
            0.0 if i == 0 else max(0.0, edges[i] - half),
            duration_s if i == len(cuts) else min(duration_s, edges[i + 1] + half),
        )
        for i in range(len(cuts) + 1)
    ]


def _cut_in_silence(quiet: Sequence[Interval], lo: float, hi: float, overlap_s: float) -> float:
    best: tuple[float, float] | None = None
    for s in quiet:
        a, b = max(s.start, lo), min(s.end, hi)
        if b <= a:
            continue
        # The silence's own middle when allowed, else the allowed point nearest to it.
        point = min(max((s.start + s.end) / 2, a), b)
        # Prefer silences that hold the whole overlap, then the latest (fewest chunks).
        score = (min(b - a, overlap_s), point)
        if best is None or score > best:
            best = score
    return best[1] if best is not None else hi


def cut_points(chunks: Sequence[Chunk]) -> list[float]:
    """Where merge() switches from one chunk to the next: the middle of each overlap."""
    ordered = sorted(chunks, key=lambda c: (c.start_s, c.end_s))
    return [(a.end_s + b.start_s) / 2 for a, b in itertools.pairwise(ordered)]


# --------------------------------------------------------------------------- merging


def _mid(start: float, end: float) -> float:
    return (start + end) / 2


def _join(words: Sequence[Word], text: str) -> str:
    # Scripts written without spaces (Chinese, Japanese) must not get them.
    glue = "" if len(words) > 1 and " " not in text.strip() else " "
    return glue.join(w.text.strip() for w in words)


def _segment_part(seg: Segment, kept: Sequence[Word], lo: float, hi: float) -> Segment | None:
    """What is left of `seg` in the chunk owning [lo, hi): the kept words (text rebuilt from
    them when some are gone), or for a segment without words, itself if its midpoint is in
    range; bounds clipped to the range, never cutting a kept word."""
    if seg.words:
        if not kept:
            return None
        if len(kept) < len(seg.words):
            return Segment(kept[0].start, kept[-1].end, _join(kept, seg.text), tuple(kept))
        start = max(seg.start, min(lo, kept[0].start))
        end = min(seg.end, max(hi, kept[-1].end))
        return Segment(start, max(start, end), seg.text, seg.words)
    if not lo <= _mid(seg.start, seg.end) < hi:
        return None
    start = max(seg.start, lo)
    return Segment(start, max(start, min(seg.end, hi)), seg.text)


# A chunk really starts and ends within a packet (<= 72 ms) of the plan: a word closer to
# its chunk's edge than this may have been clipped by it.
_EDGE_S = 0.1
WordRef = tuple[int, int]  # (segment index, word index) in one chunk's transcript


def _match(a: Word, b: Word) -> tuple[int, float] | None:
    """How likely two chunks' words are one word heard twice, as a sort key (lower is more
    likely): the same text within half a second, else covering half of the shorter one."""
    gap = abs(_mid(a.start, a.end) - _mid(b.start, b.end))
    if gap <= 0.5 and a.text.strip().casefold() == b.text.strip().casefold():
        return (0, gap)
    shorter = min(a.end - a.start, b.end - b.start)
    overlap = min(a.end, b.end) - max(a.start, b.start)
    if (shorter <= 0 and gap <= 0.05) or (shorter > 0 and overlap >= 0.5 * shorter):
        return (1, gap)
    return None


def _words_within(t: Transcript, lo: float, hi: float) -> list[tuple[WordRef, Word]]:
    return [
        ((si, wi), w)
        for si, seg in enumerate(t.segments)
        for wi, w in enumerate(seg.words)
        if lo <= _mid(w.start, w.end) <= hi
    ]


def _pairs(
    left: list[tuple[WordRef, Word]], right: list[tuple[WordRef, Word]]
) -> list[tuple[int, int]]:
    """Words both chunks heard in their overlap, matched one to one (likeliest pairs first,
    see _match), as indexes into `left` and `right`."""
    candidates = sorted(
        (key, i, k)
        for i, (_, a) in enumerate(left)
        for k, (_, b) in enumerate(right)
        if (key := _match(a, b)) is not None
    )
    used_left: set[int] = set()
    used_right: set[int] = set()
    out = []
    for _, i, k in candidates:
        if i not in used_left and k not in used_right:
            used_left.add(i)
            used_right.add(k)
            out.append((i, k))
    return out


def _settle_overlap(
    a: Chunk,
    b: Chunk,
    ta: Transcript,
    tb: Transcript,
    keep_a: dict[WordRef, bool],
    keep_b: dict[WordRef, bool],
) -> None:
    """Correct the midpoint rule where chunks a and b (a before b) overlap.

    A word both heard is kept from the chunk where it lies farther from that chunk's edge:
    with equal timings this is the midpoint rule, but jitter between the chunks cannot
    double or drop it, and a version clipped by an edge loses to the whole one. A word only
    one chunk heard (nothing in the other chunk _match-es it), away from its chunk's edge,
    is kept: the other chunk missed it."""
    # The overlap, widened a little: a word's two versions may straddle its edges.
    lo, hi = b.start_s - 0.5, a.end_s + 0.5
    left, right = _words_within(ta, lo, hi), _words_within(tb, lo, hi)
    paired_left: set[int] = set()
    paired_right: set[int] = set()
    for i, k in _pairs(left, right):
        (lref, x), (rref, y) = left[i], right[k]
        from_a = a.end_s - x.end > y.start - b.start_s
        keep_a[lref], keep_b[rref] = from_a, not from_a
        paired_left.add(i)
        paired_right.add(k)
    # Only words near the overlap can _match one in it.
    near_a = [w for _, w in _words_within(ta, lo - 2.0, hi + 2.0)]
    near_b = [w for _, w in _words_within(tb, lo - 2.0, hi + 2.0)]
    for mine, theirs, paired, keep, is_left in (
        (left, near_b, paired_left, keep_a, True),
        (right, near_a, paired_right, keep_b, False),
    ):
        for i, (ref, x) in enumerate(mine):
            # A word touching its own chunk's edge may be a clipped fragment: not lonely.
            margin = a.end_s - x.end if is_left else x.start - b.start_s
            if i in paired or margin < _EDGE_S:
                continue
            if all(_match(x, y) is None for y in theirs):
                keep[ref] = True


def merge(chunks: Sequence[tuple[Chunk, Transcript]]) -> Transcript:
    """One transcript from per-chunk transcripts whose times are relative to their chunk.

    Times are shifted by each chunk's start; each overlap is split at its middle (the cut
    point plan_chunks chose), and every word or word-less segment is kept only from the
    chunk on whose side its midpoint falls (see _settle_overlap for words both chunks
    heard, or only one). A segment cut by that line keeps its own words, and its text is
    rebuilt from them.
    """
    if not chunks:
        return Transcript(None, 0.0, (), {"chunks": 0, "billed_s": 0.0})
    ordered = sorted(chunks, key=lambda ct: (ct[0].start_s, ct[0].end_s))
    cuts = cut_points([c for c, _ in ordered])
    shifted = [t.shifted(c.start_s) for c, t in ordered]
    bounds = [
        (cuts[i - 1] if i > 0 else -math.inf, cuts[i] if i < len(cuts) else math.inf)
        for i in range(len(ordered))
    ]
    keep: list[dict[WordRef, bool]] = [
        {ref: lo <= _mid(w.start, w.end) < hi for ref, w in _words_within(t, -math.inf, math.inf)}
        for t, (lo, hi) in zip(shifted, bounds, strict=True)
    ]
    for i in range(1, len(ordered)):
        _settle_overlap(
            ordered[i - 1][0], ordered[i][0], shifted[i - 1], shifted[i], keep[i - 1], keep[i]
        )

    segments: list[Segment] = []
    languages: dict[str, float] = {}  # seconds spoken in each
    for i, ((chunk, original), t) in enumerate(zip(ordered, shifted, strict=True)):
        if original.language:
            languages[original.language] = (
                languages.get(original.language, 0.0) + chunk.duration_s + 1e-9
            )
        for si, seg in enumerate(t.segments):
            kept = [w for wi, w in enumerate(seg.words) if keep[i][(si, wi)]]
            piece = _segment_part(seg, kept, *bounds[i])
            if piece is not None:
                segments.append(piece)
    segments.sort(key=lambda s: (s.start, s.end))
    first = ordered[0][1].meta
    meta: dict[str, Any] = {k: first[k] for k in ("provider", "model") if k in first}
    meta["chunks"] = len(ordered)
    meta["billed_s"] = round(sum(c.duration_s for c, _ in ordered), 3)
    language = max(languages, key=languages.__getitem__) if languages else None
    duration = max(c.end_s for c, _ in ordered)
    return Transcript(language, duration, tuple(segments), meta)


# --------------------------------------------------------------------------- cutting


def chunk_cut_args(src: Path, dst: Path, start_s: float, end_s: float) -> list[str]:
    """ffmpeg arguments writing [start_s, end_s) of src's first audio track to dst: a stream
    copy when dst's suffix is an audio container (then it must match src's codec), else a
    re-encode as speech audio (.ogg/.mp3/.m4a, see audio_suffix)."""
    pre = max(0.0, start_s - _PRESEEK_S)
    args = ["-ss", f"{pre:.3f}", "-i", f"file:{src}", "-ss", f"{start_s - pre:.3f}"]
    args += ["-t", f"{max(0.0, end_s - start_s):.3f}", "-map", "0:a:0", "-vn", "-sn", "-dn"]
    suffix = dst.suffix.lower()
    if suffix in _COPY_MUXERS and suffix == src.suffix.lower():
        args += ["-c", "copy", "-map_metadata", "-1", "-f", _COPY_MUXERS[suffix]]
    elif suffix in _SPEECH_CODECS:
        args += ["-ac", "1", "-ar", "16000", "-map_metadata", "-1", *_SPEECH_CODECS[suffix]]
    else:
        raise ValueError(f"{dst.name}: cannot write a chunk with this suffix")
    # Bit-exact: no random Ogg serial numbers or version tags, so a chunk cut twice (a retry,
    # a restart) is the same bytes.
    return [*args, "-fflags", "+bitexact", f"file:{dst}"]


def _chunk_suffix(tools: FFmpegTools, audio: Path) -> str:
    suffix = audio.suffix.lower()
    return suffix if suffix in _COPY_MUXERS else audio_suffix(tools)


# --------------------------------------------------------------------------- transcribing


@dataclass
class _Job:
    tools: FFmpegTools
    audio: Path
    transcriber: Transcriber
    language: str | None
    prompt: str | None
    workdir: Path
    suffix: str
    silences: list[Interval]
    overlap_s: float
    max_bytes: int | None

    def run(self, chunk: Chunk, depth: int = 0) -> list[tuple[Chunk, Transcript]]:
        """Transcribe one chunk; one that turns out too large is split and its pieces
        returned in order (their overlaps line up with the neighbours' as before)."""
        name = f"chunk-{chunk.index:04d}-{depth}-{round(chunk.start_s * 1000):010d}{self.suffix}"
        path = self.workdir / name
        refused: AudioTooLarge | None = None
        try:
            args = chunk_cut_args(self.audio, path, chunk.start_s, chunk.end_s)
            try:
                run_ffmpeg(self.tools, args, duration_s=chunk.duration_s, timeout=CUT_TIMEOUT_S)
            except MediaError as exc:
                raise MediaError(f"{self.audio}: chunk {chunk.index}: {exc.message}") from None
            size = path.stat().st_size
            if self.max_bytes is not None and size > self.max_bytes:
                # Variable bitrate: this stretch is denser than the file's average.
                refused = AudioTooLarge(provider=self.transcriber.name, size_bytes=size)
            else:
                try:
                    transcript = self.transcriber.transcribe(
                        path, language=self.language, prompt=self.prompt
                    )
                except AudioTooLarge as exc:
                    refused = exc
                else:
                    return [(chunk, _fill_untimed(transcript, chunk.duration_s))]
        finally:
            path.unlink(missing_ok=True)
        return self._split(chunk, depth, refused)

    def _split(
        self, chunk: Chunk, depth: int, refused: AudioTooLarge
    ) -> list[tuple[Chunk, Transcript]]:
        if chunk.duration_s / 2 <= max(MIN_CHUNK_S, self.overlap_s):
            raise refused
        log.info("%s: chunk %d too large (%s): splitting it", self.audio.name, chunk.index, refused)
        local = [
            Interval(s.start - chunk.start_s, s.end - chunk.start_s)
            for s in self.silences
            if s.end > chunk.start_s and s.start < chunk.end_s
        ]
        parts = plan_chunks(
            chunk.duration_s,
            local,
            max_chunk_s=chunk.duration_s / 2 + self.overlap_s,
            overlap_s=self.overlap_s,
        )
        out: list[tuple[Chunk, Transcript]] = []
        for part in parts:
            sub = Chunk(chunk.index, chunk.start_s + part.start_s, chunk.start_s + part.end_s)
            out += self.run(sub, depth + 1)
        return out


def _fill_untimed(transcript: Transcript, duration_s: float) -> Transcript:
    # A plain-JSON answer (no timestamps) parses as one segment at 0..0; spread it over the
    # chunk, or merge() would hand it to the previous chunk.
    segs = transcript.segments
    if len(segs) == 1 and not segs[0].words and segs[0].end <= 0:
        seg = Segment(0.0, duration_s, segs[0].text)
        return Transcript(transcript.language, duration_s, (seg,), dict(transcript.meta))
    return transcript


def _annotate(transcript: Transcript, duration_s: float, name: str) -> Transcript:
    meta = {"provider": name, **transcript.meta, "chunks": 1, "billed_s": round(duration_s, 3)}
    return Transcript(transcript.language, duration_s, transcript.segments, meta)


def _transcribe_whole(
    transcriber: Transcriber,
    audio: Path,
    language: str | None,
    prompt: str | None,
    progress: Progress | None,
) -> Transcript:
    if progress is not None and isinstance(transcriber, ReportsProgress):
        return transcriber.transcribe_reporting(
            audio, language=language, prompt=prompt, progress=progress
        )
    return transcriber.transcribe(audio, language=language, prompt=prompt)


def transcribe_audio(
    tools: FFmpegTools,
    audio: Path,
    transcriber: Transcriber,
    *,
    language: str | None,
    prompt: str | None,
    concurrency: int = 4,
    workdir: Path,
    progress: Progress | None = None,
    max_chunk_s: float | None = None,
    overlap_s: float = 2.0,
    silences: Sequence[Interval] | None = None,
) -> Transcript:
    """Transcribe `audio` (what extract_audio wrote, or any audio file) with `transcriber`.

    A file within the provider's upload limit (and `max_chunk_s`, when given: set it to
    transcribe a long file in parallel pieces) goes up in one request. Otherwise chunks are
    planned at silences (`silences` if the caller has them, in this file's time, else
    detected), stream-copied into `workdir` (deleted afterwards) and transcribed
    `concurrency` at a time; a chunk the provider still refuses as too large is split again.
    progress(fraction done) is called from this thread: of the audio, for a transcriber
    that reports it (ReportsProgress) on one request, else of the chunks. The first failure
    cancels the chunks not yet started and is raised.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, not {concurrency}")
    info = probe(tools, audio)
    limit = transcriber.max_upload_bytes
    fits = limit is None or info.size_bytes <= limit
    if fits and (max_chunk_s is None or info.duration_s <= max_chunk_s):
        try:
            single = _transcribe_whole(transcriber, audio, language, prompt, progress)
        except AudioTooLarge:
            # The provider's real limit is below what we were told: halve until it fits.
            limit = info.size_bytes // 2
            log.info("%s refused %s as too large; chunking", transcriber.name, audio.name)
        else:
            if progress is not None:
                progress(1.0)
            whole = _fill_untimed(single, info.duration_s)
            return _annotate(whole, info.duration_s, transcriber.name)

    by_size = math.inf
    if limit is not None:
        by_size = max_chunk_seconds(limit, info.size_bytes, info.duration_s)
        if by_size <= max(MIN_CHUNK_S, overlap_s):
            raise AudioTooLarge(provider=transcriber.name, size_bytes=info.size_bytes)
    cap = min(by_size, max_chunk_s or math.inf, info.duration_s)
    if silences is None:
        silences = detect_silence(
            tools, audio, noise_db=SILENCE_NOISE_DB, min_silence_s=SILENCE_MIN_S
        )
    chunks = plan_chunks(info.duration_s, silences, max_chunk_s=cap, overlap_s=overlap_s)
    log.info(
        "%s: %.0f s in %d chunks of at most %.0f s, %d at a time",
        audio.name,
        info.duration_s,
        len(chunks),
        cap,
        concurrency,
    )
    workdir.mkdir(parents=True, exist_ok=True)
    job = _Job(
        tools,
        audio,
        transcriber,
        language,
        prompt,
        workdir,
        _chunk_suffix(tools, audio),
        list(silences),
        overlap_s,
        limit,
    )
    results: dict[int, list[tuple[Chunk, Transcript]]] = {}
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="transcribe") as pool:
        pending: dict[Future[list[tuple[Chunk, Transcript]]], Chunk] = {
            pool.submit(job.run, chunk): chunk for chunk in chunks
        }
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    chunk = pending.pop(future)
                    results[chunk.index] = future.result()
                if progress is not None:
                    progress(len(results) / len(chunks))
        finally:
            for future in pending:
                future.cancel()
    pieces = [piece for index in sorted(results) for piece in results[index]]
    merged = merge(pieces)
    meta = {"provider": transcriber.name, **merged.meta}
    return Transcript(merged.language, info.duration_s, merged.segments, meta)
