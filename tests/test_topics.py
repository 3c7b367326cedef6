"""Topics and chapters: answer parsing, snapping, YouTube chapter rules, windows and prompts, the
offline provider on synthetic lectures, and the LLM path against the fake DeepSeek."""

from __future__ import annotations

import itertools
import json
import math
import random
import re
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from leap.providers.http import RetryPolicy, make_http_client
from leap.providers.llm import ChatClient, InsufficientBalance, Usage
from leap.text.topics import (
    Topic,
    Topics,
    TopicsParseError,
    anchor_start,
    boundaries,
    build_messages,
    build_reduce_messages,
    chapter_stamp,
    chapters_check,
    clean_title,
    extract_with_llm,
    finalize,
    hms,
    parse_answer,
    parse_time,
    snap,
    windows,
)
from leap.text.topics.offline import simple_topics
from leap.text.transcript import Segment, Transcript, Word
from tests.fakes.llm import FakeChat
from tests.fakes.server import mock_transport, serve

KEY = "sk-fake-deepseek"

# ---------------------------------------------------------------------------------------------
# Synthetic lectures

EN_SECTIONS = [
    ["stationarity", "differencing", "trend", "unit root"],
    ["autocorrelation", "lag", "correlogram", "partial autocorrelation"],
    ["ARIMA", "order", "identification", "Box"],
    ["forecasting", "horizon", "interval", "prediction"],
    ["seasonality", "seasonal", "period", "decomposition"],
    ["residuals", "diagnostics", "Ljung", "whiteness"],
]
EN_FILLER = str.split("so we look at the thing and we can see that it is here the very")
RU_SECTIONS = [
    ["стационарность", "тренд", "разность", "единичный корень"],
    ["автокорреляция", "лаг", "коррелограмма", "частная автокорреляция"],
    ["модель", "порядок", "идентификация", "параметры"],
    ["прогноз", "горизонт", "интервал", "точность"],
    ["сезонность", "период", "декомпозиция", "сезонные колебания"],
]
RU_FILLER = str.split("итак мы смотрим на эти данные и видим что это вот так и есть ну значит")


def lecture(
    sections: Sequence[Sequence[str]],
    section_s: float,
    *,
    seed: int = 1,
    filler: Sequence[str] = EN_FILLER,
    language: str | None = "en",
    words: bool = False,
    boundary_pause: float = 4.0,
) -> Transcript:
    """Sentences mixing each section's vocabulary with filler, short pauses inside a section
    and a longer one before the next section starts."""
    rng = random.Random(seed)
    segs: list[Segment] = []
    t = 0.0
    for k, vocab in enumerate(sections):
        section_end = (k + 1) * section_s
        while True:
            n = rng.randint(6, 12)
            picks = [
                rng.choice(vocab) if rng.random() < 0.35 else rng.choice(filler) for _ in range(n)
            ]
            text = " ".join(picks)
            text = text[0].upper() + text[1:] + "."
            dur = 0.35 * n
            if t + dur > section_end - boundary_pause:
                break
            timed: tuple[Word, ...] = ()
            if words:
                parts = text.split()
                step = dur / len(parts)
                timed = tuple(
                    Word(round(t + i * step, 3), round(t + (i + 1) * step - 0.02, 3), p)
                    for i, p in enumerate(parts)
                )
            segs.append(Segment(round(t, 3), round(t + dur, 3), text, timed))
            t += dur + rng.uniform(0.2, 1.2)
        t = section_end
    return Transcript(language, len(sections) * section_s, tuple(segs))


def tiny(starts: Sequence[float], duration: float, language: str | None = "en") -> Transcript:
    ends = [*starts[1:], duration]
    return Transcript(
        language,
        duration,
        tuple(
            Segment(a, b - 0.5, f"sentence number {i}.")
            for i, (a, b) in enumerate(zip(starts, ends, strict=True))
        ),
    )


SMALL = tiny([0.0, 12.4, 30.0, 45.7, 80.0, 130.0, 175.2], 200.0)


# ---------------------------------------------------------------------------------------------
# Times and titles


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("00:00:00", 0.0),
        ("01:02:03", 3723.0),
        ("1:02:03", 3723.0),
        ("12:34", 754.0),
        ("75:30", 4530.0),  # minutes past an hour, no hour field
        ("00:01:02.5", 62.5),
        ("00:01:02,250", 62.25),
        ("[00:10:00]", 600.0),
        ("(05:00)", 300.0),
        (" 00:00:07 ", 7.0),
        ("90", 90.0),
        ("90.5", 90.5),
        ("-30", -30.0),
        (125, 125.0),
        (12.5, 12.5),
        (0, 0.0),
        ("01:60:00", None),
        ("00:00:60", None),
        ("1:2:3:4", None),
        ("ten minutes", None),
        ("", None),
        (None, None),
        (True, None),
        (float("nan"), None),
        ("inf", None),
        ([1, 2], None),
        ({"s": 1}, None),
    ],
)
def test_parse_time(value: Any, expected: float | None) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize(
    ("seconds", "long", "short"),
    [
        (0, "00:00:00", "0:00"),
        (9.99, "00:00:09", "0:09"),
        (754, "00:12:34", "12:34"),
        (3723.7, "01:02:03", "1:02:03"),
        (36000, "10:00:00", "10:00:00"),
        (-5, "00:00:00", "0:00"),
    ],
)
def test_time_formats(seconds: float, long: str, short: str) -> None:
    assert hms(seconds) == long
    assert chapter_stamp(seconds) == short


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Stationarity   and\n differencing ", "Stationarity and differencing"),
        ("00:12:40 - Stationarity", "Stationarity"),
        ("[01:02:03] Stationarity", "Stationarity"),
        ("12:40: Stationarity", "Stationarity"),
        ("1. Stationarity", "Stationarity"),
        ("- Stationarity", "Stationarity"),
        ("• Стационарность", "Стационарность"),
        ('"Quoted title"', "Quoted title"),
        ("«Ряды»", "Ряды"),
        ("ARIMA(1,1,1) models", "ARIMA(1,1,1) models"),
        ("2024 results", "2024 results"),  # a year is not numbering
        ("", ""),
        ("   ", ""),
        (None, ""),
        (42, ""),
        ("x" * 150, "x" * 99 + "…"),
    ],
)
def test_clean_title(raw: Any, expected: str) -> None:
    assert clean_title(raw) == expected


