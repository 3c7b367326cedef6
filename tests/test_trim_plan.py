"""Trim planning: table-driven cases, overrides, validation, and invariants over random inputs."""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

import pytest

from leap.media.trim_plan import (
    Interval,
    TrimPlan,
    TrimSettings,
    intersect,
    normalise,
    plan_trim,
)

S = TrimSettings()  # lead/tail 5 s, pad 1.5 s, keep >= 30 s, cut <= 90 %


def iv(*pairs: tuple[float, float]) -> list[Interval]:
    return [Interval(a, b) for a, b in pairs]


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    id: str
    duration: float
    silences: list[Interval]
    start: float
    end: float
    cut: bool
    reason: str  # a substring of the reason
    settings: TrimSettings = S
    blacks: list[Interval] | None = None


CASES = [
    Case("no silences", 600, [], 0, 600, False, "no lead-in or tail silence of 5 s or more"),
    Case(
        "only lead",
        600,
        iv((0, 42)),
        40.5,
        600,
        True,
        "cut 40.5 s of lead-in silence (pad 1.5 s)",
    ),
    Case("only tail", 600, iv((500, 600)), 0, 501.5, True, "cut 98.5 s of tail silence"),
    Case(
        "lead and tail",
        3600,
        iv((0, 43.5), (3288, 3600)),
        42,
        3289.5,
        True,
        "cut 42.0 s of lead-in silence and 310.5 s of tail silence (pad 1.5 s)",
    ),
    Case("middle silence ignored", 600, iv((100, 300)), 0, 600, False, "lead-in 0.0 s, tail 0.0"),
    Case(
        "middle silence between lead and tail",
        600,
        iv((0, 10), (100, 300), (590, 600)),
        8.5,
        591.5,
        True,
        "cut 8.5 s of lead-in silence and 8.5 s of tail",
    ),
    Case("lead shorter than threshold", 600, iv((0, 4.9)), 0, 600, False, "lead-in 4.9 s"),
    Case("lead exactly at threshold", 600, iv((0, 5)), 3.5, 600, True, "cut 3.5 s of lead-in"),
    Case("tail shorter than threshold", 600, iv((595.5, 600)), 0, 600, False, "tail 4.5 s"),
    Case(
        "different thresholds in the reason",
        600,
        [],
        0,
        600,
        False,
        "of 5 s / 8 s or more",
        TrimSettings(min_tail_silence_s=8),
    ),
    Case(
        "lead within the edge tolerance",
        600,
        iv((0.45, 20)),
        18.5,
        600,
        True,
        "cut 18.5 s of lead-in",
    ),
    Case("lead just past the edge tolerance", 600, iv((0.55, 20)), 0, 600, False, "lead-in 0.0"),
    Case("tail within the edge tolerance", 600, iv((500, 599.6)), 0, 501.5, True, "tail"),
    Case("tail just past the edge tolerance", 600, iv((500, 599.4)), 0, 600, False, "tail 0.0"),
    Case(
        "result shorter than min_keep",
        100,
        iv((0, 60), (80, 100)),
        0,
        100,
        False,
        "result would be shorter than 30 s (23.0 s); keeping the whole recording",
    ),
    Case(
        "result just long enough",
        100,
        iv((0, 31.5), (58.5, 100)),
        30,
        60,
        True,
        "cut 30.0 s of lead-in silence and 40.0 s of tail",
    ),
    Case(
        "recording shorter than min_keep",
        20,
        iv((0, 8)),
        0,
        20,
        False,
        "result would be shorter than 30 s (13.5 s)",
    ),
    Case(
        "max_cut_fraction",
        3600,
        iv((0, 3000), (3200, 3600)),
        0,
        3600,
        False,
        "would cut 94% of the recording (more than 90%); likely a detection failure",
    ),
    Case(
        "whole recording silent",
        600,
        iv((0, 600)),
        0,
        600,
        False,
        "the whole recording is silence",
    ),
    Case(
        "pad longer than the lead",
        600,
        iv((0.3, 6)),
        0,
        600,
        False,
        "no longer than the pad 10 s",
        TrimSettings(pad_s=10),
    ),
    Case(
        "zero pad",
        600,
        iv((0, 42), (550, 600)),
        42,
        550,
        True,
        "(pad 0 s)",
        TrimSettings(pad_s=0),
    ),
    Case(
        "messy: unsorted, overlapping, out of range, empty, reversed",
        600,
        iv((560, 700), (-3, 10), (8, 30), (200, 200), (50, 40), (550, 570), (math.nan, 5)),
        28.5,
        551.5,
        True,
        "cut 28.5 s of lead-in silence and 48.5 s of tail",
    ),
    Case(
        "touching intervals merge into one lead",
        600,
        iv((0, 3), (3, 6)),
        4.5,
        600,
        True,
        "cut 4.5 s of lead-in",
    ),
    Case(
        "black and silence: dead air is the intersection",
        600,
        iv((0, 60), (500, 600)),
        38.5,
        521.5,
        True,
        "cut 38.5 s of lead-in silence with black video and 78.5 s of tail silence with black",
        blacks=iv((0, 40), (520, 600)),
    ),
    Case(
        "black detection ran and found none: a silent slide is kept",
        600,
        iv((0, 60), (500, 600)),
        0,
        600,
        False,
        "no lead-in or tail silence with black video",
        blacks=[],
    ),
    Case(
        "black without silence is not dead air",
        600,
        iv((300, 320)),
        0,
        600,
        False,
        "lead-in 0.0 s",
        blacks=iv((0, 100)),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_plan_trim_table(case: Case) -> None:
    plan = plan_trim(case.duration, case.silences, case.settings, blacks=case.blacks)
    assert (plan.start_s, plan.end_s, plan.cut) == pytest.approx(
        (case.start, case.end, case.cut)
    ), plan.reason
    assert case.reason in plan.reason
    assert plan.kept_s == pytest.approx(case.end - case.start)


def test_reason_reads_well() -> None:
    plan = plan_trim(3600, iv((0, 43.5), (3288, 3600)))
    assert plan == TrimPlan(
        42.0,
        3289.5,
        "cut 42.0 s of lead-in silence and 310.5 s of tail silence (pad 1.5 s)",
        True,
    )
    keep = plan_trim(3600, [])
    assert keep.reason == ("no lead-in or tail silence of 5 s or more (lead-in 0.0 s, tail 0.0 s)")


# --------------------------------------------------------------------------- overrides


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (10.0, None, (10.0, 600.0, True)),
        (None, 500.0, (0.0, 500.0, True)),
        (10.0, 500.0, (10.0, 500.0, True)),
        (0.0, 600.0, (0.0, 600.0, False)),
        # Overrides win over min_keep and max_cut_fraction: the user asked for it.
        (100.0, 101.0, (100.0, 101.0, True)),
    ],
)
def test_overrides_win(start: float | None, end: float | None, expected: tuple[float, ...]) -> None:
    plan = plan_trim(600, iv((0, 42), (550, 600)), start_override=start, end_override=end)
    assert (plan.start_s, plan.end_s, plan.cut) == expected
    assert plan.reason.startswith("explicit --start/--end")


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (-1.0, None, "--start -1 s is negative"),
        (None, 601.0, "--end 601 s is past the end of the recording (600.0 s)"),
        (300.0, 300.0, "--start 300 s must be before --end 300 s"),
        (400.0, 300.0, "--start 400 s must be before --end 300 s"),
        (700.0, None, "--start 700 s is not before the end of the recording (600.0 s)"),
        (math.nan, None, "--start/--end must be numbers of seconds, not nan/600"),
    ],
)
def test_invalid_overrides(start: float | None, end: float | None, message: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        plan_trim(600, [], start_override=start, end_override=end)


@pytest.mark.parametrize("duration", [0.0, -5.0, math.nan, math.inf])
def test_invalid_duration(duration: float) -> None:
    with pytest.raises(ValueError, match="duration must be a positive number"):
        plan_trim(duration, [])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pad_s": -1.0}, "pad_s must be a finite number >= 0"),
        ({"min_keep_s": math.inf}, "min_keep_s must be a finite number >= 0"),
        ({"max_cut_fraction": 0.0}, r"max_cut_fraction must be in \(0, 1\]"),
        ({"max_cut_fraction": 1.5}, r"max_cut_fraction must be in \(0, 1\]"),
    ],
)
def test_invalid_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrimSettings(**kwargs)


