"""Windows of a transcript and the map and reduce prompts sent over them."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence

from leap.text.topics.languages import language_phrase
from leap.text.topics.model import Partial
from leap.text.topics.times import hms
from leap.text.transcript import Transcript


def _pieces(text: str, start: float, end: float, limit: int) -> Iterator[tuple[float, float, str]]:
    """`text` cut at spaces into pieces of at most `limit` characters, times interpolated by
    character position (a provider may put a whole lecture into one segment)."""
    words: list[str] = []
    for word in text.split():
        while len(word) > limit:  # a "word" longer than a window: cut it, it rarely matters
            words.append(word[:limit])
            word = word[limit:]
        if word:
            words.append(word)
    chunks: list[str] = []
    current = ""
    for word in words:
        if current and len(current) + 1 + len(word) > limit:
            chunks.append(current)
            current = ""
        current = f"{current} {word}" if current else word
    if current:
        chunks.append(current)
    span = max(0.0, end - start)
    total = sum(len(c) + 1 for c in chunks)
    pos = 0
    for chunk in chunks:
        a = start + span * pos / total
        pos += len(chunk) + 1
        yield a, start + span * pos / total, chunk


def _units(transcript: Transcript, limit: int) -> Iterator[tuple[float, float, str]]:
    for seg in transcript.segments:
        text = " ".join(seg.text.split())
        if not text:
            continue
        if len(text) <= limit:
            yield seg.start, seg.end, text
        else:
            yield from _pieces(text, seg.start, seg.end, limit)


def windows(transcript: Transcript, *, max_chars: int) -> list[tuple[float, float, str]]:
    """The transcript as `[HH:MM:SS] text` lines, cut into windows of at most `max_chars`
    characters of about equal size; each is (start, end, text)."""
    if max_chars < 100:
        raise ValueError("max_chars must be at least 100")
    stamp = len("[00:00:00] ")
    lines = [
        (a, b, f"[{hms(a)}] {text}") for a, b, text in _units(transcript, max_chars - stamp - 1)
    ]
    if not lines:
        return []
    total = sum(len(line) + 1 for _, _, line in lines)
    # Equal shares, so the last window is not a sliver that the model can't make sense of.
    target = total / math.ceil(total / max_chars)
    out: list[tuple[float, float, str]] = []
    current: list[tuple[float, float, str]] = []
    size = 0
    for item in lines:
        grow = len(item[2]) + 1
        if current and (size + grow > max_chars or size >= target):
            out.append((current[0][0], current[-1][1], "\n".join(x[2] for x in current)))
            current, size = [], 0
        current.append(item)
        size += grow
    out.append((current[0][0], current[-1][1], "\n".join(x[2] for x in current)))
    return out


_EXAMPLE = json.dumps(
    {
        "themes": ["time series", "ARIMA models"],
        "topics": [
            {"start": "00:00:00", "title": "Course overview and grading"},
            {"start": "00:12:40", "title": "Stationarity and differencing"},
        ],
    },
    ensure_ascii=False,
)

_MAP_SYSTEM = (
    "You turn transcripts of lectures and meetings into a table of contents. "
    "Reply with one JSON object and nothing else, shaped like this example:\n" + _EXAMPLE
)

_REDUCE_SYSTEM = (
    "You merge the partial tables of contents of consecutive excerpts of one recording into "
    "a single table of contents. Reply with one JSON object and nothing else, shaped like "
    "this example:\n" + _EXAMPLE
)


def _header(title: str | None, duration_s: float, language: str | None) -> list[str]:
    lines = []
    if title and title.strip():
        lines.append(f"Recording title: {' '.join(title.split())}")
    lines.append(f"Recording length: {hms(duration_s)}")
    lines.append(
        f"Write every theme and title in {language_phrase(language)}, "
        "the language of the recording."
    )
    return lines


def build_messages(
    window_text: str,
    *,
    language: str | None,
    duration_s: float,
    title: str | None,
    max_topics: int,
    span: tuple[float, float] | None = None,
) -> list[dict[str, str]]:
    """The chat messages asking for the themes and topics of one transcript window."""
    lines = _header(title, duration_s, language)
    if span is not None:
        lines.append(
            f"The transcript below is an excerpt covering {hms(span[0])}–{hms(span[1])}; "
            "other excerpts are handled separately."
        )
    lines += [
        "",
        "Task:",
        f'- "topics": the main topics in the order they are discussed, at most {max_topics}. '
        'Each "start" is the time of the transcript line where the topic begins, copied '
        'exactly from its [HH:MM:SS] prefix, in "HH:MM:SS" form. The first topic starts at '
        "the first line. A topic should span at least a few minutes; greetings, pauses and "
        "single remarks are not topics.",
        '- "title": a short, specific heading of 3 to 8 words (under 60 characters), without '
        "numbering, timestamps or quotes.",
        '- "themes": 3 to 7 key subjects or terms, as short noun phrases.',
        "Reply in JSON only.",
        "",
        "Transcript:",
        window_text.strip(),
    ]
    return [
        {"role": "system", "content": _MAP_SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
    ]


def build_reduce_messages(
    partials: Sequence[Partial],
    *,
    language: str | None,
    duration_s: float,
    title: str | None,
    max_topics: int,
) -> list[dict[str, str]]:
    """The chat messages merging the windows' answers (in time order) into the final one."""
    parts = {
        "parts": [
            {
                "themes": list(themes),
                "topics": [{"start": hms(start), "title": name} for start, name in topics],
            }
            for themes, topics in partials
        ]
    }
    lines = _header(title, duration_s, language)
    lines += [
        "",
        "Below, as JSON, are the themes and topics found in consecutive excerpts of the "
        "recording, in time order. Produce the final table of contents:",
        f'- "topics": at most {max_topics}, in time order. Use only "start" times that appear '
        "below, copied exactly. Merge neighbouring topics that are really one (keep the "
        "earliest start), especially where an excerpt boundary split a topic; drop trivial "
        "ones; titles stay short and specific (under 60 characters) and may be reworded.",
        '- "themes": the 3 to 8 most important themes of the whole recording.',
        "Reply in JSON only.",
        "",
        json.dumps(parts, ensure_ascii=False),
    ]
    return [
        {"role": "system", "content": _REDUCE_SYSTEM},
        {"role": "user", "content": "\n".join(lines)},
    ]