# ---------------------------------------------------------------------------------------------
# parse_answer


@pytest.mark.parametrize(
    ("data", "themes", "topics"),
    [
        (
            {"themes": ["a", "b"], "topics": [{"start": "00:00:00", "title": "Intro"}]},
            ["a", "b"],
            [(0.0, "Intro")],
        ),
        (
            {"themes": "time series, ARIMA; forecasting", "topics": []},
            ["time series", "ARIMA", "forecasting"],
            [],
        ),
        ({"themes": ["a", " A ", "", None, 3, "b"]}, ["a", "b"], []),
        ({"themes": [{"name": "x"}, {"title": "y"}]}, ["x", "y"], []),
        ({"topics": [{"start": "05:00", "title": "T"}]}, [], [(300.0, "T")]),
        ({"topics": [{"start": 125, "title": "T"}]}, [], [(125.0, "T")]),
        ({"topics": [{"start": "125", "title": "T"}]}, [], [(125.0, "T")]),
        ({"topics": [{"time": "0:10", "name": "T"}]}, [], [(10.0, "T")]),
        ({"topics": [{"timestamp": "00:00:10", "topic": "T"}]}, [], [(10.0, "T")]),
        ({"chapters": [{"start": "00:00:10", "title": "T"}]}, [], [(10.0, "T")]),
        ({"topics": [["00:01:00", "T"]]}, [], [(60.0, "T")]),
        (
            {"topics": ["00:01:00 - Title here", "[00:02:00] Other"]},
            [],
            [(60.0, "Title here"), (120.0, "Other")],
        ),
        (
            {
                "topics": [
                    {"start": "00:00:00", "title": "  Good  "},
                    {"start": "garbage", "title": "No time"},
                    {"start": "00:01:00", "title": "   "},
                    {"start": "00:02:00"},
                    "not a topic",
                    {"start": "-00:05", "title": "Negative"},
                ]
            },
            [],
            [(0.0, "Good")],
        ),
        ({"themes": [], "topics": None}, [], []),
        ({"themes": None, "topics": []}, [], []),
        (
            {"themes": ["Временные ряды"], "topics": [{"start": "00:00:00", "title": "Введение"}]},
            ["Временные ряды"],
            [(0.0, "Введение")],
        ),
    ],
)
def test_parse_answer(data: Any, themes: list[str], topics: list[tuple[float, str]]) -> None:
    assert parse_answer(data) == (themes, topics)


TOPIC = {"start": "00:01:00", "title": "Trend"}


@pytest.mark.parametrize(
    "key",
    [
        "themes",
        "Themes",
        "THEMES",
        "main_themes",
        "Main Themes",
        "main-themes",
        "mainThemes",
        "MAIN_THEMES",
        "MainThemes",
        " main  themes ",
        "key_themes",
        "keyThemes",
        "themes_list",
        "themesList",
        "theme_list",
        "list_of_themes",
        "theme",
        "main_theme",
        "keywords",
        "key_words",
        "keyWords",
        "key_terms",
        "key_concepts",
        "key_subjects",
        "main_subjects",
        "subjects",
        "tags",
        "темы",
        "Темы",
        "основные_темы",
        "Ключевые темы",
        "ключевые_слова",
    ],
)
def test_parse_answer_finds_themes_under_their_usual_names(key: str) -> None:
    assert parse_answer({key: ["trend", "seasonality"], "topics": [TOPIC]}) == (
        ["trend", "seasonality"],
        [(60.0, "Trend")],
    )
    # alone, as a string, and after the topics
    assert parse_answer({key: "trend; seasonality"}) == (["trend", "seasonality"], [])
    assert parse_answer({"topics": [TOPIC], key: ["x"]})[0] == ["x"]


@pytest.mark.parametrize(
    "key",
    [
        "topics",
        "Topics",
        "TOPICS",
        "chapters",
        "Chapters",
        "sections",
        "topic_list",
        "topicsList",
        "chapter_list",
        "chapters_list",
        "section_list",
        "table_of_contents",
        "Table of Contents",
        "tableOfContents",
        "toc",
        "outline",
        "timeline",
        "timestamps",
        "разделы",
        "главы",
        "Оглавление",
        "содержание",
        "main_topics",  # with timestamps: topics
        "key_topics",
        "mainTopics",
    ],
)
def test_parse_answer_finds_topics_under_their_usual_names(key: str) -> None:
    assert parse_answer({"themes": ["a"], key: [TOPIC]}) == (["a"], [(60.0, "Trend")])


