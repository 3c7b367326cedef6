"""Subtitle cues and their SRT/WebVTT renderings, proved well-formed by independent parsers
(srt, webvtt-py): line lengths, no overlaps, no lost or repeated words, Cyrillic, escaping."""

from __future__ import annotations

import html
import io
import itertools
import random
from datetime import timedelta

import pytest
import srt
import webvtt

from leap.text.subtitles import Cue, build_cues, to_srt, to_vtt
from leap.text.transcript import Segment, Transcript, Word

EN = (
    "So today we are going to talk about stationarity, which is the single most important "
    "property of a time series. A series is stationary when its mean and variance do not "
    "change over time! Why does that matter? Because almost every classical model, from "
    "autoregressions to ARIMA, assumes it; differencing is the usual cure."
)
RU = (
    "Итак, сегодня мы поговорим о стационарности временных рядов. Ряд называется "
    "стационарным, если его среднее и дисперсия не меняются со временем. Почему это важно? "
    "Потому что почти все классические модели, от авторегрессии до АРПСС, это предполагают; "
    "обычное лекарство — взятие разностей."
)


def timed_words(text: str, start: float, *, rate: float = 0.3, gap: float = 0.05) -> list[Word]:
    out = []
    t = start
    for word in text.split():
        out.append(Word(round(t, 3), round(t + rate, 3), word))
        t += rate + gap
    return out


def with_words(*texts: str, pause: float = 0.6, language: str = "en") -> Transcript:
    segs = []
    t = 0.0
    for text in texts:
        words = timed_words(text, t)
        # Whisper-style: words carry a leading space; the segment text is the joined words.
        spaced = tuple(Word(w.start, w.end, " " + w.text) for w in words)
        segs.append(Segment(words[0].start, words[-1].end, text, spaced))
        t = words[-1].end + pause
    return Transcript(language, t, tuple(segs))


def without_words(*spans: tuple[float, float, str], language: str = "en") -> Transcript:
    segs = tuple(Segment(a, b, text) for a, b, text in spans)
    return Transcript(language, max(b for _, b, _ in spans), segs)


def cue_words(cues: list[Cue]) -> list[str]:
    return [w for cue in cues for line in cue.lines for w in line.split()]


def source_words(tr: Transcript) -> list[str]:
    out: list[str] = []
    for seg in tr.segments:
        if seg.words and any(w.text.strip() for w in seg.words):
            out += [p for w in seg.words for p in w.text.split()]
        else:
            out += seg.text.split()
    return out


def seconds(stamp: str) -> float:
    hours, minutes, secs = stamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(secs)


def assert_well_formed(
    cues: list[Cue],
    tr: Transcript,
    *,
    max_line: int = 42,
    max_lines: int = 2,
    min_gap: float = 0.08,
) -> None:
    assert cue_words(cues) == source_words(tr)  # nothing lost, nothing repeated, in order
    for cue in cues:
        assert cue.end > cue.start >= 0
        assert 1 <= len(cue.lines) <= max_lines
        for line in cue.lines:
            assert line == line.strip() and line
            assert len(line) <= max_line or " " not in line, line
    for a, b in itertools.pairwise(cues):
        assert a.end + min_gap <= b.start + 1e-9, (a, b)

    parsed = list(srt.parse(to_srt(cues)))
    assert [s.index for s in parsed] == list(range(1, len(cues) + 1))
    for sub, cue in zip(parsed, cues, strict=True):
        assert sub.start == timedelta(milliseconds=round(cue.start * 1000))
        assert sub.end == timedelta(milliseconds=round(cue.end * 1000))
        assert sub.content == cue.text.replace("-->", "->")

    captions = webvtt.from_string(to_vtt(cues)).captions
    assert len(captions) == len(cues)
    for caption, cue in zip(captions, cues, strict=True):
        # webvtt-py 0.6 truncates *_in_seconds to whole seconds: parse the stamps instead.
        assert abs(seconds(caption.start) - cue.start) < 0.0006
        assert abs(seconds(caption.end) - cue.end) < 0.0006
        assert html.unescape(caption.text) == cue.text


# ---------------------------------------------------------------------------------------------
# Cues


@pytest.mark.parametrize("text", [EN, RU])
def test_cues_from_words(text: str) -> None:
    tr = with_words(*[s.strip() + "." for s in text.split(".") if s.strip()])
    cues = build_cues(tr)
    assert_well_formed(cues, tr)
    assert len(cues) > 3
    for cue in cues:
        assert cue.end - cue.start <= 6.0 + 1e-9


