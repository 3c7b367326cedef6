"""Times and titles: clock stamps as YouTube and LEAP print them, times parsed from an
LLM's answer, titles and themes cleaned of numbering and quotes."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from leap.text.transcript import Transcript

MAX_TITLE_CHARS = 100
MAX_THEMES = 10


def hms(seconds: float) -> str:
    """`HH:MM:SS`, rounded down: the form the prompts show and ask for."""
    total = max(0, math.floor(seconds))
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def chapter_stamp(seconds: float) -> str:
    """YouTube's chapter form: `0:00`, `12:05`, `1:02:45`."""
    total = max(0, math.floor(seconds))
    h, m, s = total // 3600, total % 3600 // 60, total % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


_CLOCK = re.compile(r"(?:(\d{1,3}):)?(\d{1,4}):(\d{1,2}(?:[.,]\d+)?)")


def parse_time(value: Any) -> float | None:
    """Seconds from `HH:MM:SS`, `H:MM:SS`, `MM:SS` (optionally with a fraction or in
    brackets), a number, or a numeric string; None when it is none of these."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    if not isinstance(value, str):
        return None
    text = value.strip().strip("[]()").strip()
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        pass
    else:
        return number if math.isfinite(number) else None
    match = _CLOCK.fullmatch(text)
    if match is None:
        return None
    hours, minutes, secs = (
        match.group(1),
        int(match.group(2)),
        float(match.group(3).replace(",", ".")),
    )
    if secs >= 60:
        return None
    if hours is not None:
        if minutes >= 60:
            return None
        return int(hours) * 3600 + minutes * 60 + secs
    return minutes * 60 + secs


_LEADING_STAMP = re.compile(r"^[\[(]?\d{1,2}(?::\d{2}){1,2}[\])]?\s*[-–—:.|]?\s*")
_LEADING_NUMBER = re.compile(r"^(?:\d{1,2}[.)]|[-*•·]|#+)\s+")
_QUOTES = "\"'«»“”„`"


def clean_title(text: Any) -> str:
    """One line, no leading timestamp, numbering, bullet or quotes, at most 100 characters."""
    if not isinstance(text, str):
        return ""
    title = " ".join(text.split())
    title = _LEADING_STAMP.sub("", title)
    title = _LEADING_NUMBER.sub("", title)
    title = title.strip().strip(_QUOTES).strip()
    if len(title) > MAX_TITLE_CHARS:
        title = title[: MAX_TITLE_CHARS - 1].rstrip() + "…"
    return title


def clean_themes(themes: Iterable[Any], limit: int = MAX_THEMES) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for raw in themes:
        theme = clean_title(raw).lstrip("#").strip() if isinstance(raw, str) else ""
        if theme and theme.casefold() not in seen:
            seen.add(theme.casefold())
            out.append(theme)
    return out[:limit]


def transcript_duration(transcript: Transcript) -> float:
    """The recording's length: the stated duration, or the last segment's end if later."""
    last = max((s.end for s in transcript.segments), default=0.0)
    return max(transcript.duration_s, last, 0.0)