@pytest.mark.parametrize("key", ["main_topics", "Main Topics", "key_topics", "key_points"])
def test_parse_answer_takes_a_list_of_bare_strings_as_themes(key: str) -> None:
    # "main topics" without times are the recording's subjects, the reference system's shape
    assert parse_answer({key: ["Trend", "Seasonality"], "chapters": [TOPIC]}) == (
        ["Trend", "Seasonality"],
        [(60.0, "Trend")],
    )
    assert parse_answer({key: "trend, seasonality"}) == (["trend", "seasonality"], [])


@pytest.mark.parametrize(
    ("data", "themes", "topics"),
    [
        # the canonical name wins over a synonym, whatever the order
        ({"keywords": ["k"], "themes": ["t"]}, ["t"], []),
        ({"main_themes": ["m"], "tags": ["t"]}, ["m"], []),
        ({"outline": [TOPIC], "topics": []}, [], []),
        # an explicit theme list wins over bare-string "main topics"
        ({"themes": ["t"], "main_topics": ["m"], "topics": [TOPIC]}, ["t"], [(60.0, "Trend")]),
        # timed "main topics" are the topics, and themes still come from their own key
        ({"main_topics": [TOPIC], "main_themes": ["m"]}, ["m"], [(60.0, "Trend")]),
        # "main topics" and "key topics" both: the timed one is the topics
        ({"main_topics": [TOPIC], "key_topics": ["k"]}, ["k"], [(60.0, "Trend")]),
        # theme items as objects under any of the usual fields
        (
            {"main_themes": [{"theme": "a"}, {"keyword": "b"}, {"term": "c"}, {"x": "d"}]},
            ["a", "b", "c"],
            [],
        ),
        ({"themes": [{"name": "", "title": "t"}]}, ["t"], []),
        # a wrapper object, however the model names it, up to three levels deep
        ({"result": {"main_themes": ["a"], "topics": [TOPIC]}}, ["a"], [(60.0, "Trend")]),
        ({"Response": {"Key Themes": ["a"]}}, ["a"], []),
        ({"data": {"answer": {"output": {"themes": ["a"]}}}}, ["a"], []),
        ({"status": "ok", "result": {"chapters": [TOPIC]}}, [], [(60.0, "Trend")]),
        ({"table_of_contents": {"themes": ["a"], "topics": [TOPIC]}}, ["a"], [(60.0, "Trend")]),
        # the first wrapper that names a list answers
        ({"a": {"themes": ["one"]}, "b": {"themes": ["two"]}}, ["one"], []),
        # the top level answers before anything nested in it
        ({"themes": ["top"], "meta": {"themes": ["nested"]}}, ["top"], []),
    ],
)
def test_parse_answer_synonyms_and_wrappers(
    data: Any, themes: list[str], topics: list[tuple[float, str]]
) -> None:
    assert parse_answer(data) == (themes, topics)


@pytest.mark.parametrize(
    "data",
    [
        {"data": {"answer": {"output": {"x": {"themes": ["too deep"]}}}}},
        {"result": {"summary": "a lecture"}},
        {"result": ["themes", "topics"]},
        {"main_themes": 5},
        {"mainThemes": {"a": 1}},
        {"Topics": "00:00 intro"},
        {"chapters": ["just", "strings"]},  # a topic list needs times; retried by the caller
    ],
)
def test_parse_answer_synonyms_still_reject_garbage(data: Any) -> None:
    with pytest.raises(TopicsParseError):
        parse_answer(data)


@pytest.mark.parametrize(
    "data",
    [
        None,
        "themes: a, b",
        ["themes", "topics"],
        42,
        {},
        {"summary": "a lecture"},
        {"topics": "00:00 intro, 05:00 body"},
        {"topics": {"start": "00:00:00", "title": "x"}},
        {"themes": 5},
        {"topics": [{"start": "soon", "title": "x"}, {"title": "y"}]},
    ],
)
def test_parse_answer_rejects_garbage(data: Any) -> None:
    with pytest.raises(TopicsParseError):
        parse_answer(data)


def test_parse_error_is_an_ordinary_failure() -> None:
    with pytest.raises(TopicsParseError) as info:
        parse_answer({"foo": 1})
    assert info.value.exit_code == 1
    assert "foo" in info.value.message


