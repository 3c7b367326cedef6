"""Topics and YouTube chapters of a transcript: LLM prompts and tolerant answer parsing, timestamp
snapping and chapter validation, map-reduce over long transcripts, and an offline provider."""

from __future__ import annotations

import bisect
import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from leap.errors import LeapError
from leap.providers.llm import Usage
from leap.transcript import Segment, Transcript

__all__ = [
    "ChatJSON",
    "Partial",
    "RawTopic",
    "Topic",
    "Topics",
    "TopicsParseError",
    "anchor_start",
    "boundaries",
    "build_messages",
    "build_reduce_messages",
    "chapter_stamp",
    "chapters_check",
    "clean_themes",
    "clean_title",
    "extract_with_llm",
    "finalize",
    "hms",
    "parse_answer",
    "parse_time",
    "section_titles",
    "simple_topics",
    "snap",
    "transcript_duration",
    "windows",
]

RawTopic = tuple[float, str]
Partial = tuple[list[str], list[RawTopic]]

# YouTube (API_CONTRACTS §2.9): at least 3 chapters, the first at 0:00, each at least 10 s.
MIN_CHAPTERS = 3
MIN_CHAPTER_S = 10.0
# A first topic starting this close to 0:00 is moved there; a later one gets an intro before it.
LEAD_IN_S = 30.0
MAX_TITLE_CHARS = 100
MAX_THEMES = 10
# Inside a segment longer than this, sentence starts (from word timings) are snap targets too.
_LONG_SEGMENT_S = 30.0
_SENTENCE_END = (".", "!", "?", "…", "。", "！", "？")


class TopicsParseError(LeapError):
    """The LLM's answer holds no usable themes or topics."""


class ChatJSON(Protocol):
    def complete_json(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = ...
    ) -> tuple[dict[str, Any], Usage]: ...


@dataclass(frozen=True)
class Topic:
    start: float
    title: str


@dataclass(frozen=True)
class Topics:
    themes: list[str]
    topics: list[Topic]
    chapters_ok: bool
    chapters_reason: str | None
    provider: str

    def to_json(self) -> dict[str, Any]:
        """The `leap topics show --json` shape (CLI.md)."""
        return {
            "themes": list(self.themes),
            "topics": [{"start": t.start, "title": t.title} for t in self.topics],
            "chapters_ok": self.chapters_ok,
            "chapters_reason": self.chapters_reason,
        }

    def to_storage(self) -> dict[str, Any]:
        return {**self.to_json(), "provider": self.provider}

    @classmethod
    def from_storage(cls, data: dict[str, Any]) -> Topics:
        return cls(
            [str(t) for t in data.get("themes", [])],
            [Topic(float(t["start"]), str(t["title"])) for t in data.get("topics", [])],
            bool(data.get("chapters_ok")),
            data.get("chapters_reason"),
            str(data.get("provider") or ""),
        )

    def chapter_lines(self) -> list[str]:
        """`0:00 Title` lines for a YouTube description (valid only when chapters_ok)."""
        return [f"{chapter_stamp(t.start)} {t.title}" for t in self.topics]


# ---------------------------------------------------------------------------------------------
# Times and text


def hms(seconds: float) -> str:
    """`HH:MM:SS`, rounded down: the form the prompts show and ask for."""
    total = max(0, math.floor(seconds))
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def chapter_stamp(seconds: float) -> str:
    """YouTube's chapter form: `0:00`, `12:05`, `1:02:45`."""
    total = max(0, math.floor(seconds))
    h, m, s = total // 3600, total % 3600 // 60, total % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


_CLOCK = re.compile(r"(?:(\d{1,3}):)?(\d{1,4}):(\d{1,2}(?:[.,]\d+)?)")


