"""Tolerant parsing of an LLM's answer: themes and topics under whatever keys and wrappers
it chose."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from leap.text.topics.model import Partial, RawTopic, TopicsParseError
from leap.text.topics.times import clean_themes, clean_title, parse_time


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