# ---------------------------------------------------------------------------------------------
# snap


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # exact starts stay; fractional ones are rounded down
        ([(0.0, "A"), (45.7, "B"), (130.0, "C")], [(0, "A"), (45, "B"), (130, "C")]),
        # made-up times move to the nearest segment start
        ([(3.0, "A"), (40.0, "B"), (100.0, "C")], [(0, "A"), (45, "B"), (80, "C")]),
        # ties go to the earlier boundary
        ([(105.0, "A")], [(80, "A")]),
        # negative, past the end, at the end, non-finite: dropped
        (
            [
                (-1.0, "Neg"),
                (0.0, "A"),
                (200.0, "End"),
                (5000.0, "Far"),
                (math.inf, "Inf"),
                (math.nan, "NaN"),
            ],
            [(0, "A")],
        ),
        # unsorted input is sorted
        ([(130.0, "C"), (0.0, "A"), (45.7, "B")], [(0, "A"), (45, "B"), (130, "C")]),
        # two snapping to the same start: the first listed wins
        ([(30.0, "A"), (31.0, "B")], [(30, "A")]),
        # closer than 10 s to the one before: dropped (12.4 -> 12 is 12 s after 0: kept)
        ([(0.0, "A"), (12.4, "B"), (15.0, "C")], [(0, "A"), (12, "B")]),
        # the same title again right after: merged into the first
        ([(0.0, "Intro"), (45.7, "intro"), (80.0, "Body")], [(0, "Intro"), (80, "Body")]),
        # the same title later, with something between: numbered
        (
            [(0.0, "Q&A"), (45.7, "Body"), (130.0, "Q&A")],
            [(0, "Q&A"), (45, "Body"), (130, "Q&A (2)")],
        ),
        # empty titles are dropped; titles are cleaned
        ([(0.0, "  "), (30.0, "1. Real")], [(30, "Real")]),
        # within 10 s of the end: no room for a chapter
        ([(0.0, "A"), (195.0, "Late")], [(0, "A"), (175, "Late")]),
        ([], []),
    ],
)
def test_snap(raw: list[tuple[float, str]], expected: list[tuple[int, str]]) -> None:
    assert snap(raw, SMALL) == [Topic(float(s), t) for s, t in expected]


def test_snap_min_gap_is_a_parameter() -> None:
    raw = [(0.0, "A"), (12.4, "B"), (30.0, "C")]
    assert [t.title for t in snap(raw, SMALL, min_gap_s=20.0)] == ["A", "C"]
    assert [t.title for t in snap(raw, SMALL, min_gap_s=0.0)] == ["A", "B", "C"]


def test_snap_without_segments_keeps_the_times() -> None:
    empty = Transcript("en", 100.0, ())
    assert snap([(33.3, "A"), (150.0, "B")], empty) == [Topic(33.0, "A")]


def test_snap_ignores_silent_segments_and_uses_sentence_starts_in_long_ones() -> None:
    text = "One sentence here. Another one starts. Third one now."
    words = tuple(Word(float(i), i + 0.8, w) for i, w in enumerate(str.split(text)))
    long = Segment(0.0, 60.0, text, words)
    tr = Transcript("en", 100.0, (long, Segment(61.0, 62.0, "   "), Segment(70.0, 80.0, "Tail.")))
    assert boundaries(tr) == [0.0, 3.0, 6.0, 70.0]
    assert snap([(2.6, "Second"), (62.0, "Tail")], tr) == [
        Topic(3.0, "Second"),
        Topic(70.0, "Tail"),
    ]


# ---------------------------------------------------------------------------------------------
# chapters


def chapters(*pairs: tuple[float, str]) -> list[Topic]:
    return [Topic(s, t) for s, t in pairs]


@pytest.mark.parametrize(
    ("topics", "duration", "ok", "reason"),
    [
        (chapters((0, "A"), (10, "B"), (20, "C")), 30.0, True, None),
        (chapters((0, "A"), (600, "B"), (1200, "C"), (3000, "D")), 3600.0, True, None),
        ([], 100.0, False, "only 0 topic(s)"),
        (chapters((0, "A"), (50, "B")), 100.0, False, "only 2 topic(s)"),
        (chapters((1, "A"), (50, "B"), (80, "C")), 100.0, False, "starts at 0:01, not 0:00"),
        (chapters((0.9, "A"), (50, "B"), (80, "C")), 100.0, True, None),  # shown as 0:00
        (chapters((0, "A"), (80, "B"), (50, "C")), 100.0, False, "chapter 3 (0:50) is not after"),
        (chapters((0, "A"), (50, "B"), (50, "C")), 100.0, False, "chapter 3 (0:50) is not after"),
        (chapters((0, "A"), (9, "B"), (50, "C")), 100.0, False, "chapter 1 (0:00 'A') is shorter"),
        (
            chapters((0, "A"), (40, "B"), (49.5, "C")),
            100.0,
            False,
            "chapter 2 (0:40 'B') is shorter",
        ),
        (chapters((0, "A"), (40, "B"), (95, "C")), 100.0, False, "chapter 3 (1:35 'C') is shorter"),
        (chapters((0, "A"), (40, "B"), (90, "C")), 100.0, True, None),  # last: exactly 10 s
        (chapters((0, "A"), (40, " "), (90, "C")), 100.0, False, "chapter 2 has no title"),
    ],
)
def test_chapters_check(topics: list[Topic], duration: float, ok: bool, reason: str | None) -> None:
    got_ok, got_reason = chapters_check(topics, duration)
    assert got_ok is ok
    if reason is None:
        assert got_reason is None
    else:
        assert got_reason is not None and reason in got_reason


@pytest.mark.parametrize(
    ("topics", "language", "expected"),
    [
        ([], "en", []),
        (chapters((0, "A"), (60, "B")), "en", chapters((0, "A"), (60, "B"))),
        (chapters((25, "A"), (60, "B")), "en", chapters((0, "A"), (60, "B"))),
        (chapters((30, "A"), (60, "B")), "en", chapters((0, "A"), (60, "B"))),
        (chapters((31, "A"), (60, "B")), "en", chapters((0, "Introduction"), (31, "A"), (60, "B"))),
        (chapters((120, "A")), "ru", chapters((0, "Вступление"), (120, "A"))),
        (chapters((120, "A")), "Russian", chapters((0, "Вступление"), (120, "A"))),
        (chapters((120, "A")), "de-AT", chapters((0, "Einleitung"), (120, "A"))),
        (chapters((120, "A")), "xx", chapters((0, "Introduction"), (120, "A"))),
        (chapters((120, "A")), None, chapters((0, "Introduction"), (120, "A"))),
    ],
)
def test_anchor_start(topics: list[Topic], language: str | None, expected: list[Topic]) -> None:
    assert anchor_start(topics, language=language) == expected


