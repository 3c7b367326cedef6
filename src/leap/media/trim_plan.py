"""Decide where to trim a recording: cut dead air at the start and end, never inside speech.

Pure: takes a duration and detected intervals, returns a TrimPlan that says why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "Interval",
    "TrimPlan",
    "TrimSettings",
    "intersect",
    "normalise",
    "plan_trim",
]


@dataclass(frozen=True)
class Interval:
    """A time span in seconds from the start of the file; `end` is exclusive."""

    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class TrimSettings:
    """Knobs for plan_trim; the defaults suit lectures and meetings.

    `edge_tolerance_s`: a silence that begins within this much of 0 (or ends within this
    much of the duration) counts as the lead-in (tail); decoders often report 0.02 s, a
    click or an encoder's priming samples can push it further.
    """

    min_lead_silence_s: float = 5.0
    min_tail_silence_s: float = 5.0
    pad_s: float = 1.5
    min_keep_s: float = 30.0
    max_cut_fraction: float = 0.9
    edge_tolerance_s: float = 0.5

    def __post_init__(self) -> None:
        for name in (
            "min_lead_silence_s",
            "min_tail_silence_s",
            "pad_s",
            "min_keep_s",
            "edge_tolerance_s",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")
        if not (0 < self.max_cut_fraction <= 1):
            raise ValueError(f"max_cut_fraction must be in (0, 1], not {self.max_cut_fraction!r}")


@dataclass(frozen=True)
class TrimPlan:
    """Keep [start_s, end_s). `cut` is False when the whole recording is kept; `reason` says why."""

    start_s: float
    end_s: float
    reason: str
    cut: bool

    @property
    def kept_s(self) -> float:
        return self.end_s - self.start_s


def normalise(intervals: Iterable[Interval], duration_s: float) -> list[Interval]:
    """Clip to [0, duration], drop empty or non-finite ones, sort, merge overlapping/touching."""
    clipped = sorted(
        (max(0.0, iv.start), min(duration_s, iv.end))
        for iv in intervals
        if math.isfinite(iv.start) and math.isfinite(iv.end)
    )
    merged: list[list[float]] = []
    for start, end in clipped:
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [Interval(s, e) for s, e in merged]


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """Intersection of two normalised (sorted, disjoint) interval lists."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i].start, b[j].start), min(a[i].end, b[j].end)
        if start < end:
            out.append(Interval(start, end))
        # Advance whichever ends first; the other may still overlap the next one.
        if a[i].end < b[j].end:
            i += 1
        else:
            j += 1
    return out


