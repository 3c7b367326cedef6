"""Snapping topics to sentence boundaries and checking them against YouTube's chapter rules."""

from __future__ import annotations

import bisect
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from leap.text.topics.languages import INTRO, lang_code
from leap.text.topics.model import (
    LEAD_IN_S,
    LONG_SEGMENT_S,
    MIN_CHAPTER_S,
    MIN_CHAPTERS,
    SENTENCE_END,
    RawTopic,
    Topic,
    Topics,
)
from leap.text.topics.times import chapter_stamp, clean_themes, clean_title, transcript_duration
from leap.text.transcript import Transcript


def boundaries(transcript: Transcript) -> list[float]:
    """Where a topic may start: every spoken segment's start, and inside long segments with
    word timings, every sentence's first word."""
    out: set[float] = set()
    for seg in transcript.segments:
        if not seg.text.strip():
            continue
        out.add(max(0.0, seg.start))
        if seg.end - seg.start > LONG_SEGMENT_S and seg.words:
            for prev, word in itertools.pairwise(seg.words):
                if prev.text.strip().endswith(SENTENCE_END) and word.text.strip():
                    out.add(max(0.0, word.start))
    return sorted(out)


def _nearest(sorted_points: list[float], value: float) -> float:
    i = bisect.bisect_left(sorted_points, value)
    around = sorted_points[max(0, i - 1) : i + 1]
    return min(around, key=lambda p: (abs(p - value), p))


def number_duplicates(topics: list[Topic]) -> list[Topic]:
    seen: Counter[str] = Counter()
    out = []
    for topic in topics:
        seen[topic.title.casefold()] += 1
        n = seen[topic.title.casefold()]
        out.append(topic if n == 1 else Topic(topic.start, f"{topic.title} ({n})"))
    return out


def snap(
    raw_topics: Iterable[RawTopic], transcript: Transcript, *, min_gap_s: float = MIN_CHAPTER_S
) -> list[Topic]:
    """Topics at real places in the transcript, whatever times the model made up.

    Drops negative starts and those at or past the end (or within `min_gap_s` of it), moves
    each start to the nearest segment start (see `boundaries`) rounded down to a whole second,
    sorts, and drops a topic closer than `min_gap_s` to the one before it (the earlier title
    wins, at equal times the one listed first). A title repeating the previous one is merged
    into it; a repeat further away is numbered ("Questions (2)")."""
    duration = transcript_duration(transcript)
    points = boundaries(transcript)
    placed: list[tuple[float, int, str]] = []
    for index, (start, title) in enumerate(raw_topics):
        name = clean_title(title)
        if not name or not math.isfinite(start) or start < 0 or start >= duration:
            continue
        at = float(math.floor(_nearest(points, start) if points else start))
        if at > 0 and at > duration - min_gap_s:
            continue
        placed.append((at, index, name))
    placed.sort()
    kept: list[Topic] = []
    for at, _, name in placed:
        if kept and (
            at - kept[-1].start < min_gap_s or kept[-1].title.casefold() == name.casefold()
        ):
            continue
        kept.append(Topic(at, name))
    return number_duplicates(kept)


def intro_title(language: str | None) -> str:
    return INTRO.get(lang_code(language) or "", INTRO["en"])


def anchor_start(
    topics: list[Topic], *, language: str | None, lead_in_s: float = LEAD_IN_S
) -> list[Topic]:
    """Make the first topic start at 0:00, as chapters require: a first topic within
    `lead_in_s` of the start moves there (what precedes it is its lead-in); a later one gets a
    localized "Introduction" chapter before it, since that stretch is something else."""
    if not topics or topics[0].start <= 0:
        return list(topics)
    first = topics[0]
    if first.start <= lead_in_s:
        return [Topic(0.0, first.title), *topics[1:]]
    return [Topic(0.0, intro_title(language)), *topics]


def chapters_check(topics: Sequence[Topic], duration_s: float) -> tuple[bool, str | None]:
    """Whether YouTube would show these topics as chapters, and why not (§2.9)."""
    if len(topics) < MIN_CHAPTERS:
        return False, f"only {len(topics)} topic(s); YouTube chapters need at least {MIN_CHAPTERS}"
    starts = [math.floor(t.start) for t in topics]
    if starts[0] != 0:
        return False, f"the first chapter starts at {chapter_stamp(starts[0])}, not 0:00"
    for i, topic in enumerate(topics):
        if not topic.title.strip():
            return False, f"chapter {i + 1} has no title"
        if i and starts[i] <= starts[i - 1]:
            return (
                False,
                f"chapter {i + 1} ({chapter_stamp(starts[i])}) is not after the one before",
            )
    for i, topic in enumerate(topics):
        end = starts[i + 1] if i + 1 < len(topics) else duration_s
        if end - starts[i] < MIN_CHAPTER_S:
            return False, (
                f"chapter {i + 1} ({chapter_stamp(starts[i])} {topic.title!r}) is shorter "
                f"than {MIN_CHAPTER_S:.0f} s"
            )
    return True, None


def _thin(raw: list[Topic], limit: int) -> list[Topic]:
    """At most `limit` topics spread evenly over the list, the first one kept."""
    if len(raw) <= limit:
        return raw
    if limit <= 0:
        return []
    step = len(raw) / limit
    return [raw[math.floor(i * step)] for i in range(limit)]


def finalize(
    themes: Iterable[Any],
    raw_topics: Iterable[RawTopic],
    transcript: Transcript,
    provider: str,
    *,
    language: str | None = None,
    min_gap_s: float = MIN_CHAPTER_S,
    max_topics: int | None = None,
) -> Topics:
    """Snap, keep at most `max_topics` spread evenly, anchor at 0:00 and check: the Topics
    of a recording."""
    lang = language or transcript.language
    snapped = snap(raw_topics, transcript, min_gap_s=min_gap_s)
    if max_topics is not None:
        snapped = _thin(snapped, max_topics)
    topics = anchor_start(snapped, language=lang)
    ok, reason = chapters_check(topics, transcript_duration(transcript))
    return Topics(clean_themes(themes), topics, ok, reason, provider)
