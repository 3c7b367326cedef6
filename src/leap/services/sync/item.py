"""What a source is given (SyncDeps) and what it yields: pages of SourceItems, a recording
as the source describes it, normalised across Zoom and local folders."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from leap.context import Runtime
from leap.db.models import Recording
from leap.db.scope import Scope

PAGE = 300


@dataclass(frozen=True)
class SyncDeps:
    """What a source needs from the sync that runs it, and nothing more."""

    runtime: Runtime
    scope: Scope
    http: httpx.Client
    sleep: Callable[[float], None] | None = None


@dataclass(frozen=True)
class SourceItem:
    external_id: str
    title: str
    start_time: datetime
    duration_s: float
    size_bytes: int
    host: str | None = None
    meeting_id: str | None = None
    files: tuple[dict[str, Any], ...] = ()

    def differs(self, rec: Recording) -> bool:
        return (
            rec.title != self.title
            or rec.start_time != self.start_time
            or abs(rec.duration_s - self.duration_s) > 0.5
            or rec.size_bytes != self.size_bytes
            or rec.host != self.host
            or rec.meeting_id != self.meeting_id
            or rec.files != list(self.files)
        )

    def apply(self, rec: Recording) -> None:
        rec.title = self.title
        rec.start_time = self.start_time
        rec.duration_s = self.duration_s
        rec.size_bytes = self.size_bytes
        rec.host = self.host
        rec.meeting_id = self.meeting_id
        rec.files = list(self.files)


def chunks(items: Iterable[SourceItem], size: int = PAGE) -> Iterator[list[SourceItem]]:
    page: list[SourceItem] = []
    for item in items:
        page.append(item)
        if len(page) >= size:
            yield page
            page = []
    if page:
        yield page
