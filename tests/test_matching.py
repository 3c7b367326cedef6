"""The matcher: every rule alone and combined, text folding, local time, and who wins."""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from leap.specs.matching import (
    CompiledTemplate,
    MatchResult,
    RecordingFacts,
    compile_template,
    evaluation_order,
    first_match,
    fold,
    match_reason,
    mismatch_reason,
)
from leap.specs.template import MatchRules

MSK = timezone(timedelta(hours=3))
# Thursday 2025-01-02, 19:00 Moscow time.
THU_19 = datetime(2025, 1, 2, 19, 0, tzinfo=MSK)


def facts(**changes: Any) -> RecordingFacts:
    base = RecordingFacts(
        title="Анализ временных рядов — лекция 5",
        source_name="uni-zoom",
        source_kind="zoom",
        meeting_id="81234567890",
        host="teacher@uni.example",
        start_local=THU_19,
    )
    return replace(base, **changes)


def tpl(template_id: int = 1, name: str = "t", order: int = 100, **rules: Any) -> CompiledTemplate:
    enabled = rules.pop("enabled", True)
    return compile_template(template_id, name, order, MatchRules.model_validate(rules), enabled)


def at(hour: int, minute: int = 0, second: int = 0, day: int = 2) -> datetime:
    return datetime(2025, 1, day, hour, minute, second, tzinfo=MSK)