def parse_time(value: Any) -> float | None:
    """Seconds from `HH:MM:SS`, `H:MM:SS`, `MM:SS` (optionally with a fraction or in
    brackets), a number, or a numeric string; None when it is none of these."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    if not isinstance(value, str):
        return None
    text = value.strip().strip("[]()").strip()
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        pass
    else:
        return number if math.isfinite(number) else None
    match = _CLOCK.fullmatch(text)
    if match is None:
        return None
    hours, minutes, secs = (
        match.group(1),
        int(match.group(2)),
        float(match.group(3).replace(",", ".")),
    )
    if secs >= 60:
        return None
    if hours is not None:
        if minutes >= 60:
            return None
        return int(hours) * 3600 + minutes * 60 + secs
    return minutes * 60 + secs


_LEADING_STAMP = re.compile(r"^[\[(]?\d{1,2}(?::\d{2}){1,2}[\])]?\s*[-–—:.|]?\s*")
_LEADING_NUMBER = re.compile(r"^(?:\d{1,2}[.)]|[-*•·]|#+)\s+")
_QUOTES = "\"'«»“”„`"


def clean_title(text: Any) -> str:
    """One line, no leading timestamp, numbering, bullet or quotes, at most 100 characters."""
    if not isinstance(text, str):
        return ""
    title = " ".join(text.split())
    title = _LEADING_STAMP.sub("", title)
    title = _LEADING_NUMBER.sub("", title)
    title = title.strip().strip(_QUOTES).strip()
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1].rstrip() + "…"
    return title


def clean_themes(themes: Iterable[Any], limit: int = MAX_THEMES) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for raw in themes:
        theme = clean_title(raw).lstrip("#").strip() if isinstance(raw, str) else ""
        if theme and theme.casefold() not in seen:
            seen.add(theme.casefold())
            out.append(theme)
    return out[:limit]


def transcript_duration(transcript: Transcript) -> float:
    """The recording's length: the stated duration, or the last segment's end if later."""
    last = max((s.end for s in transcript.segments), default=0.0)
    return max(transcript.duration_s, last, 0.0)


# ---------------------------------------------------------------------------------------------
# Languages


_LANGUAGES = {
    "ar": "Arabic", "be": "Belarusian", "cs": "Czech", "de": "German", "en": "English",
    "es": "Spanish", "fr": "French", "hi": "Hindi", "it": "Italian", "ja": "Japanese",
    "kk": "Kazakh", "ko": "Korean", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese",
    "ru": "Russian", "tr": "Turkish", "uk": "Ukrainian", "uz": "Uzbek", "zh": "Chinese",
}  # fmt: skip
_CODES = {name.lower(): code for code, name in _LANGUAGES.items()}
_INTRO = {
    "ru": "Вступление", "uk": "Вступ", "be": "Уводзіны", "en": "Introduction",
    "de": "Einleitung", "fr": "Introduction", "es": "Introducción", "it": "Introduzione",
    "pt": "Introdução", "pl": "Wstęp", "nl": "Inleiding", "cs": "Úvod", "tr": "Giriş",
}  # fmt: skip
_PART = {
    "ru": "Часть", "uk": "Частина", "be": "Частка", "en": "Part", "de": "Teil",
    "fr": "Partie", "es": "Parte", "it": "Parte", "pt": "Parte", "pl": "Część",
    "nl": "Deel", "cs": "Část", "tr": "Bölüm",
}  # fmt: skip


def _lang_code(language: str | None) -> str | None:
    if not language or not language.strip():
        return None
    text = language.strip().lower()
    if text in _CODES:
        return _CODES[text]
    return re.split(r"[-_]", text, maxsplit=1)[0]


def _language_phrase(language: str | None) -> str:
    code = _lang_code(language)
    if code is None:
        return "the language the transcript is in"
    name = _LANGUAGES.get(code)
    return f"{name} ({code})" if name else f"the language with code {code!r}"


# ---------------------------------------------------------------------------------------------
# Windows and prompts


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
        f"Write every theme and title in {_language_phrase(language)}, "
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


# ---------------------------------------------------------------------------------------------
# Parsing


def _split_themes(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return re.split(r"[,;\n]", value)
    if isinstance(value, list):
        return [_theme_name(v) if isinstance(v, dict) else v for v in value]
    raise TopicsParseError(f"themes is a {type(value).__name__}, not a list")


def _theme_name(item: dict[Any, Any]) -> Any:
    return next(
        (item[k] for k in ("name", "title", "theme", "keyword", "term") if item.get(k)), None
    )


def _raw_topic(item: Any) -> RawTopic | None:
    start: Any = None
    title: Any = None
    if isinstance(item, dict):
        start = next(
            (item[k] for k in ("start", "time", "timestamp", "start_time") if k in item), None
        )
        title = next((item[k] for k in ("title", "name", "topic", "heading") if k in item), None)
    elif isinstance(item, list | tuple) and len(item) == 2:
        start, title = item
    elif isinstance(item, str):
        match = re.match(r"\s*[\[(]?(\d{1,3}(?::\d{1,2}){1,2})[\])]?\s*[-–—:.|]?\s*(.*)", item)
        if match:
            start, title = match.group(1), match.group(2)
    seconds = parse_time(start)
    name = clean_title(title)
    if seconds is None or not name:
        return None
    return seconds, name


# The names models give the two lists, compared after `_field_name`. The prompt asks for
# "themes" and "topics", but models echo the wording of other systems' prompts ("main_themes")
# or the recording's language ("темы"); an unrecognised name loses a whole list silently.
_TOPIC_KEYS = (
    "topics", "chapters", "sections", "topic_list", "topics_list", "chapter_list",
    "chapters_list", "section_list", "table_of_contents", "toc", "outline", "timeline",
    "timestamps", "разделы", "главы", "оглавление", "содержание",
)  # fmt: skip
_THEME_KEYS = (
    "themes", "main_themes", "key_themes", "themes_list", "theme_list", "list_of_themes",
    "theme", "main_theme", "keywords", "key_words", "key_terms", "key_concepts",
    "key_subjects", "main_subjects", "subjects", "tags", "темы", "основные_темы",
    "ключевые_темы", "ключевые_слова",
)  # fmt: skip
# Either list, told apart by content: with timestamps they are topics, bare strings are themes.
_EITHER_KEYS = ("main_topics", "key_topics", "topics_covered", "main_points", "key_points")
_KNOWN_KEYS = frozenset(_TOPIC_KEYS + _THEME_KEYS + _EITHER_KEYS)
# How deep a wrapper ({"result": {"data": {...}}}) may bury the answer.
_WRAPPER_DEPTH = 3


def _field_name(key: Any) -> str:
    """`Main Themes`, `main-themes`, `mainThemes` and `MAIN_THEMES` all become `main_themes`."""
    text = re.sub(r"(?<=[a-zа-яё0-9])(?=[A-ZА-ЯЁ])", "_", str(key))
    return re.sub(r"[\W_]+", "_", text.casefold()).strip("_")


def _fields(data: dict[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.setdefault(_field_name(key), value)
    return out


def _answer_object(data: dict[Any, Any], depth: int = _WRAPPER_DEPTH) -> dict[str, Any] | None:
    """The object holding the answer's lists: `data` itself, or the first object nested in it
    (a wrapper such as {"result": {...}}) that names a list directly."""
    fields = _fields(data)
    if any(not isinstance(v, dict) for k, v in fields.items() if k in _KNOWN_KEYS):
        return fields
    if depth > 0:
        for value in data.values():
            if isinstance(value, dict) and (inner := _answer_object(value, depth - 1)):
                return inner
    return None


def _first(fields: dict[str, Any], keys: Sequence[str]) -> tuple[str | None, Any]:
    return next(((k, fields[k]) for k in keys if k in fields), (None, None))


def parse_answer(data: Any) -> Partial:
    """Themes and (start seconds, title) pairs from a model's JSON, as tolerantly as sensible:
    starts as `HH:MM:SS`, `MM:SS` or seconds, themes as a list or a comma-separated string,
    the lists under any of their usual names (`chapters` for `topics`, `main_themes` or
    `keywords` for `themes`, in any case or spelling) and possibly inside a wrapper object;
    unusable items are dropped. TopicsParseError for garbage."""
    if not isinstance(data, dict):
        raise TopicsParseError(f"the answer is a {type(data).__name__}, not a JSON object")
    fields = _answer_object(data) or _fields(data)
    if not _KNOWN_KEYS & fields.keys():
        keys = ", ".join(sorted(map(str, data))) or "none"
        raise TopicsParseError(f"the answer has neither themes nor topics (keys: {keys})")
    key, items = _first(fields, _TOPIC_KEYS)
    theme_key, themes = _first(fields, _THEME_KEYS)
    for either in (k for k in _EITHER_KEYS if k in fields):
        value = fields[either]
        timed = isinstance(value, list) and any(_raw_topic(v) is not None for v in value)
        if key is None and timed:
            key, items = either, value
        elif theme_key is None and not timed and isinstance(value, list | str):
            theme_key, themes = either, value
    if items is None:
        items = []
    if not isinstance(items, list):
        raise TopicsParseError(f"{key} is a {type(items).__name__}, not a list")
    topics = [t for t in map(_raw_topic, items) if t is not None]
    if items and not topics:
        raise TopicsParseError(f"none of the {len(items)} {key} has a usable start and title")
    return clean_themes(_split_themes(themes)), topics


# ---------------------------------------------------------------------------------------------
# Snapping and chapters


def boundaries(transcript: Transcript) -> list[float]:
    """Where a topic may start: every spoken segment's start, and inside long segments with
    word timings, every sentence's first word."""
    out: set[float] = set()
    for seg in transcript.segments:
        if not seg.text.strip():
            continue
        out.add(max(0.0, seg.start))
        if seg.end - seg.start > _LONG_SEGMENT_S and seg.words:
            for prev, word in itertools.pairwise(seg.words):
                if prev.text.strip().endswith(_SENTENCE_END) and word.text.strip():
                    out.add(max(0.0, word.start))
    return sorted(out)


