"""Reading WebVTT transcripts (Zoom's TRANSCRIPT / CC files) into a Transcript. Pure."""

from __future__ import annotations

import re

from leap.errors import UsageError
from leap.text.transcript import Segment, Transcript

_TIME = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{3})")
_CUE = re.compile(rf"^\s*({_TIME.pattern})\s*-->\s*({_TIME.pattern})")
_TAG = re.compile(r"<[^>]+>")


def _seconds(text: str) -> float:
    m = _TIME.fullmatch(text.strip())
    if not m:
        raise ValueError(text)
    h, mnt, s, ms = m.groups()
    return int(h or 0) * 3600 + int(mnt) * 60 + int(s) + int(ms) / 1000


def parse_vtt(text: str, *, language: str | None = None) -> Transcript:
    """Cues become segments; voice/formatting tags are dropped, entities unescaped."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if not lines or not lines[0].lstrip("\ufeff").startswith("WEBVTT"):
        raise UsageError("not a WebVTT file (no WEBVTT header)")
    segments: list[Segment] = []
    i = 0
    while i < len(lines):
        m = _CUE.match(lines[i])
        if not m:
            i += 1
            continue
        start, end = _seconds(m.group(1)), _seconds(m.group(6))
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip():
            body.append(lines[i].strip())
            i += 1
        words = " ".join(_TAG.sub("", b) for b in body).strip()
        words = words.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        if words and end > start:
            segments.append(Segment(start, end, words))
    segments.sort(key=lambda s: s.start)
    duration = max((s.end for s in segments), default=0.0)
    return Transcript(language, duration, tuple(segments), {"provider": "zoom-vtt"})


def cut_to(transcript: Transcript, start_s: float, end_s: float) -> Transcript:
    """The part of a transcript of the original recording that survives a trim, re-timed to
    the trimmed video (cues straddling a cut are clipped)."""
    kept = []
    for s in transcript.segments:
        if s.end <= start_s or s.start >= end_s:
            continue
        kept.append(Segment(max(s.start, start_s) - start_s, min(s.end, end_s) - start_s, s.text))
    return Transcript(transcript.language, end_s - start_s, tuple(kept), dict(transcript.meta))