def test_cyrillic_text_is_kept_exactly() -> None:
    tr = with_words(RU, language="ru")
    cues = build_cues(tr)
    assert_well_formed(cues, tr)
    assert "АРПСС," in " ".join(cue_words(cues))
    assert "Итак," in cues[0].lines[0]
    assert "Итак," in to_srt(cues) and "Итак," in to_vtt(cues)


def test_cues_from_segments_without_words() -> None:
    tr = without_words((0.0, 8.0, EN[:150]), (9.0, 20.0, RU[:200]), (25.0, 26.0, "Вопросы?"))
    cues = build_cues(tr)
    assert_well_formed(cues, tr)
    # a segment's words stay inside its time
    seg_cues = [c for c in cues if c.start < 8.0]
    assert seg_cues and all(c.start >= 0.0 for c in seg_cues)
    assert cues[-1].lines == ("Вопросы?",)
    assert cues[-1].start == 25.0


def test_breaks_after_a_sentence() -> None:
    tr = with_words("This is the first sentence of the lecture. And here comes the second one.")
    cues = build_cues(tr)
    assert [c.text.replace("\n", " ") for c in cues] == [
        "This is the first sentence of the lecture.",
        "And here comes the second one.",
    ]


def test_a_short_sentence_joins_the_next() -> None:
    tr = with_words("Yes. We continue with the model.")
    assert [c.text for c in build_cues(tr)] == ["Yes. We continue with the model."]


def test_breaks_at_pauses() -> None:
    words = (
        Word(0.0, 0.3, "first"),
        Word(0.35, 0.6, "part"),
        Word(2.0, 2.3, "second"),
        Word(2.35, 2.6, "part"),
    )
    tr = Transcript("en", 3.0, (Segment(0.0, 2.6, "first part second part", words),))
    cues = build_cues(tr)
    assert [c.lines for c in cues] == [("first part",), ("second part",)]
    assert_well_formed(cues, tr)


def test_long_speech_is_cut_by_max_duration() -> None:
    words = tuple(Word(i * 0.5, i * 0.5 + 0.45, f"w{i}") for i in range(100))
    tr = Transcript("en", 50.0, (Segment(0.0, 50.0, " ".join(w.text for w in words), words),))
    cues = build_cues(tr, max_duration=3.0)
    assert_well_formed(cues, tr)
    assert all(c.end - c.start <= 3.0 + 1e-9 for c in cues)
    assert len(cues) >= 16


def test_line_breaks_are_balanced() -> None:
    text = "one two three four five six seven eight nine ten eleven twelve"  # 62 chars
    tr = with_words(text)
    (cue,) = build_cues(tr, max_duration=60)
    assert len(cue.lines) == 2
    assert abs(len(cue.lines[0]) - len(cue.lines[1])) <= len("twelve")


def test_line_breaks_prefer_punctuation() -> None:
    tr = with_words("So we fit a model, and then check the residuals")
    (cue,) = build_cues(tr, max_duration=60)
    assert cue.lines == ("So we fit a model,", "and then check the residuals")
    # ... but not at any price
    tr = with_words("We fit it, and then we check the residuals very carefully")
    (cue,) = build_cues(tr, max_duration=60)
    assert cue.lines == ("We fit it, and then we check", "the residuals very carefully")


def test_equal_balance_prefers_a_shorter_first_line() -> None:
    (cue,) = build_cues(with_words("abc defgh ijk"), max_line=9)
    assert cue.lines == ("abc", "defgh ijk")


def test_short_text_stays_on_one_line() -> None:
    (cue,) = build_cues(with_words("Short and sweet."))
    assert cue.lines == ("Short and sweet.",)


@pytest.mark.parametrize(("max_line", "max_lines"), [(20, 1), (32, 2), (42, 2), (30, 3)])
def test_line_limits(max_line: int, max_lines: int) -> None:
    tr = with_words(EN, RU)
    cues = build_cues(tr, max_line=max_line, max_lines=max_lines, max_duration=30)
    assert_well_formed(cues, tr, max_line=max_line, max_lines=max_lines)


def test_a_word_longer_than_a_line_gets_a_line_of_its_own() -> None:
    url = "https://example.com/a/very/long/path/that/does/not/fit/anywhere"
    tr = with_words(f"See {url} for details.")
    cues = build_cues(tr)
    assert_well_formed(cues, tr)
    assert any(line == url for c in cues for line in c.lines)


def test_min_duration_is_granted_when_there_is_room() -> None:
    words = (Word(0.0, 0.1, "Hi."), Word(5.0, 5.3, "Bye."))
    tr = Transcript("en", 6.0, (Segment(0.0, 5.3, "Hi. Bye.", words),))
    cues = build_cues(tr)
    assert [(c.start, c.end) for c in cues] == [(0.0, 0.8), (5.0, 5.8)]


