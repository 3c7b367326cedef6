"""drop_in_silence: what a provider wrote over a detected silence goes, real speech never."""

from __future__ import annotations

import math

import pytest

from leap.media.trim_plan import Interval
from leap.text.silence import GUARD_S, drop_in_silence, inner_silences
from leap.text.transcript import Segment, Transcript, Word


def seg(start: float, end: float, text: str, *words: tuple[float, float, str]) -> Segment:
    return Segment(start, end, text, tuple(Word(a, b, t) for a, b, t in words))


def tr(*segments: Segment, duration: float = 100.0, language: str | None = "en") -> Transcript:
    return Transcript(language, duration, segments, {"provider": "fireworks"})


def texts(t: Transcript) -> list[str]:
    return [s.text for s in t.segments]


SPEECH = seg(10.0, 14.0, "So today we talk.", (10.0, 10.4, "So"), (10.5, 14.0, "talk."))
THANKS = seg(86.6, 88.0, "Thank you.", (86.6, 87.2, "Thank"), (87.2, 88.0, "you."))


# --------------------------------------------------------------------------- inner_silences


def test_silences_are_merged_sorted_and_guarded_on_their_speech_sides() -> None:
    got = inner_silences(
        [Interval(50, 60), Interval(20, 30), Interval(25, 35), Interval(0.1, 5)], 100.0
    )
    assert [(d.start, d.end) for d, _ in got] == [(0.1, 5), (20, 35), (50, 60)]
    guarded = [(g.start, g.end) for _, g in got]
    # The lead-in touches the start of the audio: open there, guarded towards the speech.
    assert guarded == [(-math.inf, 5 - GUARD_S), (20 + GUARD_S, 35 - GUARD_S), (50.25, 59.75)]


def test_a_silence_at_the_end_is_open_past_it() -> None:
    [(detected, guarded)] = inner_silences([Interval(81.1, 99.9)], 100.0)
    assert detected == Interval(81.1, 99.9)
    assert guarded == Interval(81.1 + GUARD_S, math.inf)


def test_silences_too_short_for_the_guard_and_nonsense_are_left_out() -> None:
    bad = [Interval(40, 40.4), Interval(7, 6), Interval(math.nan, 3), Interval(2, math.inf)]
    assert inner_silences(bad, 100.0) == []
    assert inner_silences([Interval(40, 40.4)], 100.0, guard_s=0.1) != []
    with pytest.raises(ValueError, match="guard"):
        inner_silences([], 10.0, guard_s=-1)


def test_unknown_duration_never_opens_the_end() -> None:
    [(_, guarded)] = inner_silences([Interval(81.1, 88.0)], 0.0)
    assert guarded.end == 88.0 - GUARD_S


# --------------------------------------------------------------------------- segments


def test_a_segment_inside_a_silence_is_dropped_with_its_words() -> None:
    got = drop_in_silence(tr(SPEECH, THANKS, duration=88.0), [Interval(81.1, 88.0)])
    assert texts(got.transcript) == ["So today we talk."]
    assert [w.text for w in got.transcript.words] == ["So", "talk."]
    [d] = got.dropped
    assert (d.kind, d.start, d.end, d.text) == ("segment", 86.6, 88.0, "Thank you.")
    assert d.silence == Interval(81.1, 88.0)  # as detected, for the report
    assert got.segments_dropped == 1 and got.words_dropped == 0 and got.refused is None
    assert got.transcript.meta == {"provider": "fireworks"}
    assert got.transcript.duration_s == 88.0 and got.transcript.language == "en"


def test_a_hallucination_timed_past_the_end_of_the_audio_is_dropped() -> None:
    late = seg(87.5, 90.0, "Thanks for watching.")
    got = drop_in_silence(tr(SPEECH, late, duration=88.0), [Interval(81.1, 88.0)])
    assert texts(got.transcript) == ["So today we talk."]


def test_one_in_the_lead_in_and_one_mid_lecture_are_dropped() -> None:
    lead = seg(0.0, 2.0, "Subtitles by the community.")
    mid = seg(40.0, 41.5, "Thank you.")
    silences = [Interval(0.0, 9.5), Interval(30.0, 50.0)]
    got = drop_in_silence(tr(lead, SPEECH, mid, THANKS), silences)
    assert texts(got.transcript) == ["So today we talk.", "Thank you."]  # 86.6: not in silence
    assert [d.text for d in got.dropped] == ["Subtitles by the community.", "Thank you."]