def plan_trim(
    duration_s: float,
    silences: Sequence[Interval],
    settings: TrimSettings = TrimSettings(),
    *,
    blacks: Sequence[Interval] | None = None,
    start_override: float | None = None,
    end_override: float | None = None,
) -> TrimPlan:
    """Plan the trim of a recording `duration_s` long.

    Dead air is silence; when `blacks` is given (black detection ran, even if it found
    nothing) dead air is where silence and black video overlap, so a silent slide with content
    is kept. `blacks=None` means the video was not analysed and silence alone decides.

    The start cut lies inside the lead-in dead air (its end minus `pad_s`), the end cut inside
    the tail dead air (its start plus `pad_s`): a cut never lands in speech. A lead-in or tail
    shorter than its threshold is kept. The whole recording is kept, with the reason, when the
    result would be shorter than `min_keep_s` or would lose more than `max_cut_fraction` of it.

    `start_override` / `end_override` win over detection: the kept part is exactly
    [start_override or 0, end_override or duration]; no detection is mixed in, so what the
    user typed is what they get. Raises ValueError for an invalid duration or override.
    """
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration must be a positive number of seconds, not {duration_s!r}")
    if start_override is not None or end_override is not None:
        return _explicit(duration_s, start_override, end_override)

    dead = normalise(silences, duration_s)
    if blacks is not None:
        dead = intersect(dead, normalise(blacks, duration_s))
    what = "silence" if blacks is None else "silence with black video"
    tol = settings.edge_tolerance_s

    lead = dead[0] if dead and dead[0].start <= tol else None
    tail = dead[-1] if dead and dead[-1].end >= duration_s - tol else None
    if lead is not None and lead is tail:
        # One dead interval spanning both edges: there is no speech to keep, so detection
        # (or the threshold) is more likely wrong than the recording empty.
        return _keep(duration_s, f"the whole recording is {what}; keeping it all")

    lead_s = lead.end if lead is not None else 0.0
    tail_s = duration_s - tail.start if tail is not None and lead is not tail else 0.0
    start = 0.0
    if lead is not None and lead_s >= settings.min_lead_silence_s:
        # Pad into the silence; a pad as long as the silence leaves the lead-in alone.
        start = lead.end - settings.pad_s
        if start <= lead.start:
            start = 0.0
    end = duration_s
    if tail is not None and tail_s >= settings.min_tail_silence_s:
        end = tail.start + settings.pad_s
        if end >= tail.end:
            end = duration_s

    if start == 0.0 and end == duration_s:
        found = f"(lead-in {lead_s:.1f} s, tail {tail_s:.1f} s)"
        if lead_s < settings.min_lead_silence_s and tail_s < settings.min_tail_silence_s:
            limit = f"{settings.min_lead_silence_s:g} s"
            if settings.min_tail_silence_s != settings.min_lead_silence_s:
                limit += f" / {settings.min_tail_silence_s:g} s"
            return _keep(duration_s, f"no lead-in or tail {what} of {limit} or more {found}")
        return _keep(
            duration_s,
            f"lead-in and tail {what} no longer than the pad {settings.pad_s:g} s {found}",
        )

    kept = end - start
    if kept < settings.min_keep_s:
        return _keep(
            duration_s,
            f"result would be shorter than {settings.min_keep_s:g} s ({kept:.1f} s); "
            "keeping the whole recording",
        )
    removed = duration_s - kept
    if removed > settings.max_cut_fraction * duration_s:
        return _keep(
            duration_s,
            f"would cut {removed / duration_s:.0%} of the recording "
            f"(more than {settings.max_cut_fraction:.0%}); likely a detection failure, "
            "keeping the whole recording",
        )

    parts: list[str] = []
    if start > 0:
        parts.append(f"{start:.1f} s of lead-in {what}")
    if end < duration_s:
        parts.append(f"{duration_s - end:.1f} s of tail {what}")
    return TrimPlan(
        start_s=start,
        end_s=end,
        reason=f"cut {' and '.join(parts)} (pad {settings.pad_s:g} s)",
        cut=True,
    )


def _explicit(duration_s: float, start: float | None, end: float | None) -> TrimPlan:
    start_s = 0.0 if start is None else start
    end_s = duration_s if end is None else end
    if not (math.isfinite(start_s) and math.isfinite(end_s)):
        raise ValueError(f"--start/--end must be numbers of seconds, not {start_s!r}/{end_s!r}")
    if start_s < 0:
        raise ValueError(f"--start {start_s:g} s is negative")
    if end_s > duration_s:
        raise ValueError(f"--end {end_s:g} s is past the end of the recording ({duration_s:.1f} s)")
    if start_s >= duration_s:
        raise ValueError(
            f"--start {start_s:g} s is not before the end of the recording ({duration_s:.1f} s)"
        )
    if start_s >= end_s:
        raise ValueError(f"--start {start_s:g} s must be before --end {end_s:g} s")
    cut = start_s > 0 or end_s < duration_s
    return TrimPlan(
        start_s=start_s,
        end_s=end_s,
        reason=f"explicit --start/--end: keep {start_s:.1f}–{end_s:.1f} s of {duration_s:.1f} s",
        cut=cut,
    )


def _keep(duration_s: float, reason: str) -> TrimPlan:
    return TrimPlan(start_s=0.0, end_s=duration_s, reason=reason, cut=False)