def test_min_duration_yields_to_the_next_cue() -> None:
    words = (Word(0.0, 0.1, "Hi."), Word(0.5, 0.8, "Bye."))
    tr = Transcript("en", 2.0, (Segment(0.0, 0.8, "Hi. Bye.", words),))
    cues = build_cues(tr, pause_break=0.2)
    assert [(c.start, c.end) for c in cues] == [(0.0, 0.42), (0.5, 1.3)]
    assert_well_formed(cues, tr)


def test_messy_timings_still_give_valid_cues() -> None:
    segs = (
        Segment(5.0, 5.0, "zero length segment here"),
        Segment(4.0, 9.0, "starts before the previous one", (
            Word(4.0, 3.0, "starts"),  # end before start
            Word(4.0, 4.0, "before"),
            Word(3.5, 4.1, "the"),  # out of order
            Word(4.2, 4.6, "previous"),
            Word(4.6, 4.7, "one"),
        )),
        Segment(9.0, 12.0, "   "),
        Segment(12.0, 13.0, "", (Word(12.0, 12.5, " "),)),
        Segment(12.1, 12.2, "tiny"),
    )  # fmt: skip
    tr = Transcript("en", 13.0, segs)
    cues = build_cues(tr)
    assert_well_formed(cues, tr)
    assert cue_words(cues) == str.split(
        "zero length segment here starts before the previous one tiny"
    )


def test_empty_transcript() -> None:
    tr = Transcript("en", 0.0, (Segment(0.0, 1.0, "  "),))
    assert build_cues(tr) == []
    assert to_srt([]) == ""
    assert to_vtt([]) == "WEBVTT\n"
    assert webvtt.from_string(to_vtt([])).captions == []


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        build_cues(with_words("x"), max_line=0)


@pytest.mark.parametrize("seed", range(12))
def test_random_transcripts(seed: int) -> None:
    rng = random.Random(seed)
    vocab = (EN + " " + RU).split()
    segs = []
    t = 0.0
    for _ in range(rng.randint(1, 40)):
        n = rng.randint(1, 30)
        text = " ".join(rng.choice(vocab) for _ in range(n))
        if rng.random() < 0.5:
            words = tuple(
                timed_words(text, t, rate=rng.uniform(0.05, 0.6), gap=rng.uniform(0, 0.4))
            )
            end = words[-1].end
        else:
            words = ()
            end = t + rng.uniform(0.0, 12.0)
        segs.append(Segment(t, end, text, words))
        t = end + rng.choice([0.0, 0.05, 0.5, 3.0, -0.2])
    tr = Transcript("en", t, tuple(segs))
    max_line = rng.choice([20, 32, 42])
    cues = build_cues(tr, max_line=max_line, max_duration=rng.uniform(2.0, 7.0))
    assert_well_formed(cues, tr, max_line=max_line)


# ---------------------------------------------------------------------------------------------
# Rendering


def test_srt_exact() -> None:
    cues = [Cue(0.0, 1.5, ("Hello", "world")), Cue(3723.456, 3725.0, ("Bye",))]
    assert to_srt(cues) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello\nworld\n\n2\n01:02:03,456 --> 01:02:05,000\nBye\n"
    )


def test_vtt_exact_and_escaped() -> None:
    cues = [Cue(0.0, 1.5, ("a < b & c > d",)), Cue(61.25, 62.0, ("x --> y", "Привет"))]
    text = to_vtt(cues)
    assert text == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:01.500\na &lt; b &amp; c &gt; d\n\n"
        "00:01:01.250 --> 00:01:02.000\nx --&gt; y\nПривет\n"
    )
    captions = webvtt.from_string(text).captions
    assert [html.unescape(c.text) for c in captions] == ["a < b & c > d", "x --> y\nПривет"]


def test_srt_keeps_an_arrow_in_the_text_from_looking_like_a_timing() -> None:
    tr = with_words("The map goes x --> y and back.")
    cues = build_cues(tr)
    rendered = to_srt(cues)
    assert rendered.count("-->") == len(cues)
    assert [s.content for s in srt.parse(rendered)] == ["The map goes x -> y and back."]


def test_markup_in_speech_round_trips() -> None:
    tr = with_words("Use <b>bold</b> & <i>italics</i> sparingly.")
    cues = build_cues(tr)
    assert_well_formed(cues, tr)
    assert "<" not in to_vtt(cues)


def test_webvtt_from_buffer_accepts_the_file() -> None:
    tr = with_words(EN, RU)
    cues = build_cues(tr)
    parsed = webvtt.from_buffer(io.StringIO(to_vtt(cues)))
    assert len(parsed.captions) == len(cues)
