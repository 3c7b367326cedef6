"""The transcript every provider is parsed into: segments (and words, where the provider
gives them) with times in seconds from the start of the processed (trimmed) audio."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    language: str | None
    duration_s: float
    segments: tuple[Segment, ...] = ()
    # Provider facts worth keeping (model, provider, chunk count); never secrets.
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]

    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    def shifted(self, offset: float) -> Transcript:
        """The same transcript with every time moved by `offset` seconds (chunk merging)."""
        return Transcript(
            self.language,
            self.duration_s,
            tuple(
                Segment(
                    s.start + offset,
                    s.end + offset,
                    s.text,
                    tuple(Word(w.start + offset, w.end + offset, w.text) for w in s.words),
                )
                for s in self.segments
            ),
            dict(self.meta),
        )

    def to_json(self) -> dict[str, Any]:
        """The `leap transcript show --format json` shape (docs/cli.md, "JSON output")."""
        return {
            "language": self.language,
            "duration_s": self.duration_s,
            "segments": [{"start": s.start, "end": s.end, "text": s.text} for s in self.segments],
            "words": [{"start": w.start, "end": w.end, "text": w.text} for w in self.words],
            "meta": self.meta,
        }

    def to_storage(self) -> dict[str, Any]:
        """Lossless form kept on disk: words stay attached to their segments."""
        return {
            "language": self.language,
            "duration_s": self.duration_s,
            "meta": self.meta,
            "segments": [
                {
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "words": [[w.start, w.end, w.text] for w in s.words],
                }
                for s in self.segments
            ],
        }

    @classmethod
    def from_storage(cls, data: dict[str, Any]) -> Transcript:
        return cls(
            data.get("language"),
            float(data.get("duration_s") or 0.0),
            tuple(
                Segment(
                    float(s["start"]),
                    float(s["end"]),
                    str(s["text"]),
                    tuple(Word(float(a), float(b), str(t)) for a, b, t in s.get("words", [])),
                )
                for s in data.get("segments", [])
            ),
            dict(data.get("meta") or {}),
        )
