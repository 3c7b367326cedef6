"""Which template does a recording belong to: pure, first match wins, and it says why.

Case-insensitive text comparison folds both sides the same way: NFC, casefold, "ё" read as
"е" (Russian writers use them interchangeably), runs of whitespace collapsed and the ends
stripped. case_sensitive=true compares NFC text as written. Regexes search the NFC title
as written (no folding, no whitespace collapsing), with IGNORECASE unless case_sensitive.

Regexes are users' text run against every title, so they run on the `regex` engine (the
syntax and Unicode rules of `re`) under a time limit: `re` has none, and a pattern such as
`(a|aa)+$` backtracks for minutes on a 40-character title.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import regex

from leap.specs.template import (
    WEEKDAYS,
    MatchRules,
    format_time_window,
    normalize_meeting_id,
    parse_time_window,
)

_WHITESPACE = re.compile(r"\s+")
# Per pattern and title; a title is at most a few hundred characters, which any sane pattern
# searches in microseconds.
REGEX_TIMEOUT_S = 0.1
_NEVER = regex.compile(r"(?!)")


def compile_regex(pattern: str, *, case_sensitive: bool) -> regex.Pattern[str]:
    """The engine and flags every template regex is matched with (V0: `re`'s behaviour)."""
    flags = regex.V0 | (0 if case_sensitive else regex.IGNORECASE)
    return regex.compile(unicodedata.normalize("NFC", pattern), flags)


def _compiled_or_never(pattern: str, *, case_sensitive: bool) -> regex.Pattern[str]:
    # Patterns are checked when a template is saved; one stored before that check that this
    # engine refuses must not stop every other template from matching.
    try:
        return compile_regex(pattern, case_sensitive=case_sensitive)
    except regex.error:
        return _NEVER


def fold(text: str, *, case_sensitive: bool = False) -> str:
    """The form in which titles and keywords are compared (see the module docstring)."""
    text = unicodedata.normalize("NFC", text)
    if case_sensitive:
        return text
    text = text.casefold().replace("ё", "е")
    return _WHITESPACE.sub(" ", text).strip()


@dataclass(frozen=True, slots=True)
class RecordingFacts:
    """What the matcher may look at; start_local is already in the template owner's zone."""

    title: str
    source_name: str
    source_kind: str
    meeting_id: str | None
    host: str | None
    start_local: datetime

    def __post_init__(self) -> None:
        # A naive time here is almost always UTC that skipped conversion, which would
        # silently shift weekdays and windows; refuse it instead.
        if self.start_local.tzinfo is None or self.start_local.utcoffset() is None:
            raise ValueError("RecordingFacts.start_local must be timezone-aware")


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """MatchRules prepared for repeated matching. Text pairs are (as written, folded)."""

    template_id: int
    name: str
    order: int
    enabled: bool
    case_sensitive: bool
    keywords: tuple[tuple[str, str], ...]
    all_keywords: tuple[tuple[str, str], ...]
    exact: tuple[tuple[str, str], ...]
    regexes: tuple[tuple[str, regex.Pattern[str]], ...]
    sources: tuple[tuple[str, str], ...]
    meeting_ids: tuple[str, ...]
    hosts: tuple[tuple[str, str], ...]
    weekdays: frozenset[int]
    time_window: tuple[int, int] | None

    @property
    def is_empty(self) -> bool:
        return not (
            self.keywords
            or self.all_keywords
            or self.exact
            or self.regexes
            or self.sources
            or self.meeting_ids
            or self.hosts
            or self.weekdays
            or self.time_window is not None
        )


@dataclass(frozen=True, slots=True)
class MatchResult:
    template_id: int
    template_name: str
    reason: str


def compile_template(
    template_id: int, name: str, order: int, rules: MatchRules, enabled: bool = True
) -> CompiledTemplate:
    cs = rules.case_sensitive

    def texts(values: list[str]) -> tuple[tuple[str, str], ...]:
        return tuple((v, fold(v, case_sensitive=cs)) for v in values)

    return CompiledTemplate(
        template_id=template_id,
        name=name,
        order=order,
        enabled=enabled,
        case_sensitive=cs,
        keywords=texts(rules.keywords),
        all_keywords=texts(rules.all_keywords),
        exact=texts(rules.exact),
        regexes=tuple((p, _compiled_or_never(p, case_sensitive=cs)) for p in rules.regex),
        # Source names, kinds and emails are identifiers: always case-insensitive.
        sources=tuple((s, s.casefold()) for s in rules.sources),
        meeting_ids=tuple(normalize_meeting_id(m) for m in rules.zoom_meeting_ids),
        hosts=tuple((h, h.strip().casefold()) for h in rules.hosts),
        weekdays=frozenset(WEEKDAYS.index(d) for d in rules.weekdays),
        time_window=parse_time_window(rules.time_window) if rules.time_window else None,
    )


def _evaluate(t: CompiledTemplate, facts: RecordingFacts) -> tuple[str | None, str | None]:
    """(reason, None) when it matches, (None, why not) when it does not."""
    if not t.enabled:
        return None, "template is disabled"
    if t.is_empty:
        return None, "template has no match conditions"
    cs = t.case_sensitive
    title = fold(facts.title, case_sensitive=cs)
    reasons: list[str] = []

    if t.keywords:
        hit = next((raw for raw, k in t.keywords if k in title), None)
        if hit is None:
            return None, "no keyword in the title"
        reasons.append(f'keyword "{hit}"')
    if t.all_keywords:
        missing = [raw for raw, k in t.all_keywords if k not in title]
        if missing:
            return None, f'title lacks "{missing[0]}"'
        reasons.append("all keywords " + ", ".join(f'"{raw}"' for raw, _ in t.all_keywords))
    if t.exact:
        if not any(title == e for _, e in t.exact):
            return None, "title is not an exact match"
        reasons.append("exact title")
    if t.regexes:
        raw_title = unicodedata.normalize("NFC", facts.title)
        hit, slow = _search(t.regexes, raw_title)
        if hit is None:
            if slow is not None:
                return None, (
                    f'regex "{slow}" took over {REGEX_TIMEOUT_S:g} s on this title '
                    "(counted as no match; simplify the pattern)"
                )
            return None, "no regex matches the title"
        reasons.append(f'regex "{hit}"')
    if t.meeting_ids:
        mid = normalize_meeting_id(facts.meeting_id) if facts.meeting_id else None
        if mid not in t.meeting_ids:
            return None, "meeting id differs"
        reasons.append(f"meeting id {mid}")
    if t.hosts:
        host = facts.host.strip().casefold() if facts.host else None
        hit = next((raw for raw, h in t.hosts if h == host), None)
        if hit is None:
            return None, "host differs"
        reasons.append(f"host {hit}")
    if t.sources:
        seen = {facts.source_name.casefold(), facts.source_kind.casefold()}
        hit = next((raw for raw, s in t.sources if s in seen), None)
        if hit is None:
            return None, "source differs"
        reasons.append(f"source {hit}")
    if t.weekdays:
        day = facts.start_local.weekday()
        if day not in t.weekdays:
            return None, f"weekday {WEEKDAYS[day]} not listed"
        reasons.append(f"weekday {WEEKDAYS[day]}")
    if t.time_window is not None:
        start, end = t.time_window
        minute = facts.start_local.hour * 60 + facts.start_local.minute
        # Start inclusive, end exclusive; a window whose end is before its start wraps
        # past midnight.
        inside = start <= minute < end if start < end else (minute >= start or minute < end)
        if not inside:
            return None, "start time outside the window"
        reasons.append(f"time {format_time_window(start, end)}")
    return "; ".join(reasons), None


def _search(
    patterns: tuple[tuple[str, regex.Pattern[str]], ...], title: str
) -> tuple[str | None, str | None]:
    """(the first pattern that matches, None), or (None, a pattern that ran out of time)."""
    slow: str | None = None
    for raw, rx in patterns:
        try:
            if rx.search(title, timeout=REGEX_TIMEOUT_S):
                return raw, None
        except TimeoutError:
            slow = slow or raw
    return None, slow


def match_reason(t: CompiledTemplate, facts: RecordingFacts) -> str | None:
    """Why `t` matches `facts` (e.g. 'keyword "анализ"; weekday thu'), or None."""
    return _evaluate(t, facts)[0]


def mismatch_reason(t: CompiledTemplate, facts: RecordingFacts) -> str | None:
    """The first condition of `t` that `facts` fails (for `template test`), or None."""
    return _evaluate(t, facts)[1]


def evaluation_order(templates: Sequence[CompiledTemplate]) -> list[CompiledTemplate]:
    """(order, name, template_id) ascending, so the winner never depends on input order."""
    return sorted(templates, key=lambda t: (t.order, t.name, t.template_id))


def first_match(templates: Sequence[CompiledTemplate], facts: RecordingFacts) -> MatchResult | None:
    for t in evaluation_order(templates):
        reason = match_reason(t, facts)
        if reason is not None:
            return MatchResult(t.template_id, t.name, reason)
    return None