def _nearest(sorted_points: list[float], value: float) -> float:
    i = bisect.bisect_left(sorted_points, value)
    around = sorted_points[max(0, i - 1) : i + 1]
    return min(around, key=lambda p: (abs(p - value), p))


def _number_duplicates(topics: list[Topic]) -> list[Topic]:
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
    return _number_duplicates(kept)


def intro_title(language: str | None) -> str:
    return _INTRO.get(_lang_code(language) or "", _INTRO["en"])


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


# ---------------------------------------------------------------------------------------------
# With an LLM: map over windows, reduce, finalize


@dataclass
class _Meter:
    usage: Usage = field(default_factory=Usage)


def _ask(chat: ChatJSON, messages: list[dict[str, str]], max_tokens: int, meter: _Meter) -> Partial:
    for attempt in (1, 2):
        data, usage = chat.complete_json(messages, max_tokens=max_tokens)
        meter.usage += usage
        try:
            return parse_answer(data)
        except TopicsParseError:
            # Valid JSON of the wrong shape is a sampling accident more often than not.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def extract_with_llm(
    chat: ChatJSON,
    transcript: Transcript,
    *,
    language: str | None = None,
    title: str | None = None,
    max_chars_per_window: int = 24000,
    max_topics: int = 15,
    max_tokens: int = 4096,
) -> tuple[Topics, Usage]:
    """Themes and topics by an LLM: one request per window, one more to merge several
    windows' answers, then `finalize`. Returns the tokens spent over all requests."""
    lang = language or transcript.language
    duration = transcript_duration(transcript)
    parts = windows(transcript, max_chars=max_chars_per_window)
    if not parts:
        return Topics([], [], False, "the transcript has no speech", "llm"), Usage()
    meter = _Meter()
    partials: list[Partial] = []
    for start, end, text in parts:
        if len(parts) == 1:
            share, span = max_topics, None
        else:
            # A window's fair share of topics plus slack: the reduce step merges the excess.
            fair = math.ceil(max_topics * (end - start) / max(duration, 1.0))
            share, span = min(max_topics, max(3, fair + 2)), (start, end)
        messages = build_messages(
            text, language=lang, duration_s=duration, title=title, max_topics=share, span=span
        )
        partials.append(_ask(chat, messages, max_tokens, meter))
    themes, raw = partials[0]
    if len(partials) > 1:
        messages = build_reduce_messages(
            partials, language=lang, duration_s=duration, title=title, max_topics=max_topics
        )
        try:
            themes, raw = _ask(chat, messages, max_tokens, meter)
        except TopicsParseError:
            # The windows' answers are good; a botched merge should not throw them away.
            themes, raw = [], []
        if not raw:
            raw = [t for _, topics in partials for t in topics]
        if not themes:
            counts = Counter(t for theme_list, _ in partials for t in clean_themes(theme_list))
            themes = [t for t, _ in counts.most_common(MAX_THEMES)]
    topics = finalize(themes, raw, transcript, "llm", language=lang, max_topics=max_topics)
    return topics, meter.usage