# --------------------------------------------------------------------------- interval helpers


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], []),
        (iv((5, 6), (1, 2)), iv((1, 2), (5, 6))),
        (iv((1, 4), (2, 3)), iv((1, 4))),
        (iv((1, 2), (2, 3)), iv((1, 3))),
        (iv((-5, -1), (11, 20), (3, 3), (4, 2)), []),
        (iv((-5, 1), (9, 20)), iv((0, 1), (9, 10))),
        (iv((math.inf, 5), (1, math.nan)), []),
    ],
)
def test_normalise(given: list[Interval], expected: list[Interval]) -> None:
    assert normalise(given, 10) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([], iv((0, 1)), []),
        (iv((0, 10)), iv((2, 3), (5, 12)), iv((2, 3), (5, 10))),
        (iv((0, 2), (4, 6)), iv((1, 5)), iv((1, 2), (4, 5))),
        (iv((0, 1)), iv((1, 2)), []),
    ],
)
def test_intersect(a: list[Interval], b: list[Interval], expected: list[Interval]) -> None:
    assert intersect(a, b) == expected
    assert intersect(b, a) == expected


# --------------------------------------------------------------------------- invariants


def _random_intervals(rng: random.Random, duration: float) -> list[Interval]:
    out = []
    for _ in range(rng.randint(0, 6)):
        start = rng.choice([0.0, rng.uniform(-2, 1), rng.uniform(0, duration)])
        end = rng.choice([duration, start + rng.uniform(0, duration / 3), rng.uniform(-1, 2)])
        out.append(Interval(start, end if rng.random() > 0.1 else end + 5))
    return out