def test_finalize_snaps_anchors_and_checks() -> None:
    raw = [(175.0, "Wrap-up"), (14.0, "Setup"), (44.0, "Method"), (9999.0, "Hallucinated")]
    result = finalize(["x", "X", " y "], raw, SMALL, "llm")
    assert result == Topics(
        ["x", "y"],
        chapters((0, "Setup"), (45, "Method"), (175, "Wrap-up")),
        True,
        None,
        "llm",
    )
    late = finalize([], [(100.0, "Only")], SMALL, "llm", language="ru")
    assert late.topics == chapters((0, "Вступление"), (80, "Only"))
    assert late.chapters_ok is False
    assert late.chapters_reason is not None and "only 2" in late.chapters_reason


def test_finalize_keeps_at_most_max_topics_spread_evenly() -> None:
    tr = tiny([float(60 * i) for i in range(20)], 1200.0)
    raw = [(60.0 * i, f"T{i}") for i in range(20)]
    result = finalize([], raw, tr, "llm", max_topics=5)
    assert [t.title for t in result.topics] == ["T0", "T4", "T8", "T12", "T16"]


def test_topics_json_shapes() -> None:
    topics = Topics(["ряды"], chapters((0, "A"), (12.0, "Б")), False, "only 2 topic(s)", "simple")
    assert topics.to_json() == {
        "themes": ["ряды"],
        "topics": [{"start": 0, "title": "A"}, {"start": 12.0, "title": "Б"}],
        "chapters_ok": False,
        "chapters_reason": "only 2 topic(s)",
    }
    stored = json.loads(json.dumps(topics.to_storage()))
    assert stored["provider"] == "simple"
    assert Topics.from_storage(stored) == topics
    assert topics.chapter_lines() == ["0:00 A", "0:12 Б"]


# ---------------------------------------------------------------------------------------------
# windows


LINE = re.compile(r"^\[(\d{2}:\d{2}:\d{2})\] (.+)$")


def split_line(line: str) -> tuple[float, str]:
    match = LINE.match(line)
    assert match is not None, line
    seconds = parse_time(match.group(1))
    assert seconds is not None
    return seconds, match.group(2)


def lines_of(parts: list[tuple[float, float, str]]) -> list[str]:
    return [line for _, _, text in parts for line in text.split("\n")]


def test_windows_of_an_empty_transcript() -> None:
    assert windows(Transcript("en", 0.0, ()), max_chars=1000) == []
    assert windows(Transcript("en", 9.0, (Segment(0, 9, "   "),)), max_chars=1000) == []


def test_windows_refuse_a_tiny_budget() -> None:
    with pytest.raises(ValueError):
        windows(SMALL, max_chars=99)


def test_one_window_when_it_fits() -> None:
    parts = windows(SMALL, max_chars=10_000)
    assert len(parts) == 1
    start, end, text = parts[0]
    assert (start, end) == (0.0, SMALL.segments[-1].end)
    assert text.split("\n")[:2] == [
        "[00:00:00] sentence number 0.",
        "[00:00:12] sentence number 1.",
    ]


@pytest.mark.parametrize("max_chars", [100, 300, 1000, 5000, 24000])
def test_windows_cover_everything_in_order_within_budget(max_chars: int) -> None:
    tr = lecture(EN_SECTIONS, 300.0)
    parts = windows(tr, max_chars=max_chars)
    lines = lines_of(parts)
    # every word once, in order; a line too long for the budget is split
    assert " ".join(split_line(line)[1] for line in lines) == tr.text()
    if max_chars >= 200:
        assert lines == [f"[{hms(s.start)}] {s.text}" for s in tr.segments]
    assert all(len(text) <= max_chars for _, _, text in parts)
    assert all(a <= b for a, b, _ in parts)
    assert [a for a, _, _ in parts] == sorted(a for a, _, _ in parts)
    if len(parts) > 1 and max_chars >= 1000:
        # equal shares: no sliver of a last window
        sizes = [len(text) for _, _, text in parts]
        assert min(sizes) >= max_chars / 3
        for (_, end, _), (start, _, _) in itertools.pairwise(parts):
            assert end <= start


def test_a_huge_segment_is_split_with_interpolated_times() -> None:
    text = " ".join(f"word{i}" for i in range(2000))
    tr = Transcript("en", 1000.0, (Segment(0.0, 1000.0, text),))
    parts = windows(tr, max_chars=2000)
    assert len(parts) > 5
    assert all(len(t) <= 2000 for _, _, t in parts)
    lines = lines_of(parts)
    assert " ".join(split_line(line)[1] for line in lines) == text
    stamps = [split_line(line)[0] for line in lines]
    assert stamps == sorted(stamps) and stamps[0] == 0 and stamps[-1] > 900


def test_a_word_longer_than_a_window_is_cut() -> None:
    tr = Transcript("en", 10.0, (Segment(0.0, 10.0, "x" * 500),))
    parts = windows(tr, max_chars=200)
    assert "".join(split_line(line)[1] for line in lines_of(parts)) == "x" * 500
    assert all(len(t) <= 200 for _, _, t in parts)


