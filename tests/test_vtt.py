from __future__ import annotations

import pytest

from leap.errors import UsageError
from leap.text.vtt import cut_to, parse_vtt

ZOOM = """WEBVTT

1
00:00:01.500 --> 00:00:04.000
Анна Петрова: Добрый вечер, начинаем.

2
00:00:04.200 --> 00:01:02.030
Анна Петрова: Сегодня <i>ARIMA</i> &amp; сезонность.

3
01:00:00.000 --> 01:00:02.000
конец
"""


def test_parse_zoom_transcript() -> None:
    t = parse_vtt(ZOOM, language="ru")
    assert [s.start for s in t.segments] == [1.5, 4.2, 3600.0]
    assert t.segments[1].end == pytest.approx(62.03)
    assert t.segments[1].text == "Анна Петрова: Сегодня ARIMA & сезонность."
    assert t.duration_s == 3602.0 and t.language == "ru"


def test_short_timestamps_and_crlf() -> None:
    t = parse_vtt("WEBVTT\r\n\r\n00:01.000 --> 00:02.500\r\nhi\r\n")
    assert [(s.start, s.end, s.text) for s in t.segments] == [(1.0, 2.5, "hi")]


def test_not_vtt() -> None:
    with pytest.raises(UsageError):
        parse_vtt("1\n00:00:01,000 --> 00:00:02,000\nsrt\n")


def test_cut_to_retimes_and_clips() -> None:
    t = cut_to(parse_vtt(ZOOM), 3.0, 60.0)
    assert [(round(s.start, 2), round(s.end, 2)) for s in t.segments] == [(0.0, 1.0), (1.2, 57.0)]
    assert t.duration_s == 57.0