# Each rule alone: (rules, facts changes, expected reason or None).
SINGLE: list[tuple[dict[str, Any], dict[str, Any], str | None]] = [
    # keywords: any of them, substring
    ({"keywords": ["анализ"]}, {}, 'keyword "анализ"'),
    ({"keywords": ["нет такого", "лекция"]}, {}, 'keyword "лекция"'),
    ({"keywords": ["лекция", "анализ"]}, {}, 'keyword "лекция"'),  # first in the template's order
    ({"keywords": ["семинар"]}, {}, None),
    ({"keywords": ["рядов — лек"]}, {}, 'keyword "рядов — лек"'),
    # all_keywords: every one
    ({"all_keywords": ["анализ", "лекция"]}, {}, 'all keywords "анализ", "лекция"'),
    ({"all_keywords": ["анализ", "семинар"]}, {}, None),
    (
        {"all_keywords": ["ml", "lecture"]},
        {"title": "Lecture 3: ML"},
        'all keywords "ml", "lecture"',
    ),
    # exact: the whole title
    ({"exact": ["анализ временных рядов — лекция 5"]}, {}, "exact title"),
    ({"exact": ["Другое", "Анализ временных рядов — лекция 5"]}, {}, "exact title"),
    ({"exact": ["Анализ временных рядов"]}, {}, None),  # a substring is not exact
    ({"exact": ["Анализ"]}, {"title": "  Анализ  "}, "exact title"),  # ends are stripped
    # regex: searched, anchors honoured, Cyrillic
    ({"regex": [r"^ТС-\d+"]}, {"title": "ТС-12 Итоги"}, r'regex "^ТС-\d+"'),
    ({"regex": [r"^ТС-\d+"]}, {"title": "тс-12 итоги"}, r'regex "^ТС-\d+"'),  # ignorecase
    ({"regex": [r"^ТС-\d+"]}, {"title": "Итоги ТС-12"}, None),  # anchored at the start
    ({"regex": [r"лекция \d+$"]}, {}, r'regex "лекция \d+$"'),
    ({"regex": [r"лекция \d+$"]}, {"title": "лекция 5 (запись)"}, None),
    ({"regex": [r"\bрядов\b"]}, {}, r'regex "\bрядов\b"'),
    ({"regex": ["^нет", "рядов"]}, {}, 'regex "рядов"'),  # any of them
    # zoom meeting ids
    ({"zoom_meeting_ids": [81234567890]}, {}, "meeting id 81234567890"),
    ({"zoom_meeting_ids": ["812 3456 7890"]}, {}, "meeting id 81234567890"),
    ({"zoom_meeting_ids": [1, 81234567890]}, {}, "meeting id 81234567890"),
    (
        {"zoom_meeting_ids": [81234567890]},
        {"meeting_id": "812 3456 7890"},
        "meeting id 81234567890",
    ),
    ({"zoom_meeting_ids": [99]}, {}, None),
    ({"zoom_meeting_ids": [81234567890]}, {"meeting_id": None}, None),
    # hosts, case-insensitive
    ({"hosts": ["teacher@uni.example"]}, {}, "host teacher@uni.example"),
    ({"hosts": ["Teacher@UNI.example"]}, {}, "host Teacher@UNI.example"),
    (
        {"hosts": ["x@y.z", "teacher@uni.example"]},
        {"host": "TEACHER@uni.EXAMPLE"},
        "host teacher@uni.example",
    ),
    ({"hosts": ["other@uni.example"]}, {}, None),
    ({"hosts": ["teacher@uni.example"]}, {"host": None}, None),
    # sources, by name or by kind
    ({"sources": ["zoom"]}, {}, "source zoom"),
    ({"sources": ["uni-zoom"]}, {}, "source uni-zoom"),
    ({"sources": ["UNI-Zoom"]}, {}, "source UNI-Zoom"),
    ({"sources": ["local", "folder"]}, {}, None),
    ({"sources": ["zoom"]}, {"source_name": "lectures", "source_kind": "local"}, None),
    (
        {"sources": ["lectures"]},
        {"source_name": "lectures", "source_kind": "local"},
        "source lectures",
    ),
    # weekdays, on the local date
    ({"weekdays": ["thu"]}, {}, "weekday thu"),
    ({"weekdays": ["Thursday"]}, {}, "weekday thu"),
    ({"weekdays": ["mon", "THU"]}, {}, "weekday thu"),
    ({"weekdays": ["mon", "fri"]}, {}, None),
    ({"weekdays": ["sun"]}, {"start_local": at(10, day=5)}, "weekday sun"),
    # time window: start inclusive, end exclusive
    ({"time_window": "18:00-21:30"}, {}, "time 18:00-21:30"),
    ({"time_window": "18:00-21:30"}, {"start_local": at(18)}, "time 18:00-21:30"),
    ({"time_window": "18:00-21:30"}, {"start_local": at(17, 59, 59)}, None),
    ({"time_window": "18:00-21:30"}, {"start_local": at(21, 29, 59)}, "time 18:00-21:30"),
    ({"time_window": "18:00-21:30"}, {"start_local": at(21, 30)}, None),
    ({"time_window": "18:00-21:30"}, {"start_local": at(9)}, None),
    # wrapping past midnight
    ({"time_window": "22:00-01:30"}, {"start_local": at(22)}, "time 22:00-01:30"),
    ({"time_window": "22:00-01:30"}, {"start_local": at(23, 59, 59)}, "time 22:00-01:30"),
    ({"time_window": "22:00-01:30"}, {"start_local": at(0)}, "time 22:00-01:30"),
    ({"time_window": "22:00-01:30"}, {"start_local": at(1, 29)}, "time 22:00-01:30"),
    ({"time_window": "22:00-01:30"}, {"start_local": at(1, 30)}, None),
    ({"time_window": "22:00-01:30"}, {"start_local": at(21, 59)}, None),
    ({"time_window": "22:00-01:30"}, {"start_local": at(12)}, None),
    ({"time_window": "18:00-24:00"}, {"start_local": at(23, 59)}, "time 18:00-00:00"),
    ({"time_window": "18:00-24:00"}, {"start_local": at(0)}, None),
]


@pytest.mark.parametrize(("rules", "changes", "expected"), SINGLE)
def test_each_rule_alone(
    rules: dict[str, Any], changes: dict[str, Any], expected: str | None
) -> None:
    assert match_reason(tpl(**rules), facts(**changes)) == expected


