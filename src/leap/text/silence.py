"""Drop what a transcriber wrote over silence: Whisper invents words ("Thank you for
watching.") on non-speech, and an API gives no switch against it. Pure: a transcript and the
silences ffmpeg heard in the same audio go in; the kept transcript and what went, and why,
come out."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from leap.media.trim_plan import Interval
from leap.text.transcript import Segment, Transcript, Word

__all__ = [
    "GUARD_S",
    "MAX_DROP_FRACTION",
    "Dropped",
    "Filtered",
    "drop_in_silence",
    "inner_silences",
]

# Providers time words and segments loosely near speech (a word's end runs on into the pause,
# the next one starts early): only what lies this far inside a silence counts as in it.
GUARD_S = 0.25
# Hallucinations are a few short phrases. When more of the text than this lies in "silence",
# and more than a few phrases' worth, the speech is quieter than the silence threshold (a far
# microphone), not invented: nothing is dropped. Measured in characters, which every script
# has; a short clip's one "Thank you for watching." is still dropped.
MAX_DROP_FRACTION = 0.3
MIN_REFUSE_CHARS = 200
# Scripts written without spaces between words: their words are joined with nothing.
_UNSPACED = frozenset({"zh", "yue", "ja", "th", "lo", "km", "my", "bo"})


@dataclass(frozen=True)
class Dropped:
    """A segment or a word that lay inside `silence` (the silence as detected, not guarded)."""

    kind: str  # "segment" | "word"
    start: float
    end: float
    text: str
    silence: Interval


@dataclass(frozen=True)
class Filtered:
    """The transcript to keep, what was dropped from it, and why nothing was when that is
    the case (`refused`; then `transcript` is the input and `dropped` what would have gone)."""

    transcript: Transcript
    dropped: tuple[Dropped, ...]
    refused: str | None = None

    @property
    def segments_dropped(self) -> int:
        return sum(1 for d in self.dropped if d.kind == "segment")

    @property
    def words_dropped(self) -> int:
        return sum(1 for d in self.dropped if d.kind == "word")


def inner_silences(
    silences: Iterable[Interval], duration_s: float, *, guard_s: float = GUARD_S
) -> list[tuple[Interval, Interval]]:
    """(detected, guarded) pairs: each silence merged with its neighbours and shrunk by
    `guard_s` on every side that borders speech. A side at the audio's edge is not shrunk but
    opened to infinity: a provider may time a hallucination past the end of the file or clip
    it to the end, and nothing was said there either way. Silences too short to keep anything
    after the guard are left out."""
    if not (math.isfinite(guard_s) and guard_s >= 0):
        raise ValueError(f"guard must be a finite number >= 0, not {guard_s!r}")
    spans = sorted(
        (s.start, s.end)
        for s in silences
        if math.isfinite(s.start) and math.isfinite(s.end) and s.end > s.start
    )
    merged: list[list[float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out: list[tuple[Interval, Interval]] = []
    for start, end in merged:
        lo = -math.inf if start <= guard_s else start + guard_s
        hi = math.inf if duration_s > 0 and end >= duration_s - guard_s else end - guard_s
        if lo < hi:
            out.append((Interval(start, end), Interval(lo, hi)))
    return out


def _container(
    start: float, end: float, spans: Sequence[tuple[Interval, Interval]]
) -> Interval | None:
    """The detected silence whose guarded span holds [start, end] whole, if any."""
    for detected, guarded in spans:
        if guarded.start <= start and end <= guarded.end:
            return detected
    return None


def drop_in_silence(
    transcript: Transcript,
    silences: Iterable[Interval],
    *,
    guard_s: float = GUARD_S,
    max_fraction: float = MAX_DROP_FRACTION,
) -> Filtered:
    """`transcript` without the segments and words that lie entirely inside a silence.

    `silences` must be in the transcript's time base (seconds from the start of the audio it
    was made from). A segment inside a silence goes with its words. In a segment that stays,
    a word inside a silence goes; the segment then spans, and reads as, the words it kept (a
    provider often glues "Thank you." onto the last real sentence). A segment that loses every
    word goes too. Whatever only touches or crosses a silence stays: a real word is never cut
    for loose timing. Times and everything else are unchanged.

    When the dropped text would be more than `max_fraction` of all of it (and more than
    MIN_REFUSE_CHARS characters), nothing is dropped and `refused` says why: the threshold,
    not the provider, is wrong for this recording.
    """
    spans = inner_silences(silences, transcript.duration_s, guard_s=guard_s)
    if not spans:
        return Filtered(transcript, ())
    joiner = "" if (transcript.language or "") in _UNSPACED else " "
    kept: list[Segment] = []
    dropped: list[Dropped] = []
    for seg in transcript.segments:
        where = _container(seg.start, seg.end, spans)
        if where is not None:
            dropped.append(Dropped("segment", seg.start, seg.end, seg.text, where))
            continue
        words: list[Word] = []
        lost: list[Dropped] = []
        for w in seg.words:
            inside = _container(w.start, w.end, spans)
            if inside is None:
                words.append(w)
            else:
                lost.append(Dropped("word", w.start, w.end, w.text, inside))
        if not lost:
            kept.append(seg)
        elif not words:
            silence = lost[0].silence
            dropped.append(Dropped("segment", seg.start, seg.end, seg.text, silence))
        else:
            dropped.extend(lost)
            kept.append(
                Segment(
                    min(w.start for w in words),
                    max(w.end for w in words),
                    joiner.join(w.text for w in words),
                    tuple(words),
                )
            )
    if not dropped:
        return Filtered(transcript, ())
    total = sum(len(seg.text) for seg in transcript.segments)
    gone = sum(len(d.text) for d in dropped)
    if gone > MIN_REFUSE_CHARS and gone > max_fraction * total:
        return Filtered(
            transcript,
            tuple(dropped),
            refused=f"{gone / total:.0%} of the text lies in silence (more than "
            f"{max_fraction:.0%}): the speech is quieter than the silence threshold; "
            "nothing dropped",
        )
    return Filtered(replace(transcript, segments=tuple(kept)), tuple(dropped))