# ---------------------------------------------------------------------------------------------
# prompts


def test_build_messages_is_deterministic_and_complete() -> None:
    kwargs: dict[str, Any] = {
        "language": "ru",
        "duration_s": 5400.0,
        "title": "ТС-3  Лекция",
        "max_topics": 7,
    }
    first = build_messages("[00:00:00] Привет", **kwargs)
    assert first == build_messages("[00:00:00] Привет", **kwargs)
    assert [m["role"] for m in first] == ["system", "user"]
    system, user = first[0]["content"], first[1]["content"]
    assert "JSON" in system and json.loads(system[system.index("{") :])["topics"]
    assert "Recording title: ТС-3 Лекция" in user
    assert "Recording length: 01:30:00" in user
    assert "Russian (ru)" in user
    assert "at most 7" in user
    assert "JSON" in user
    assert user.endswith("Transcript:\n[00:00:00] Привет")
    assert "excerpt" not in user


@pytest.mark.parametrize(
    ("language", "phrase"),
    [
        (None, "the language the transcript is in"),
        ("", "the language the transcript is in"),
        ("en", "English (en)"),
        ("english", "English (en)"),
        ("pt-BR", "Portuguese (pt)"),
        ("xx", "the language with code 'xx'"),
    ],
)
def test_build_messages_language(language: str | None, phrase: str) -> None:
    user = build_messages("x", language=language, duration_s=60, title=None, max_topics=3)[1][
        "content"
    ]
    assert f"Write every theme and title in {phrase}" in user
    assert "Recording title" not in user


def test_build_messages_for_an_excerpt() -> None:
    user = build_messages(
        "x", language="en", duration_s=7200, title=None, max_topics=5, span=(1800.0, 3600.5)
    )[1]["content"]
    assert "excerpt covering 00:30:00–01:00:00" in user


def test_build_reduce_messages() -> None:
    partials = [
        (["ряды"], [(0.0, "Введение"), (754.0, "Стационарность")]),
        (["ARIMA"], [(3600.0, "Модели")]),
    ]
    messages = build_reduce_messages(
        partials, language="ru", duration_s=7200.0, title=None, max_topics=12
    )
    user = messages[1]["content"]
    assert "at most 12" in user and "JSON" in user and "Russian (ru)" in user
    data = json.loads(user[user.index('{"parts"') :])
    assert data == {
        "parts": [
            {
                "themes": ["ряды"],
                "topics": [
                    {"start": "00:00:00", "title": "Введение"},
                    {"start": "00:12:34", "title": "Стационарность"},
                ],
            },
            {"themes": ["ARIMA"], "topics": [{"start": "01:00:00", "title": "Модели"}]},
        ]
    }
    assert "Введение" in user  # not \u-escaped: fewer tokens, and readable in logs
    assert messages == build_reduce_messages(
        partials, language="ru", duration_s=7200.0, title=None, max_topics=12
    )


# ---------------------------------------------------------------------------------------------
# simple_topics (offline)


def assert_valid_chapters(result: Topics, duration: float) -> None:
    assert result.chapters_ok, result.chapters_reason
    assert result.chapters_reason is None
    assert chapters_check(result.topics, duration) == (True, None)
    assert result.topics[0].start == 0


def test_simple_topics_on_a_three_hour_lecture() -> None:
    tr = lecture(EN_SECTIONS * 2, 900.0)  # 12 sections of 15 minutes
    result = simple_topics(tr)
    assert result.provider == "simple"
    assert_valid_chapters(result, tr.duration_s)
    assert len(result.topics) == 12
    # the cuts land on the long pauses between the sections
    assert [t.start for t in result.topics] == [900.0 * k for k in range(12)]
    for topic, vocab in zip(result.topics, EN_SECTIONS * 2, strict=True):
        words = {w.lower() for v in vocab for w in v.split()} | {"and", "the"}  # glue words
        assert set(topic.title.lower().split()) <= words, topic.title
        assert "," not in topic.title
        assert topic.title[0].isupper()
    assert "ARIMA" in [t.title for t in result.topics]  # an acronym keeps its case
    assert len(set(t.title for t in result.topics)) == 12
    assert 1 <= len(result.themes) <= 6
    assert not set(result.themes) & set(EN_FILLER)


def test_simple_topics_in_russian() -> None:
    tr = lecture(RU_SECTIONS, 600.0, filler=RU_FILLER, language="ru", seed=3)
    result = simple_topics(tr)
    assert_valid_chapters(result, tr.duration_s)
    assert len(result.topics) == 5
    for topic, vocab in zip(result.topics, RU_SECTIONS, strict=True):
        words = {w for v in vocab for w in v.split()}
        assert set(topic.title.lower().split()) <= words, topic.title
        assert re.search("[а-яА-Я]", topic.title)
    assert [t.title for t in result.topics] == [
        "Единичный корень",
        "Автокорреляция",
        "Параметры",
        "Горизонт",
        "Сезонные колебания",
    ]


def test_simple_topics_groups_russian_word_forms() -> None:
    text = "Модель модели моделью моделей. Ряд ряды рядов. Прогноз."
    tr = Transcript("ru", 60.0, (Segment(0.0, 10.0, text),))
    assert simple_topics(tr).themes[:2] == ["модель", "ряд"]