COMBINED: list[tuple[dict[str, Any], dict[str, Any], str | None]] = [
    (
        {"keywords": ["анализ"], "sources": ["zoom"], "weekdays": ["thu"]},
        {},
        'keyword "анализ"; source zoom; weekday thu',
    ),
    ({"keywords": ["анализ"], "sources": ["zoom"], "weekdays": ["fri"]}, {}, None),
    ({"keywords": ["семинар"], "sources": ["zoom"], "weekdays": ["thu"]}, {}, None),
    (
        {
            "keywords": ["временных"],
            "all_keywords": ["анализ", "лекция"],
            "regex": [r"лекция \d"],
            "zoom_meeting_ids": ["812 3456 7890"],
            "hosts": ["teacher@uni.example"],
            "sources": ["zoom"],
            "weekdays": ["mon", "thu"],
            "time_window": "18:00-21:30",
        },
        {},
        'keyword "временных"; all keywords "анализ", "лекция"; regex "лекция \\d"; '
        "meeting id 81234567890; host teacher@uni.example; source zoom; weekday thu; "
        "time 18:00-21:30",
    ),
    (
        {"exact": ["анализ временных рядов — лекция 5"], "time_window": "19:00-20:00"},
        {},
        "exact title; time 19:00-20:00",
    ),
    ({"exact": ["анализ временных рядов — лекция 5"], "time_window": "20:00-21:00"}, {}, None),
    ({"hosts": ["teacher@uni.example"], "zoom_meeting_ids": [1]}, {}, None),
    ({"weekdays": ["thu"], "time_window": "18:00-19:00"}, {}, None),  # 19:00 is the end
]


@pytest.mark.parametrize(("rules", "changes", "expected"), COMBINED)
def test_every_given_condition_must_hold(
    rules: dict[str, Any], changes: dict[str, Any], expected: str | None
) -> None:
    assert match_reason(tpl(**rules), facts(**changes)) == expected


# --------------------------------------------------------------- text folding

NFD_Y = unicodedata.normalize("NFD", "й")
assert len(NFD_Y) == 2

FOLDING: list[tuple[str, str, bool, bool]] = [
    # (keyword, title, case_sensitive, matches)
    ("анализ", "АНАЛИЗ ДАННЫХ", False, True),
    ("анализ", "АНАЛИЗ ДАННЫХ", True, False),
    ("Анализ", "Анализ данных", True, True),
    ("Анализ", "анализ данных", True, False),
    ("ML", "Intro to ml", False, True),
    ("ML", "Intro to ml", True, False),
    # ё is read as е when case-insensitive, both ways
    ("ёлка", "Елка новогодняя", False, True),
    ("елка", "Ёлка новогодняя", False, True),
    ("ЁЛКА", "ёлка", False, True),
    ("ёлка", "елка", True, False),
    # runs of whitespace (including no-break space and tabs) collapse
    ("анализ временных", "Анализ  Временных рядов", False, True),
    ("анализ  временных", "Анализ Временных рядов", False, True),
    ("анализ временных", "Анализ\u00a0\tвременных", False, True),
    ("анализ временных", "Анализ  временных", True, False),
    # NFC and NFD spell the same text
    ("йога", f"{NFD_Y}ога для всех", False, True),
    (f"{NFD_Y}ога", "Йога для всех", False, True),
    ("йога", f"{NFD_Y}ога", True, True),
    (f"{NFD_Y}ога", "йога", True, True),
    # casefold, not lower: German sharp s
    ("strasse", "Hauptstraße", False, True),
]


@pytest.mark.parametrize(("keyword", "title", "case_sensitive", "matches"), FOLDING)
def test_keyword_folding(keyword: str, title: str, case_sensitive: bool, matches: bool) -> None:
    t = tpl(keywords=[keyword], case_sensitive=case_sensitive)
    assert (match_reason(t, facts(title=title)) is not None) is matches


