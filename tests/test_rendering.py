"""Template rendering: variables, inline time formats, topic displays, validation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from leap.errors import UsageError
from leap.specs.rendering import (
    TOPICS_DISPLAYS,
    VARIABLES,
    RenderContext,
    format_time,
    render,
    render_topics,
    validate_template,
)
from leap.text.topics import Topic, Topics

MSK = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")

TOPICS = Topics(
    themes=["ряды", "ARIMA"],
    topics=[Topic(0.0, "Введение"), Topic(156.0, "Стационарность"), Topic(3723.0, "ARIMA")],
    chapters_ok=True,
    chapters_reason=None,
    provider="llm",
)

CTX = RenderContext(
    title="ТС-3 Zoom meeting",
    display_name="Анализ временных рядов",
    host="ivan@example.com",
    template="time-series",
    source="zoom",
    # 21:30 UTC on 31 Dec is already 1 Jan in Moscow (UTC+3)
    record_time=datetime(2025, 12, 31, 21, 30, 5, tzinfo=UTC),
    publish_time=datetime(2026, 1, 2, 7, 0, tzinfo=UTC),
    duration_s=5025.9,
    themes=["ряды", "ARIMA"],
    topics=TOPICS,
    tz=MSK,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{display_name}", "Анализ временных рядов"),
        ("{title}", "ТС-3 Zoom meeting"),
        ("{host}/{template}/{source}", "ivan@example.com/time-series/zoom"),
        ("{duration}", "1:23:45"),
        ("{themes}", "ряды, ARIMA"),
        ("{record_time}", "01.01.2026 00:30"),
        ("{record_time:DD.MM.YYYY}", "01.01.2026"),
        ("{record_time:YYYY-MM-DD}", "2026-01-01"),
        ("{record_time:DD-MM-YY hh:mm:ss}", "01-01-26 00:30:05"),
        ("{record_time:date}", "01.01.2026"),
        ("{record_time:time}", "00:30"),
        ("{record_time:date, time}", "01.01.2026, 00:30"),
        ("{record_time:DD.MM.YYYY г.}", "01.01.2026 г."),
        ("{publish_time:DD-MM-YY hh:mm}", "02-01-26 10:00"),
        ("{publish_time}", "02.01.2026 10:00"),
        ("{date} {time} {year}", "01.01.2026 00:30 2026"),
        ("{{display_name}}", "{display_name}"),
        ("{{{display_name}}}", "{Анализ временных рядов}"),
        ("a }} b {{", "a } b {"),
        ("{ display_name }", "Анализ временных рядов"),
        ("", ""),
        ("без переменных", "без переменных"),
        (
            "{display_name} — {record_time:DD.MM.YYYY}",
            "Анализ временных рядов — 01.01.2026",
        ),
    ],
)
def test_render_table(text: str, expected: str) -> None:
    validate_template(text)
    assert render(text, CTX) == expected


def test_duration_under_an_hour() -> None:
    assert render("{duration}", replace(CTX, duration_s=2710.0)) == "45:10"
    assert render("{duration}", replace(CTX, duration_s=0.0)) == "0:00"


def test_missing_publish_time_renders_empty() -> None:
    ctx = replace(CTX, publish_time=None)
    assert render("[{publish_time}]", ctx) == "[]"
    assert render("[{publish_time:date}]", ctx) == "[]"


def test_display_name_falls_back_to_title() -> None:
    assert render("{display_name}", replace(CTX, display_name="")) == "ТС-3 Zoom meeting"


def test_topics_none_and_themes_empty() -> None:
    ctx = replace(CTX, topics=None, themes=[])
    assert render("{themes}|{topics}", ctx) == "|"


def test_naive_record_time_is_utc() -> None:
    ctx = replace(CTX, record_time=datetime(2026, 3, 1, 12, 0))
    assert render("{record_time:hh:mm}", ctx) == "15:00"


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        # Berlin: 30 Mar 2025 01:00 UTC is 03:00 CEST (clocks jumped 02:00 -> 03:00)
        (datetime(2025, 3, 30, 0, 59, tzinfo=UTC), "30.03.2025 01:59 +1"),
        (datetime(2025, 3, 30, 1, 0, tzinfo=UTC), "30.03.2025 03:00 +2"),
        # 26 Oct 2025: 01:00 UTC -> back to 02:00 CET
        (datetime(2025, 10, 26, 0, 30, tzinfo=UTC), "26.10.2025 02:30 +2"),
        (datetime(2025, 10, 26, 1, 30, tzinfo=UTC), "26.10.2025 02:30 +1"),
        # midnight
        (datetime(2025, 12, 31, 23, 0, tzinfo=UTC), "01.01.2026 00:00 +1"),
        (datetime(2025, 12, 31, 22, 59, 59, tzinfo=UTC), "31.12.2025 23:59 +1"),
    ],
)
def test_dst_and_midnight(moment: datetime, expected: str) -> None:
    offset = moment.astimezone(BERLIN).utcoffset() or timedelta()
    text = format_time(moment, "date time", BERLIN)
    assert f"{text} +{int(offset.total_seconds() // 3600)}" == expected


def test_time_in_other_zone_of_aware_input() -> None:
    moment = datetime(2026, 1, 1, 0, 30, tzinfo=MSK)
    assert format_time(moment, "YYYY-MM-DD hh:mm", ZoneInfo("UTC")) == "2025-12-31 21:30"


# ---------------------------------------------------------------------------------------------
# Topics


@pytest.mark.parametrize(
    ("display", "stamps", "expected"),
    [
        (
            "timestamps",
            True,
            "00:00:00 — Введение\n00:02:36 — Стационарность\n01:02:03 — ARIMA",
        ),
        ("timestamps", False, "00:00:00 — Введение\n00:02:36 — Стационарность\n01:02:03 — ARIMA"),
        (
            "numbered",
            True,
            "1. 00:00:00 — Введение\n2. 00:02:36 — Стационарность\n3. 01:02:03 — ARIMA",
        ),
        ("numbered", False, "1. Введение\n2. Стационарность\n3. ARIMA"),
        ("bulleted", False, "• Введение\n• Стационарность\n• ARIMA"),
        (
            "bulleted",
            True,
            "• 00:00:00 — Введение\n• 00:02:36 — Стационарность\n• 01:02:03 — ARIMA",
        ),
        ("chapters", True, "0:00 Введение\n2:36 Стационарность\n1:02:03 ARIMA"),
        ("compact", True, "Введение · Стационарность · ARIMA"),
    ],
)
def test_topics_displays(display: str, stamps: bool, expected: str) -> None:
    assert render_topics(TOPICS, display, show_timestamps=stamps) == expected
    assert render("{topics}", CTX, topics_display=display, show_timestamps=stamps) == expected


def test_chapters_fall_back_to_timestamps() -> None:
    bad = replace(TOPICS, chapters_ok=False, chapters_reason="too short")
    assert render_topics(bad, "chapters") == render_topics(bad, "timestamps")


def test_all_displays_listed_and_empty_topics() -> None:
    empty = replace(TOPICS, topics=[])
    for display in TOPICS_DISPLAYS:
        assert render_topics(empty, display) == ""
        assert render_topics(None, display) == ""


def test_unknown_topics_display() -> None:
    with pytest.raises(UsageError, match="unknown topics_display 'table'"):
        render("{topics}", CTX, topics_display="table")


# ---------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{foo}", r"unknown variable \{foo\} in title; known: .*display_name"),
        ("{record_time:DD.MM.YYY}", r"bad time format \{record_time:DD.MM.YYY\} in title"),
        ("{record_time:Q}", "bad time format"),
        ("{record_time:}", "bad time format"),
        ("{title:DD}", r"\{title\} in title takes no format"),
        ("{display_name", "unclosed '{' in title"),
        ("a } b", "single '}' in title"),
        ("{}", r"bad field \{\} in title"),
        ("{1abc}", "bad field"),
    ],
)
def test_validate_rejects(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        validate_template(text, where="title")
    with pytest.raises(UsageError):
        render(text, CTX)


def test_every_variable_renders() -> None:
    for name in VARIABLES:
        validate_template(f"{{{name}}}")
        assert isinstance(render(f"{{{name}}}", CTX), str)


@pytest.mark.parametrize(
    ("title", "component"),
    [("A/B", "A∕B"), ("..", "_.."), ("a\\b", "a∖b"), ("~root", "_~root"), ("plain", "plain")],
)
def test_path_values_stay_inside_one_component(title: str, component: str) -> None:
    from dataclasses import replace

    from leap.specs.rendering import for_paths

    ctx = for_paths(replace(CTX, title=title))
    out = render("/srv/published/{title}/video", ctx, where="metadata.path")
    assert out == f"/srv/published/{component}/video"