# ---------------------------------------------------------------------------------------------
# Offline: sections cut at long pauses, titled by a phrase of their own


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOP_EN = _wordset(
    """a about above after again against all almost also although always am among an and any
    anyone anything are around as at away back be because been before being below between
    both but by can cannot could did do does doing done down during each either else enough
    even ever every everything few first for from further get gets getting go goes going gonna
    got had has have having he her here hers him his how however i if in into is it its itself
    just kind know last let like little look lot lots made make many may maybe me might mine
    more most much must my myself need new next no nor not nothing now of off ok okay on once
    one only or other others our ours out over own part pretty put quite rather really right
    said same say says see seem seems shall she should show since so some something sort still
    such sure take than thank thanks that the their theirs them then there these they thing
    things think this those though through thus to today together too two under until up upon
    us use used using very via want wanna was way we well were what whatever when where whether
    which while who whom whose why will with within without would yeah yes yet you your yours
    actually basically going okay alright let's that's it's don't we're you're i'm can't
    there's here's what's"""
)
_STOP_RU = _wordset(
    """а без более бы был была были было быть в вам вас весь во вот все всего всех вы где да
    даже для до его ее её если есть еще ещё же за здесь и из или им их к как какая какие какой
    когда который которая которое которые кто куда ли либо меня мне мной мы на над надо наш
    наша наше наши не него нее неё нет ни них но ну о об однако он она они оно от очень по под
    после потому почему при про раз с сам свой себя сейчас со так также такие такой там тебя
    тем теперь то тогда того тоже той только том ты у уже хорошо хотя чего чем через что чтобы
    чуть эта эти это этого этой этом этот эту я вообще давайте давай значит можно нужно надо
    будет будем будут буду можем может могу могут должны сказать говорить говорю скажем просто
    вопрос вопросы смотрите смотреть видите знаете понятно конечно например именно сегодня
    поэтому здесь тут какой-то что-то кто-то где-то типа короче ладно ага угу ой эээ ммм
    видим смотрим говорим делаем получаем получается имеем берем берём возьмем возьмём
    слишком почти иногда часто редко гораздо намного особенно всегда никогда довольно вполне
    совсем снова опять сразу потом затем вместе обычно примерно"""
)
_STOPWORDS = _STOP_EN | _STOP_RU
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_RU_ENDINGS = sorted(
    _wordset(
        "ами ями ого его ему ому ыми ими ой ей ий ый ая яя ое ее ие ые ов ев ам ям ах ях ом ем ью"
        " а я о е ы и у ю ь"
    ),
    key=lambda e: (-len(e), e),
)
_CYRILLIC = re.compile(r"[а-яё]")