def _inside(t: float, regions: list[Interval]) -> bool:
    return any(r.start <= t <= r.end for r in regions)


@pytest.mark.parametrize("seed", range(8))
def test_invariants_over_random_inputs(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(500):
        duration = rng.choice([rng.uniform(1, 60), rng.uniform(60, 4 * 3600)])
        silences = _random_intervals(rng, duration)
        blacks = _random_intervals(rng, duration) if rng.random() < 0.3 else None
        settings = TrimSettings(
            min_lead_silence_s=rng.choice([0.0, 2.0, 5.0]),
            min_tail_silence_s=rng.choice([0.0, 5.0, 30.0]),
            pad_s=rng.choice([0.0, 1.5, 10.0]),
            min_keep_s=rng.choice([0.0, 30.0]),
            max_cut_fraction=rng.choice([0.5, 0.9, 1.0]),
        )
        plan = plan_trim(duration, silences, settings, blacks=blacks)
        ctx = (duration, silences, blacks, settings, plan)

        assert 0 <= plan.start_s < plan.end_s <= duration, ctx
        assert plan.reason, ctx
        if not plan.cut:
            assert (plan.start_s, plan.end_s) == (0, duration), ctx
            continue
        assert plan.start_s > 0 or plan.end_s < duration, ctx
        assert plan.kept_s >= settings.min_keep_s, ctx
        assert duration - plan.kept_s <= settings.max_cut_fraction * duration + 1e-9, ctx
        # A cut point away from the file's edges lies in dead air (never inside speech).
        dead = normalise(silences, duration)
        if blacks is not None:
            dead = intersect(dead, normalise(blacks, duration))
        if plan.start_s > 0:
            assert _inside(plan.start_s, dead), ctx
            assert plan.reason.startswith("cut "), ctx
        if plan.end_s < duration:
            assert _inside(plan.end_s, dead), ctx
        # All of the non-dead part of the recording (speech) is kept.
        # A sliver at an edge shorter than the tolerance may go with the lead-in or tail.
        tol = settings.edge_tolerance_s
        for gap_start, gap_end in _gaps(dead, duration):
            at_edge = gap_start == 0 or gap_end == duration
            if gap_end > gap_start and not (at_edge and gap_end - gap_start <= tol):
                assert plan.start_s <= gap_start and gap_end <= plan.end_s, ctx


def _gaps(dead: list[Interval], duration: float) -> list[tuple[float, float]]:
    edges = [0.0, *[x for d in dead for x in (d.start, d.end)], duration]
    return [(edges[i], edges[i + 1]) for i in range(0, len(edges), 2)]


def test_overrides_over_random_inputs() -> None:
    rng = random.Random(99)
    for _ in range(2000):
        duration = rng.uniform(1, 10_000)
        start = rng.choice([None, rng.uniform(-10, duration + 10)])
        end = rng.choice([None, rng.uniform(-10, duration + 10)])
        try:
            plan = plan_trim(duration, [], start_override=start, end_override=end)
        except ValueError:
            s = 0.0 if start is None else start
            e = duration if end is None else end
            assert not (0 <= s < e <= duration)
            continue
        assert 0 <= plan.start_s < plan.end_s <= duration
        assert plan.start_s == (start or 0.0)
        assert plan.end_s == (duration if end is None else end)
