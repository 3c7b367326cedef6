"""Subtitle cues from a transcript (readable line lengths, balanced line breaks, no overlaps) and
their SRT and WebVTT renderings."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from leap.text.transcript import Segment, Transcript

__all__ = ["Cue", "build_cues", "to_srt", "to_vtt"]

_SENTENCE_END = (".", "!", "?", "…", "。", "！", "？")
_CLAUSE_END = (",", ";", ":", "—", "–", "，", "、")
# A break after punctuation is worth lines this many characters less balanced.
_PUNCT_BONUS = 8
# A cue this short is unreadable, but a zero or negative one breaks players.
_MIN_VISIBLE_S = 0.2


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class _Token:
    start: float
    end: float
    text: str


def _segment_tokens(seg: Segment) -> list[_Token]:
    if seg.words:
        tokens = [
            _Token(w.start, max(w.start, w.end), " ".join(w.text.split()))
            for w in seg.words
            if w.text.strip()
        ]
        if tokens:
            return tokens
    words = seg.text.split()
    if not words:
        return []
    # No word timings: spread the words over the segment by their length.
    end = seg.end if seg.end > seg.start else seg.start + 0.3 * len(words)
    total = sum(len(w) + 1 for w in words)
    out: list[_Token] = []
    pos = 0
    for word in words:
        a = seg.start + (end - seg.start) * pos / total
        pos += len(word) + 1
        out.append(_Token(a, seg.start + (end - seg.start) * pos / total, word))
    return out


def _greedy_lines(words: Sequence[str], max_line: int) -> int:
    lines, width = 0, 0
    for word in words:
        if width and width + 1 + len(word) <= max_line:
            width += 1 + len(word)
        else:
            lines, width = lines + 1, len(word)
    return lines


def _layout(words: Sequence[str], max_line: int, max_lines: int) -> tuple[str, ...]:
    """The words in as few lines as fit, each line as close to the same length as possible,
    preferring breaks after punctuation and a shorter first line (bottom-heavy)."""
    count = min(max(1, _greedy_lines(words, max_line)), max_lines, len(words))
    if count == 1:
        return (" ".join(words),)
    best: tuple[tuple[int, int, int], tuple[str, ...]] | None = None
    for cuts in itertools.combinations(range(1, len(words)), count - 1):
        bounds = (0, *cuts, len(words))
        lines = tuple(" ".join(words[a:b]) for a, b in itertools.pairwise(bounds))
        over = sum(
            max(0, len(line) - max_line)
            for line, (a, b) in zip(lines, itertools.pairwise(bounds), strict=True)
            if b - a > 1  # a single over-long word can't be helped
        )
        punct = sum(line.endswith(_SENTENCE_END + _CLAUSE_END) for line in lines[:-1])
        score = (over, max(map(len, lines)) - _PUNCT_BONUS * punct, len(lines[0]))
        if best is None or score < best[0]:
            best = (score, lines)
    assert best is not None
    return best[1]


def _size(tokens: Sequence[_Token]) -> int:
    return sum(len(t.text) for t in tokens) + max(0, len(tokens) - 1)


def _backtrack(tokens: Sequence[_Token], least: float) -> int | None:
    """Where to cut a cue that is full: after its last sentence end, else its last clause end,
    provided at least `least` characters come before; None when there is no such place."""
    for ends in (_SENTENCE_END, _SENTENCE_END + _CLAUSE_END):
        for i in range(len(tokens) - 1, 0, -1):
            if tokens[i - 1].text.endswith(ends) and _size(tokens[:i]) >= least:
                return i
    return None


def _groups(
    tokens: list[_Token], max_line: int, max_lines: int, max_duration: float, pause_break: float
) -> Iterator[list[_Token]]:
    capacity = max_line * max_lines

    def fits(group: Sequence[_Token]) -> bool:
        return (
            _greedy_lines([t.text for t in group], max_line) <= max_lines
            and group[-1].end - group[0].start <= max_duration
        )

    current: list[_Token] = []
    for token in tokens:
        if current:
            prev, size = current[-1], _size(current)
            if (
                token.start - prev.end >= pause_break
                or (prev.text.endswith(_SENTENCE_END) and size >= capacity / 3)
                or (prev.text.endswith(_CLAUSE_END) and size >= capacity * 0.6)
            ):
                yield current
                current = []
            elif not fits([*current, token]):
                # Full: rather than strand the start of a sentence at the end of this cue,
                # cut after the last punctuation and carry the rest over.
                cut = _backtrack(current, capacity * 0.3)
                if cut is not None:
                    yield current[:cut]
                    current = current[cut:]
                if cut is None or not fits([*current, token]):
                    yield current
                    current = []
        current.append(token)
    if current:
        yield current


def build_cues(
    transcript: Transcript,
    *,
    max_line: int = 42,
    max_lines: int = 2,
    max_duration: float = 6.0,
    min_duration: float = 0.8,
    min_gap: float = 0.08,
    pause_break: float = 1.0,
) -> list[Cue]:
    """Cues of at most `max_lines` lines of `max_line` characters (a single longer word gets
    a line of its own), cut at pauses, sentence and clause ends, and `max_duration`.

    Word timings are used when the transcript has them; otherwise a segment's words are spread
    over its time. Each cue lasts at least `min_duration` unless the next one starts sooner,
    ends `min_gap` before the next one starts, and never has a zero or negative duration."""
    if max_line < 1 or max_lines < 1:
        raise ValueError("max_line and max_lines must be positive")
    tokens = [t for seg in transcript.segments for t in _segment_tokens(seg)]
    raw = [
        (
            group[0].start,
            max(t.end for t in group),
            _layout([t.text for t in group], max_line, max_lines),
        )
        for group in _groups(tokens, max_line, max_lines, max_duration, pause_break)
    ]
    cues: list[Cue] = []
    prev_end: float | None = None
    for i, (start, end, lines) in enumerate(raw):
        start = max(0.0, start)
        if prev_end is not None:
            start = max(start, prev_end + min_gap)
        end = min(max(end, start + min_duration), start + max(max_duration, min_duration))
        if i + 1 < len(raw):
            end = min(end, max(raw[i + 1][0] - min_gap, start + _MIN_VISIBLE_S))
        end = max(end, start + _MIN_VISIBLE_S)
        cues.append(Cue(round(start, 3), round(end, 3), lines))
        prev_end = round(end, 3)
    return cues


def _stamp(seconds: float, separator: str) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip: numbered blocks, `HH:MM:SS,mmm` times, a blank line between blocks."""
    blocks = []
    for number, cue in enumerate(cues, 1):
        # An arrow in the text could be taken for a timing line by a lenient parser.
        text = "\n".join(line.replace("-->", "->") for line in cue.lines)
        blocks.append(f"{number}\n{_stamp(cue.start, ',')} --> {_stamp(cue.end, ',')}\n{text}\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    # WebVTT cue text is markup: a bare & or < starts an entity or a tag, and "-->" is banned.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT: the `WEBVTT` header, `HH:MM:SS.mmm` times, text escaped as the spec requires."""
    blocks = ["WEBVTT\n"]
    for cue in cues:
        text = "\n".join(_vtt_escape(line) for line in cue.lines)
        blocks.append(f"{_stamp(cue.start, '.')} --> {_stamp(cue.end, '.')}\n{text}\n")
    return "\n".join(blocks)