@pytest.mark.parametrize(
    ("exact", "title", "case_sensitive", "matches"),
    [
        ("анализ временных рядов", "Анализ  временных  рядов ", False, True),
        ("анализ временных рядов", "Анализ временных рядов", True, False),
        ("Анализ временных рядов", "Анализ временных рядов", True, True),
        ("Анализ временных рядов", "Анализ временных рядов ", True, False),  # exact means exact
        ("Ёлка", "елка", False, True),
        (f"{NFD_Y}ога", "Йога", False, True),
        (f"{NFD_Y}ога", "йога", True, True),
    ],
)
def test_exact_folding(exact: str, title: str, case_sensitive: bool, matches: bool) -> None:
    t = tpl(exact=[exact], case_sensitive=case_sensitive)
    assert (match_reason(t, facts(title=title)) is not None) is matches


@pytest.mark.parametrize(
    ("pattern", "title", "case_sensitive", "matches"),
    [
        (r"^ТС-\d+", "тс-1", False, True),
        (r"^ТС-\d+", "тс-1", True, False),
        (r"^ТС-\d+", "ТС-1", True, True),
        ("^йога", f"{NFD_Y}ога", True, True),  # the title is NFC before searching
        (f"^{NFD_Y}ога", "йога", True, True),  # so is the pattern
        (r"лекция\s{2}5", "лекция  5", False, True),  # regexes see the title's real spacing
        ("ёлка", "елка", False, False),  # no ё/е folding in regexes: write [её]
        ("[её]лка", "Ёлка", False, True),
    ],
)
def test_regex_case_and_normalisation(
    pattern: str, title: str, case_sensitive: bool, matches: bool
) -> None:
    t = tpl(regex=[pattern], case_sensitive=case_sensitive)
    assert (match_reason(t, facts(title=title)) is not None) is matches


def test_fold() -> None:
    assert fold("  Ёлка\u00a0 И  " + NFD_Y) == "елка и й"
    assert fold("  Ёлка  ", case_sensitive=True) == "  Ёлка  "
    assert fold(NFD_Y, case_sensitive=True) == "й"


def test_identifiers_ignore_case_even_when_case_sensitive() -> None:
    t = tpl(sources=["ZOOM"], hosts=["TEACHER@uni.example"], case_sensitive=True)
    assert match_reason(t, facts()) == "host TEACHER@uni.example; source ZOOM"


# --------------------------------------------------------------- local time


def test_weekday_and_window_use_local_time_not_utc() -> None:
    # Wednesday 23:30 UTC is already Thursday 02:30 in Moscow.
    utc = datetime(2025, 1, 1, 23, 30, tzinfo=UTC)
    assert utc.weekday() == 2
    local = facts(start_local=utc.astimezone(MSK))
    assert match_reason(tpl(weekdays=["thu"]), local) == "weekday thu"
    assert match_reason(tpl(weekdays=["wed"]), local) is None
    assert match_reason(tpl(time_window="02:00-03:00"), local) == "time 02:00-03:00"
    assert match_reason(tpl(time_window="23:00-00:00"), local) is None


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        facts(start_local=datetime(2025, 1, 2, 19, 0))


# --------------------------------------------------------------- never matching


def test_empty_rules_match_nothing() -> None:
    t = tpl()
    assert t.is_empty
    assert match_reason(t, facts()) is None
    assert mismatch_reason(t, facts()) == "template has no match conditions"
    assert match_reason(tpl(case_sensitive=True), facts()) is None


def test_disabled_template_never_matches() -> None:
    t = tpl(keywords=["анализ"], enabled=False)
    assert match_reason(t, facts()) is None
    assert mismatch_reason(t, facts()) == "template is disabled"
    assert first_match([t], facts()) is None