def test_simple_topics_cuts_at_the_longest_pause_near_the_budget() -> None:
    segs = []
    t = 0.0
    while t < 1800:
        pause = 9.0 if abs(t - 640) < 3 else 0.5  # one long pause near 10:40
        segs.append(Segment(t, t + 5.0, "Words about lakes."))
        t += 5.0 + pause
    tr = Transcript("en", 1800.0, tuple(segs))
    result = simple_topics(tr, target_section_s=600.0)
    assert len(result.topics) == 3
    long_pause_end = next(s.start for p, s in itertools.pairwise(segs) if s.start - p.end > 5)
    assert result.topics[1].start == math.floor(long_pause_end)
    assert_valid_chapters(result, tr.duration_s)
    # Three sections on one subject: the third repeats a title, numbered.
    assert [t.title for t in result.topics] == ["Words", "Lakes", "Words (2)"]


@pytest.mark.parametrize(
    ("duration", "count"),
    [(60.0, 1), (300.0, 1), (360.0, 3), (1200.0, 3), (3000.0, 5), (36000.0, 12)],
)
def test_simple_topics_section_count(duration: float, count: int) -> None:
    segs = tuple(Segment(float(t), t + 4.0, f"Point {t}.") for t in range(0, int(duration) - 4, 5))
    result = simple_topics(Transcript("en", duration, segs))
    assert len(result.topics) == count
    if count >= 3:
        assert_valid_chapters(result, duration)
    else:
        assert result.chapters_ok is False
        assert result.chapters_reason is not None and "only 1" in result.chapters_reason


def test_simple_topics_respects_its_knobs() -> None:
    tr = lecture(EN_SECTIONS, 600.0)
    result = simple_topics(tr, target_section_s=300.0, max_topics=8)
    assert len(result.topics) == 8
    assert_valid_chapters(result, tr.duration_s)
    starts = [t.start for t in result.topics]
    assert all(b - a >= 120 for a, b in itertools.pairwise(starts))


def test_simple_topics_without_speech() -> None:
    for tr in (Transcript("en", 0.0, ()), Transcript("en", 100.0, (Segment(0, 5, "  "),))):
        result = simple_topics(tr)
        assert result == Topics([], [], False, "the transcript has no speech", "simple")


def test_simple_topics_with_only_stopwords_falls_back_to_part_numbers() -> None:
    segs = tuple(Segment(float(t), t + 4.0, "и вот так это") for t in range(0, 1200, 5))
    result = simple_topics(Transcript("ru", 1200.0, segs))
    assert [t.title for t in result.topics] == ["Часть 1", "Часть 2", "Часть 3"]
    assert result.themes == []


# ---------------------------------------------------------------------------------------------
# extract_with_llm against the fake


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake() -> FakeChat:
    return FakeChat(api_key=KEY)


@pytest.fixture
def http(fake: FakeChat) -> Iterator[httpx.Client]:
    with make_http_client(transport=mock_transport(fake.handler)) as client:
        yield client


@pytest.fixture
def chat(http: httpx.Client) -> ChatClient:
    policy = RetryPolicy(max_attempts=5, budget_s=60.0, rng=random.Random(3))
    return ChatClient(
        http, base_url="https://api.deepseek.com", api_key=KEY, policy=policy, sleep=Sleeps()
    )


LECTURE = lecture(EN_SECTIONS, 150.0)  # 15 minutes: one window


def assert_on_segment_starts(result: Topics, tr: Transcript) -> None:
    starts = {math.floor(s.start) for s in tr.segments}
    assert all(t.start in starts or t.start == 0 for t in result.topics)


def test_extract_with_llm(fake: FakeChat, chat: ChatClient) -> None:
    result, usage = extract_with_llm(chat, LECTURE, title="Time series 3", max_topics=6)
    assert fake.requests == 1
    assert result.provider == "llm"
    assert_valid_chapters(result, LECTURE.duration_s)
    assert len(result.topics) == 6
    assert_on_segment_starts(result, LECTURE)
    assert result.themes
    assert usage == Usage(fake.prompt_tokens, fake.completion_tokens)
    user = fake.bodies[0]["messages"][1]["content"]
    assert "Recording title: Time series 3" in user and "English (en)" in user


def test_extract_with_llm_keeps_themes_under_another_name(fake: FakeChat, chat: ChatClient) -> None:
    def answer(messages: list[dict[str, Any]]) -> dict[str, Any]:
        plain = fake.default_answer(messages)
        return {"result": {"main_themes": plain["themes"], "Chapters": plain["topics"]}}

    fake.answer = answer
    result, _ = extract_with_llm(chat, LECTURE, max_topics=6)
    assert (
        result.themes and result.themes == fake.default_answer(fake.bodies[0]["messages"])["themes"]
    )
    assert_valid_chapters(result, LECTURE.duration_s)


def test_extract_with_llm_keeps_themes_under_another_name_in_map_reduce(
    fake: FakeChat, chat: ChatClient
) -> None:
    def answer(messages: list[dict[str, Any]]) -> dict[str, Any]:
        plain = fake.default_answer(messages)
        return {"Key Themes": plain["themes"], "topics": plain["topics"]}

    fake.answer = answer
    tr = lecture(EN_SECTIONS * 2, 900.0)
    result, _ = extract_with_llm(chat, tr, max_chars_per_window=20000, max_topics=12)
    assert fake.requests > 2  # several windows and a merge
    assert result.themes