def _key(word: str) -> str:
    """A crude stem, so that "модели"/"моделью" or "model"/"models" count as one word."""
    if _CYRILLIC.search(word):
        for ending in _RU_ENDINGS:
            if word.endswith(ending) and len(word) - len(ending) >= 3:
                return word[: -len(ending)]
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _words(text: str) -> Iterator[tuple[str, str]]:
    """(stem key, surface form) of each content word; an acronym keeps its capitals."""
    for match in _WORD.finditer(text):
        word = match.group()
        low = word.lower().replace("ё", "е").replace("’", "'")
        if len(low) < 3 or low in _STOPWORDS:
            continue
        surface = word if len(word) > 1 and word.isupper() else low
        yield _key(low), surface


def _section_count(duration: float, target_s: float, min_s: float, max_topics: int) -> int:
    count = max(1, round(duration / max(target_s, 1.0)))
    if count < MIN_CHAPTERS and duration >= MIN_CHAPTERS * min_s:
        count = MIN_CHAPTERS  # three chapters beat none for a recording long enough to hold them
    return max(1, min(count, max_topics, int(duration // min_s)))


def _cuts(transcript: Transcript, duration: float, count: int, min_s: float) -> list[float]:
    """Section starts: 0, then near each k/count of the duration the segment start after the
    longest pause (a pause after a finished sentence counts a little longer)."""
    segs = [s for s in transcript.segments if s.text.strip()]
    candidates: list[tuple[float, float]] = []  # (start, score)
    for prev, seg in itertools.pairwise(segs):
        pause = max(0.0, seg.start - prev.end)
        bonus = 0.75 if prev.text.strip().endswith(_SENTENCE_END) else 0.0
        candidates.append((seg.start, pause + bonus))
    cuts = [0.0]
    share = duration / count
    for k in range(1, count):
        ideal = k * share
        earliest = cuts[-1] + min_s
        latest = duration - (count - k) * min_s
        near = [
            c
            for c in candidates
            if max(earliest, ideal - 0.3 * share) <= c[0] <= min(latest, ideal + 0.3 * share)
        ]
        if near:
            best = max(near, key=lambda c: (c[1], -abs(c[0] - ideal)))
        else:
            allowed = [c for c in candidates if earliest <= c[0] <= latest]
            if not allowed:
                break
            best = min(allowed, key=lambda c: abs(c[0] - ideal))
        cuts.append(float(math.floor(best[0])))
    return cuts


# ---------------------------------------------------------------------------------------------
# Offline titles: a short noun phrase from each section's own sentences

# Words that may join the content words of a phrase ("size of the array", "ключи и значения");
# an article only right after another of them, so "smooth the data" stays two phrases.
_GLUE = _wordset(
    "of and for in on with vs versus per и в во на для с со по о об при из от к без под над"
)
_ARTICLES = _wordset("the a an")
# Words a title does without, compared by stem: talk about the lecture itself, vague
# adjectives ("Simple methods", "Последняя тема"), transitions, the verbs of the cues below
# and the closing formulas ("Thank you for listening", "Спасибо за внимание").
_NOT_IN_TITLES = frozenset(
    map(
        _key,
        _wordset(
            """topic topics lecture lectures course lesson today welcome example examples simple
            good important main basic different general small big large various several whole
            entire usual common typical final second third next previous following finally
            listening attention
            тема темы тему лекция лекции лекцию курс урок занятие сегодняшний сегодняшней
            пример примеры простой простые хороший основной основные важный важные большой
            небольшой маленький обычный разные последний последняя следующий следующая первый
            первая второй вторая третий третья дальше далее наконец итак разберем рассмотрим
            обсудим изучим поговорим спасибо внимание"""
        ),
    )
)
# Between a cue ("our first topic is") and the phrase it announces.
_LEAD = _ARTICLES | _wordset("our this these that those its their his her my your some")
# A sentence's opening phrase followed by one of these is being defined: "A trend is …",
# "Градиент — это …". A sentence that is nothing but its opening phrase is a spoken heading:
# "Right, the learning rate.", "Дальше доверительный интервал.", "That's gradient descent."
# At most _OPENING_SKIP words ("So, a …", "Ну, дальше") may come before the phrase.
_COPULAS = _wordset("is are means refers это — – -")
_OPENING_SKIP = 4
_TRANSITIONS = _wordset("now next finally then so right okay дальше далее наконец итак теперь")
# A heading needs one of these before it, or "It works." and "Models fit data." would be ones.
_HEADING_MARKS = _TRANSITIONS | _ARTICLES | _wordset("that's вот , : — – -")
_SENTENCES = re.compile(r"(?<=[.!?…。！？])\s+")
_TOKEN = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*|[^\w\s]")
_TOKEN_PUNCT = re.compile(r"[^\w\s]")
# How lecturers announce a subject, and how much likelier the phrase after one is the title.
# A preposition captured as `prep` stays in the title: "О стохастическом спуске" is a heading,
# the bare prepositional case is not. Naming a term ("so-called X") is weaker: it introduces a
# word, not necessarily the section's subject.
_ANNOUNCE_BONUS = 4.0
_NAMING_BONUS = 2.0
_DEFINITION_BONUS = 2.0
_HEADING_BONUS = 2.0
_MOVE_ON_BONUS = 3.0
_CUE_REACH = 40  # tokens: a phrase of a few words, and the articles and glue around them
_CUES = tuple(
    (re.compile(pattern, re.IGNORECASE), bonus)
    for pattern, bonus in (
        (
            r"\b(?:topic|subject)\s+(?:for\s+today\s+|of\s+today\s+|today\s+)?(?:is|will\s+be)\b",
            _ANNOUNCE_BONUS,
        ),
        (
            r"\b(?:talk|talking|speak|speaking|learn|learning|think|thinking|hear)\s+"
            r"(?:a\s+(?:bit|little)\s+(?:more\s+)?)?about\b",
            _ANNOUNCE_BONUS,
        ),
        (r"\b(?:turn|turning|move\s+on|moving\s+on|switch|switching)\s+to\b", _ANNOUNCE_BONUS),
        (
            r"\b(?:introduce|introducing|discuss|discussing|cover|covering|focus\s+on"
            r"|focusing\s+on)\b",
            _ANNOUNCE_BONUS,
        ),
        (r"\b(?:look|looking)\s+at\b", _NAMING_BONUS),
        (r"\b(?:is|are)\s+called\b|\bknown\s+as\b", _NAMING_BONUS),
        (r"\bтем[аы]\b[^.!?]{0,40}?(?:\s[—–-]\s|:|\bэто\b)", _ANNOUNCE_BONUS),
        (
            r"\b(?:поговорим|поговорить|говорить|говорим|расскажу|рассказать|расскажем"
            r"|речь\s+пойд[её]т|речь\s+ид[её]т|теперь|далее|дальше)\s+(?P<prep>о|об|обо|про)\b",
            _ANNOUNCE_BONUS,
        ),
        (
            r"\b(?:разбер[её]м|рассмотрим|обсудим|изучим|разобрать|рассмотреть|обсудить|изучить"
            r"|познакомимся\s+с)\b",
            _ANNOUNCE_BONUS,
        ),
        (r"\bперей(?:д[её]м|ти)\s+к\b", _ANNOUNCE_BONUS),
        (
            r"\b(?:последн|следующ|заключительн)\w*\b[^.!?—–:]{0,30}?(?:\s[—–-]\s|:)"
            r"|\b(?:last|next|final)\s+(?:thing|point|part|step|one)\b[^.!?—–:]{0,30}?"
            r"(?:\s[—–-]\s|:)",
            _ANNOUNCE_BONUS,
        ),
        (r"\b(?:называется|называются|называют|называем|так\s+называем\w+)\b", _NAMING_BONUS),
    )
)
# Every added word adds weight: without a discount per word a title grows to its limit.
_LENGTH_DISCOUNT = 0.7
_REPEAT_WEIGHT = 0.25


@dataclass(frozen=True)
class _Token:
    surface: str
    low: str
    key: str | None  # the stem of a content word; None for glue, stopwords and punctuation
    at: int  # where it starts in its sentence


def _tokens(text: str) -> list[_Token]:
    out = []
    for match in _TOKEN.finditer(text):
        word = match.group()
        low = word.lower().replace("ё", "е").replace("’", "'")
        key = _key(low)
        content = _WORD.fullmatch(word) is not None and len(low) >= 3 and low not in _STOPWORDS
        out.append(
            _Token(word, low, key if content and key not in _NOT_IN_TITLES else None, match.start())
        )
    return out


def _phrase_ends(tokens: Sequence[_Token], i: int, max_words: int) -> Iterator[int]:
    """Each j for which tokens[i:j] is a phrase: content words joined by at most two glue
    words, at most `max_words` content words, ending on one (tokens[i] must be one)."""
    words = gap = 0
    for j in range(i, len(tokens)):
        token = tokens[j]
        if token.key is not None:
            words, gap = words + 1, 0
            if words > max_words:
                return
            yield j + 1
        elif gap < 2 and (token.low in _GLUE or (gap > 0 and token.low in _ARTICLES)):
            gap += 1
        else:
            return


def _opening(
    tokens: Sequence[_Token], skip: frozenset[str], max_skip: int, max_words: int
) -> tuple[int, int] | None:
    """(start, end) of the longest phrase opening `tokens` after at most `max_skip` words
    from `skip`."""
    i = 0
    while i < min(max_skip, len(tokens)) and tokens[i].key is None and tokens[i].low in skip:
        i += 1
    if i >= len(tokens) or tokens[i].key is None:
        return None
    return i, max(_phrase_ends(tokens, i, max_words))


@dataclass
class _Candidate:
    order: int
    bonus: float = 1.0
    surfaces: Counter[str] = field(default_factory=Counter)


def _candidates(
    text: str, max_words: int
) -> tuple[dict[tuple[str, ...], _Candidate], Counter[tuple[str, ...]]]:
    """Every phrase of a section keyed by its preposition and stems (so the forms of one phrase
    count as one), with the strongest cue or definition that announced it; and how often each
    sequence of stems occurs."""
    found: dict[tuple[str, ...], _Candidate] = {}
    occurs: Counter[tuple[str, ...]] = Counter()

    def add(tokens: Sequence[_Token], prep: str = "", bonus: float = 1.0) -> None:
        stems = tuple(t.key for t in tokens if t.key is not None)
        candidate = found.setdefault((prep.lower(), *stems), _Candidate(len(found)))
        candidate.bonus = max(candidate.bonus, bonus)
        words = " ".join(t.surface for t in tokens)
        title = f"{prep} {words}" if prep else words
        candidate.surfaces[title[:1].upper() + title[1:]] += 1

    opening_skip = _STOPWORDS | _LEAD | _HEADING_MARKS
    for sentence in _SENTENCES.split(text):
        tokens = _tokens(sentence)
        starts = [t.at for t in tokens]
        for i, token in enumerate(tokens):
            if token.key is not None:
                for j in _phrase_ends(tokens, i, max_words):
                    add(tokens[i:j])
                    occurs[tuple(t.key for t in tokens[i:j] if t.key is not None)] += 1
        opening = _opening(tokens, opening_skip, _OPENING_SKIP, max_words)
        if opening:
            after = tokens[opening[1] :]
            if after and after[0].low in _COPULAS:
                add(tokens[opening[0] : opening[1]], bonus=_DEFINITION_BONUS)
            elif _is_heading(tokens[: opening[0]], after):
                # "Next, the bias-variance tradeoff." moves on to a subject: nearly a cue.
                moves_on = any(t.low in _TRANSITIONS for t in tokens[: opening[0]])
                bonus = _MOVE_ON_BONUS if moves_on else _HEADING_BONUS
                add(tokens[opening[0] : opening[1]], bonus=bonus)
        for cue, bonus in _CUES:
            for match in cue.finditer(sentence):
                # Only the words right after the cue can be its phrase; looking no further
                # keeps a long unpunctuated transcript (one "sentence") linear.
                k = bisect.bisect_left(starts, match.end())
                rest = tokens[k : k + _CUE_REACH]
                announced = _opening(rest, _LEAD, 2, max_words)
                if announced:
                    prep = match.groupdict().get("prep") or ""
                    add(rest[announced[0] : announced[1]], prep, bonus)
    return found, occurs


def _is_heading(before: Sequence[_Token], after: Sequence[_Token]) -> bool:
    """Whether a sentence's opening phrase, with these tokens before and after it, is all the
    sentence says: a mark such as "Right," or "the" before it (so "It works." is no heading),
    no preposition right before it ("Теперь о …" is a cue's), nothing but a full stop after."""
    return (
        any(t.low in _HEADING_MARKS for t in before)
        and not (before and before[-1].low in _GLUE)
        and all(_TOKEN_PUNCT.fullmatch(t.surface) and t.low != "?" for t in after)
    )


def _same_stem(a: str, b: str) -> bool:
    # The crude stems keep "forecast" and "forecasting" apart; a title of one after the other
    # would still read as a repeat.
    return a == b or (min(len(a), len(b)) >= 5 and (a.startswith(b) or b.startswith(a)))


def _repeats(stems: Sequence[str], taken: Sequence[Sequence[str]]) -> bool:
    """Whether every stem of a title already appears in one earlier title."""
    return any(all(any(_same_stem(s, t) for t in earlier) for s in stems) for earlier in taken)


def _score(
    stems: Sequence[str],
    bonus: float,
    occurs: int,
    tf: Counter[str],
    idf: dict[str, float],
) -> float:
    # Sublinear in the counts: a word said five times is not five times the title.
    weight = sum((1 + math.log(max(tf[s], 1))) * idf.get(s, 1.0) for s in set(stems))
    repeats = math.pow(max(occurs, 1), _REPEAT_WEIGHT)
    return weight * bonus * repeats / math.pow(len(stems), _LENGTH_DISCOUNT)


def section_titles(texts: Sequence[str], *, max_words: int = 4, max_chars: int = 60) -> list[str]:
    """A chapter title for each section's text, made of its own words: the phrase (content
    words, possibly joined by "of", "и" and the like) scoring highest by the TF-IDF of its words
    over the sections and by how often it recurs, several times higher when a cue ("our next
    topic is …", "поговорим о …"), a definition ("X is …", "X — это …") or a sentence of its own
    ("Now, the learning rate.") announces it. A title has at most `max_words` content words and
    `max_chars` characters and starts with a capital; it repeats no earlier section's title
    unless all the section's phrases do (then it is the best of them, for the caller to
    number); "" for a section with no such phrase. Deterministic: ties go to the earlier
    phrase."""
    max_words = max(1, max_words)
    found = [_candidates(text, max_words) for text in texts]
    counts = [Counter(key for key, _ in _words(text)) for text in texts]
    df = Counter(key for section in counts for key in section)
    idf = {key: math.log((1 + len(texts)) / (1 + n)) + 1.0 for key, n in df.items()}
    titles: list[str] = []
    taken: list[tuple[str, ...]] = []
    for (candidates, occurs), tf in zip(found, counts, strict=True):
        ranked = sorted(
            candidates.items(),
            key=lambda item: (
                -_score(item[0][1:], item[1].bonus, occurs[item[0][1:]], tf, idf),
                item[1].order,
            ),
        )
        fitting = [
            (tuple(stems), surface)
            for (_, *stems), candidate in ranked
            if len(surface := candidate.surfaces.most_common(1)[0][0]) <= max_chars
        ]
        if not fitting:
            titles.append("")
            continue
        # When every phrase repeats an earlier title the section goes on with that subject:
        # its best phrase again (numbered by the caller) says so better than "Part 3".
        stems, title = next((f for f in fitting if not _repeats(f[0], taken)), fitting[0])
        taken.append(stems)
        titles.append(title)
    return titles


def _ranked(counts: Counter[str], weight: dict[str, float], order: dict[str, int]) -> list[str]:
    return sorted(counts, key=lambda k: (-counts[k] * weight.get(k, 1.0), order[k]))


def simple_topics(
    transcript: Transcript,
    *,
    target_section_s: float = 600.0,
    min_section_s: float = 120.0,
    max_topics: int = 12,
    language: str | None = None,
    title_words: int = 4,
    max_title_chars: int = 60,
    max_themes: int = 6,
) -> Topics:
    """Topics without an LLM: about one section per `target_section_s` (at least 3 when the
    recording holds 3 of `min_section_s`, at most `max_topics`), cut at long pauses and titled
    by a phrase of their own (`section_titles`, at most `title_words` content words and
    `max_title_chars` characters); themes are the words with the highest TF-IDF summed over
    the whole recording."""
    lang = language or transcript.language
    duration = transcript_duration(transcript)
    segs = [s for s in transcript.segments if s.text.strip()]
    if not segs or duration <= 0:
        return Topics([], [], False, "the transcript has no speech", "simple")
    # Below 11 s a chapter could fall under YouTube's 10 s once times are rounded down.
    min_s = max(min_section_s, MIN_CHAPTER_S + 1)
    cuts = _cuts(
        transcript, duration, _section_count(duration, target_section_s, min_s, max_topics), min_s
    )
    sections: list[Counter[str]] = [Counter() for _ in cuts]
    by_section: list[list[Segment]] = [[] for _ in cuts]
    surfaces: dict[str, Counter[str]] = {}
    order: dict[str, int] = {}
    total: Counter[str] = Counter()
    for seg in segs:
        index = max(0, bisect.bisect_right(cuts, seg.start) - 1)
        by_section[index].append(seg)
        for key, surface in _words(seg.text):
            sections[index][key] += 1
            total[key] += 1
            surfaces.setdefault(key, Counter())[surface] += 1
            order.setdefault(key, len(order))
    docs = len(sections)
    df = Counter(key for section in sections for key in section)
    idf = {key: math.log((1 + docs) / (1 + n)) + 1.0 for key, n in df.items()}

    def shown(key: str) -> str:
        return surfaces[key].most_common(1)[0][0]

    texts = [" ".join(s.text.strip() for s in section) for section in by_section]
    part = _PART.get(_lang_code(lang) or "", _PART["en"])
    titles = section_titles(texts, max_words=title_words, max_chars=max_title_chars)
    topics = [
        Topic(cut, title or f"{part} {i + 1}")
        for i, (cut, title) in enumerate(zip(cuts, titles, strict=True))
    ]
    topics = _number_duplicates(topics)
    # Summed TF-IDF: frequent words, discounted when they are everywhere like filler is.
    ranked = _ranked(total, idf, order)
    frequent = [k for k in ranked if total[k] >= 2] or ranked
    themes = clean_themes([shown(k) for k in frequent[:max_themes]])
    ok, reason = chapters_check(topics, duration)
    return Topics(themes, topics, ok, reason, "simple")
