"""Topics and YouTube chapters of a transcript: LLM prompts and tolerant answer parsing, timestamp
snapping and chapter validation, map-reduce over long transcripts. The offline provider is
`leap.text.topics_offline`."""

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
from leap.text.transcript import Transcript

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
SENTENCE_END = (".", "!", "?", "…", "。", "！", "？")


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


def lang_code(language: str | None) -> str | None:
    if not language or not language.strip():
        return None
    text = language.strip().lower()
    if text in _CODES:
        return _CODES[text]
    return re.split(r"[-_]", text, maxsplit=1)[0]


def _language_phrase(language: str | None) -> str:
    code = lang_code(language)
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
    return _INTRO.get(lang_code(language) or "", _INTRO["en"])


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