@pytest.mark.parametrize(
    ("rules", "changes", "why"),
    [
        ({"keywords": ["x"]}, {}, "no keyword in the title"),
        ({"all_keywords": ["анализ", "x"]}, {}, 'title lacks "x"'),
        ({"exact": ["x"]}, {}, "title is not an exact match"),
        ({"regex": ["^x"]}, {}, "no regex matches the title"),
        ({"zoom_meeting_ids": [1]}, {}, "meeting id differs"),
        ({"hosts": ["a@b"]}, {}, "host differs"),
        ({"sources": ["local"]}, {}, "source differs"),
        ({"weekdays": ["mon"]}, {}, "weekday thu not listed"),
        ({"time_window": "08:00-09:00"}, {}, "start time outside the window"),
        ({"keywords": ["анализ"]}, {}, None),
    ],
)
def test_mismatch_reason(rules: dict[str, Any], changes: dict[str, Any], why: str | None) -> None:
    assert mismatch_reason(tpl(**rules), facts(**changes)) == why


# --------------------------------------------------------------- first match wins


def test_first_match_by_order() -> None:
    broad = tpl(1, "broad", 50, sources=["zoom"])
    narrow = tpl(2, "narrow", 10, keywords=["анализ"])
    for templates in ([broad, narrow], [narrow, broad]):
        assert first_match(templates, facts()) == MatchResult(2, "narrow", 'keyword "анализ"')
    assert first_match([broad, narrow], facts(title="Семинар")) == MatchResult(
        1, "broad", "source zoom"
    )


def test_ties_are_broken_by_name_then_id() -> None:
    b = tpl(1, "b", 10, sources=["zoom"])
    a2 = tpl(3, "a", 10, sources=["zoom"])
    a1 = tpl(2, "a", 10, weekdays=["thu"])
    for templates in ([b, a2, a1], [a1, a2, b], [a2, b, a1]):
        assert first_match(templates, facts()) == MatchResult(2, "a", "weekday thu")
        assert [t.template_id for t in evaluation_order(templates)] == [2, 3, 1]


def test_disabled_and_empty_templates_are_skipped() -> None:
    templates = [
        tpl(1, "disabled", 1, keywords=["анализ"], enabled=False),
        tpl(2, "empty", 2),
        tpl(3, "other", 3, keywords=["семинар"]),
        tpl(4, "winner", 4, hosts=["teacher@uni.example"]),
    ]
    assert first_match(templates, facts()) == MatchResult(4, "winner", "host teacher@uni.example")


def test_no_templates_or_no_match() -> None:
    assert first_match([], facts()) is None
    assert first_match([tpl(keywords=["семинар"])], facts()) is None


def test_compiled_template_keeps_identity() -> None:
    t = tpl(7, "ts", 10, keywords=["Ёлка  Новая"], regex=["^A"], weekdays=["Sunday"])
    assert (t.template_id, t.name, t.order, t.enabled) == (7, "ts", 10, True)
    assert t.keywords == (("Ёлка  Новая", "елка новая"),)
    assert t.weekdays == frozenset({6})


def test_catastrophic_regex_is_cut_off_by_the_time_limit() -> None:
    # (a|aa)+$ backtracks exponentially; with `re` this title takes minutes.
    t = tpl(regex=["(a|aa)+$"])
    title = "a" * 40 + "b"
    started = time.perf_counter()
    assert match_reason(t, facts(title=title)) is None
    why = mismatch_reason(t, facts(title=title))
    assert time.perf_counter() - started < 2
    assert why is not None and "took over" in why


def test_unicode_regex_rules_stay_those_of_re() -> None:
    # \w and \b are Unicode-aware (an ASCII-only engine would miss Cyrillic words).
    assert match_reason(tpl(regex=[r"\bлекция\b"]), facts()) is not None
    assert match_reason(tpl(regex=[r"^\w+ \w+"]), facts()) is not None
    assert match_reason(tpl(regex=[r"(?<=лекция )5"]), facts()) is not None


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("(", "invalid pattern '('"),
        ("((a{100}){100}){100}", "multiply to more than 1000"),
        ("(?:x{65535}){65535}", "multiply to more than 1000"),
        ("a" * 501, "longer than 500 characters"),
    ],
)
def test_regexes_are_checked_when_saved(pattern: str, fragment: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        MatchRules.model_validate({"regex": [pattern]})