@pytest.mark.parametrize(
    ("start", "end", "kept"),
    [
        (29.9, 31.0, True),  # begins in speech
        (49.0, 50.1, True),  # ends in speech
        (30.0, 31.0, True),  # starts right at the silence: within the guard
        (30.1, 31.0, True),
        (30.0 + GUARD_S, 50.0 - GUARD_S, False),  # exactly the guarded span
        (30.3, 49.7, False),
        (49.0, 49.8, True),  # runs into the guard before speech
        (20.0, 60.0, True),  # spans the whole silence and speech around it
    ],
)
def test_only_segments_wholly_inside_the_guarded_silence_go(
    start: float, end: float, kept: bool
) -> None:
    got = drop_in_silence(tr(SPEECH, seg(start, end, "x"), THANKS), [Interval(30.0, 50.0)])
    assert ("x" in texts(got.transcript)) is kept


def test_nothing_to_drop_gives_the_same_transcript() -> None:
    t = tr(SPEECH, THANKS)
    for silences in ([], [Interval(20, 30)], [Interval(88.5, 89.0)]):
        got = drop_in_silence(t, silences)
        assert got.transcript is t and got.dropped == ()


def test_silences_need_not_be_sorted_or_merged() -> None:
    mid = seg(40.0, 46.0, "Thank you.")
    got = drop_in_silence(tr(SPEECH, mid), [Interval(43, 50), Interval(30, 44)])
    assert texts(got.transcript) == ["So today we talk."]


# --------------------------------------------------------------------------- words


def test_words_in_a_silence_leave_a_kept_segment_which_then_reads_as_the_rest() -> None:
    glued = seg(
        76.0,
        88.0,
        "Thank you for listening. Thank you.",
        (76.0, 76.4, "Thank"),
        (76.4, 76.6, "you"),
        (76.6, 77.0, "for"),
        (77.0, 77.8, "listening."),
        (86.6, 87.2, "Thank"),
        (87.2, 88.0, "you."),
    )
    got = drop_in_silence(tr(SPEECH, glued, duration=88.0), [Interval(81.1, 88.0)])
    assert texts(got.transcript) == ["So today we talk.", "Thank you for listening."]
    kept = got.transcript.segments[1]
    assert (kept.start, kept.end) == (76.0, 77.8)
    assert [w.text for w in kept.words] == ["Thank", "you", "for", "listening."]
    assert [(d.kind, d.text) for d in got.dropped] == [("word", "Thank"), ("word", "you.")]
    assert got.segments_dropped == 0 and got.words_dropped == 2


def test_a_segment_that_loses_every_word_goes() -> None:
    # Its own times cross into speech, its words are all in the silence.
    loose = seg(28.0, 45.0, "Thank you.", (40.0, 40.5, "Thank"), (40.5, 41.0, "you."))
    got = drop_in_silence(tr(SPEECH, loose), [Interval(30, 50)])
    assert texts(got.transcript) == ["So today we talk."]
    assert [(d.kind, d.text) for d in got.dropped] == [("segment", "Thank you.")]


def test_a_word_stretched_into_a_silence_stays() -> None:
    # Providers let a word's end run on into the pause after it; it was still said.
    long = seg(20.0, 32.0, "We begin.", (20.0, 20.5, "We"), (20.6, 32.0, "begin."))
    got = drop_in_silence(tr(long), [Interval(21.0, 40.0)])
    assert got.transcript.segments == (long,)


def test_words_of_a_language_without_spaces_are_joined_without_them() -> None:
    glued = seg(
        10.0,
        60.0,
        "我们开始。谢谢。",
        (10.0, 11.0, "我们"),
        (11.0, 12.0, "开始。"),
        (50, 51, "谢谢。"),
    )
    got = drop_in_silence(tr(glued, language="zh"), [Interval(30, 70)])
    assert texts(got.transcript) == ["我们开始。"]


# --------------------------------------------------------------------------- safety


def test_when_most_of_the_text_is_in_silence_the_threshold_is_wrong_and_nothing_goes() -> None:
    # A far microphone: the lecturer is quieter than -35 dB for most of the recording.
    said = "and this sentence is one the lecturer really said, quietly"
    quiet = [seg(10.0 * i + 1, 10.0 * i + 5, f"{said} {i}.") for i in range(10)]
    t = tr(*quiet)
    got = drop_in_silence(t, [Interval(0.0, 60.0)])
    assert got.transcript is t
    assert got.refused is not None and "quieter than the silence threshold" in got.refused
    assert got.segments_dropped == 6  # what would have gone, for the report
    # The same silence with a lower limit refused too; with a higher one, it is applied.
    assert drop_in_silence(t, [Interval(0.0, 60.0)], max_fraction=0.7).refused is None


def test_an_empty_transcript_stays_empty() -> None:
    got = drop_in_silence(tr(duration=10.0), [Interval(0, 10)])
    assert got.transcript.segments == () and got.dropped == () and got.refused is None
