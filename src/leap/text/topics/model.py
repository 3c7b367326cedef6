"""The topics model: a chapter (Topic), a recording's themes and chapters (Topics), the
limits YouTube puts on chapters, and the error an unusable LLM answer raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from leap.errors import LeapError
from leap.providers.llm import Usage
from leap.text.topics.times import chapter_stamp

RawTopic = tuple[float, str]
Partial = tuple[list[str], list[RawTopic]]

# YouTube (docs/platforms.md, "YouTube: chapters in the description"): at least 3 chapters, the
# first at 0:00, each at least 10 s.
MIN_CHAPTERS = 3
MIN_CHAPTER_S = 10.0
# A first topic starting this close to 0:00 is moved there; a later one gets an intro before it.
LEAD_IN_S = 30.0
# Inside a segment longer than this, sentence starts (from word timings) are snap targets too.
LONG_SEGMENT_S = 30.0
SENTENCE_END = (".", "!", "?", "…", "。", "！", "？")


class TopicsParseError(LeapError):
    """The LLM's answer holds no usable themes or topics."""


class ChatJSON(Protocol):
    def complete_json(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float = ...
    ) -> tuple[dict[str, Any], Usage]: ...


@dataclass(frozen=True)
class Topic:
    start: float
    title: str


@dataclass(frozen=True)
class Topics:
    themes: list[str]
    topics: list[Topic]
    chapters_ok: bool
    chapters_reason: str | None
    provider: str

    def to_json(self) -> dict[str, Any]:
        """The `leap topics show --json` shape (docs/cli.md, "JSON output")."""
        return {
            "themes": list(self.themes),
            "topics": [{"start": t.start, "title": t.title} for t in self.topics],
            "chapters_ok": self.chapters_ok,
            "chapters_reason": self.chapters_reason,
        }

    def to_storage(self) -> dict[str, Any]:
        return {**self.to_json(), "provider": self.provider}

    @classmethod
    def from_storage(cls, data: dict[str, Any]) -> Topics:
        return cls(
            [str(t) for t in data.get("themes", [])],
            [Topic(float(t["start"]), str(t["title"])) for t in data.get("topics", [])],
            bool(data.get("chapters_ok")),
            data.get("chapters_reason"),
            str(data.get("provider") or ""),
        )

    def chapter_lines(self) -> list[str]:
        """`0:00 Title` lines for a YouTube description (valid only when chapters_ok)."""
        return [f"{chapter_stamp(t.start)} {t.title}" for t in self.topics]