def test_extract_with_llm_fixes_bad_timestamps(fake: FakeChat, chat: ChatClient) -> None:
    fake.bad_timestamps = True
    result, _ = extract_with_llm(chat, LECTURE, max_topics=6)
    assert_valid_chapters(result, LECTURE.duration_s)
    titles = [t.title for t in result.topics]
    assert "Past the end" not in titles and "Before the start" not in titles
    assert "Near duplicate" not in titles
    starts = [t.start for t in result.topics]
    assert starts == sorted(set(starts))
    assert all(0 <= s < LECTURE.duration_s for s in starts)
    assert_on_segment_starts(result, LECTURE)


def test_extract_with_llm_survives_deepseek_quirks(fake: FakeChat, chat: ChatClient) -> None:
    fake.keepalive_lines = 10
    fake.inject("whitespace", 2)
    result, usage = extract_with_llm(chat, LECTURE, max_topics=6)
    assert_valid_chapters(result, LECTURE.duration_s)
    assert fake.requests == 3
    assert usage == Usage(fake.prompt_tokens, fake.completion_tokens)


@pytest.mark.parametrize("kind", ["429", "503", "drop", "fenced", "wrong_shape"])
def test_extract_with_llm_retries(fake: FakeChat, chat: ChatClient, kind: str) -> None:
    fake.inject(kind, 1)
    result, _ = extract_with_llm(chat, LECTURE, max_topics=6)
    assert_valid_chapters(result, LECTURE.duration_s)
    assert fake.requests == (1 if kind == "fenced" else 2)


def test_extract_with_llm_gives_up_on_garbage(fake: FakeChat, chat: ChatClient) -> None:
    fake.inject("wrong_shape", 2)
    with pytest.raises(TopicsParseError):
        extract_with_llm(chat, LECTURE, max_topics=6)


def test_extract_with_llm_insufficient_balance_exits_4(fake: FakeChat, chat: ChatClient) -> None:
    fake.inject("402")
    with pytest.raises(InsufficientBalance) as info:
        extract_with_llm(chat, LECTURE)
    assert info.value.exit_code == 4
    assert "insufficient balance" in str(info.value).lower()
    assert fake.requests == 1


def test_extract_with_llm_map_reduce(fake: FakeChat, chat: ChatClient) -> None:
    tr = lecture(EN_SECTIONS * 2, 900.0)  # 3 hours
    parts = windows(tr, max_chars=12_000)
    assert len(parts) >= 4
    result, usage = extract_with_llm(chat, tr, max_chars_per_window=12_000, max_topics=12)
    assert fake.requests == len(parts) + 1
    reduce_prompt = fake.bodies[-1]["messages"][1]["content"]
    assert '{"parts"' in reduce_prompt
    for i, body in enumerate(fake.bodies[:-1]):
        assert "excerpt covering" in body["messages"][1]["content"], i
    assert_valid_chapters(result, tr.duration_s)
    assert 3 <= len(result.topics) <= 13
    assert_on_segment_starts(result, tr)
    assert usage == Usage(fake.prompt_tokens, fake.completion_tokens)
    # later windows' topics made it through the merge
    assert result.topics[-1].start > tr.duration_s / 2


def test_extract_with_llm_falls_back_when_the_merge_is_garbage(
    fake: FakeChat, chat: ChatClient
) -> None:
    tr = lecture(EN_SECTIONS * 2, 900.0)
    count = len(windows(tr, max_chars=12_000))

    def answer(messages: list[dict[str, Any]]) -> dict[str, Any]:
        if '{"parts"' in messages[-1]["content"]:
            return {"summary": "no"}
        return fake.default_answer(messages)

    fake.answer = answer
    result, usage = extract_with_llm(chat, tr, max_chars_per_window=12_000, max_topics=10)
    assert fake.requests == count + 2  # the merge asked twice, then the windows' answers used
    assert_valid_chapters(result, tr.duration_s)
    assert len(result.topics) <= 11
    assert result.themes
    assert usage.prompt_tokens == fake.prompt_tokens


def test_extract_with_llm_on_an_empty_transcript(fake: FakeChat, chat: ChatClient) -> None:
    result, usage = extract_with_llm(chat, Transcript("en", 0.0, ()))
    assert result.chapters_ok is False and result.topics == []
    assert usage == Usage()
    assert fake.requests == 0


def test_extract_with_llm_in_russian_over_real_http() -> None:
    fake = FakeChat(api_key=KEY)
    fake.keepalive_lines = 3
    fake.keepalive_delay = 0.01
    fake.inject("503")
    tr = lecture(RU_SECTIONS, 600.0, filler=RU_FILLER, language="ru", seed=5)
    with serve(fake.handler) as url, make_http_client() as http:
        chat = ChatClient(
            http,
            base_url=url,
            api_key=KEY,
            policy=RetryPolicy(rng=random.Random(1)),
            sleep=Sleeps(),
        )
        result, usage = extract_with_llm(chat, tr, max_chars_per_window=8000, max_topics=8)
    assert fake.served["503"] == 1
    assert_valid_chapters(result, tr.duration_s)
    assert all(re.search("[а-яА-Я]", t.title) for t in result.topics)
    assert "Russian (ru)" in fake.bodies[-1]["messages"][1]["content"]
    assert usage.total_tokens > 0
