"""Topics with an LLM: map over windows, reduce, finalize."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from leap.providers.llm import Usage
from leap.text.topics.chapters import finalize
from leap.text.topics.model import ChatJSON, Partial, Topics, TopicsParseError
from leap.text.topics.parsing import parse_answer
from leap.text.topics.prompts import build_messages, build_reduce_messages, windows
from leap.text.topics.times import MAX_THEMES, clean_themes, transcript_duration
from leap.text.transcript import Transcript


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
