"""The page loop of commands that act on a selection of recordings, and their output at any
size: one unit of work per page (services/bulk_start.py), rows streamed as pages finish
(JSON arrays are written element by element), a progress bar on a terminal, and on a
terminal per-recording lines only while they can still be read."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any, TypeVar

from leap.cli import _plan
from leap.cli._output import json_text
from leap.cli._run import AppState
from leap.context import Context
from leap.db.models import Recording
from leap.services import bulk_start
from leap.services.recordings import RecordingFilter
from leap.specs.startable import QUOTA, Decision

if TYPE_CHECKING:
    from rich.progress import Progress

R = TypeVar("R")

# Past this many recordings a terminal gets counts and a bar, not a line per recording
# (refusals are still listed, up to the same number).
LINES = 50
# A dry-run's table shows this many rows; --json gives every one.
TABLE_ROWS = 200


def walk(
    state: AppState,
    given: list[int] | None,
    filters: RecordingFilter,
    work: Callable[[Context, list[Recording]], tuple[list[Decision], R]],
) -> Iterator[tuple[list[Decision], R]]:
    """Each page of the selection, as (decisions in the selection's order, what `work`
    returned), after the page's unit of work has committed. Ids are paged as given, each
    page one query; FILTERS by keyset (bulk_start.Cursor)."""
    if given is not None:
        for i in range(0, len(given), bulk_start.PAGE):
            chunk = given[i : i + bulk_start.PAGE]
            with state.context() as c:
                recs, missing = bulk_start.id_page(c, chunk)
                decisions, result = work(c, recs)
            by_id = {d.recording_id: d for d in [*decisions, *missing]}
            yield [by_id[rid] for rid in chunk], result
        return
    cursor = bulk_start.Cursor(filters)
    while True:
        with state.context() as c:
            recs = cursor.next(c)
            if not recs:
                return
            decisions, result = work(c, recs)
        yield decisions, result


def describe(f: RecordingFilter) -> str:
    """FILTERS written back for the audit trail (`template=lectures status=failed`)."""
    parts = [f"status={s}" for s in f.statuses]
    for name in ("template", "source", "mapped", "blank", "search", "limit"):
        value = getattr(f, name)
        if value is not None:
            parts.append(f"{name}={value}")
    if f.failed:
        parts.append("failed")
    if f.awaiting_approval:
        parts.append("awaiting-approval")
    if f.offset:
        parts.append(f"offset={f.offset}")
    for name in ("date_from", "date_to"):
        when = getattr(f, name)
        if when is not None:
            parts.append(f"{name.removeprefix('date_')}={when.date().isoformat()}")
    text = " ".join(parts) or "(all)"
    return text if len(text) <= 100 else text[:97] + "..."


class JsonArray:
    """A JSON array written to stdout one element at a time: memory does not grow with the
    selection, and the array is closed even when the command fails half-way."""

    def __init__(self) -> None:
        self.count = 0
        sys.stdout.write("[")

    def add(self, item: Any) -> None:
        text = json_text(item).replace("\n", "\n  ")
        sys.stdout.write(("," if self.count else "") + "\n  " + text)
        self.count += 1

    def close(self) -> None:
        sys.stdout.write("\n]\n" if self.count else "]\n")
        sys.stdout.flush()


class PagesBar:
    """One bar over the whole selection on a terminal (nothing elsewhere)."""

    def __init__(self, bar: Progress | None, label: str, total: int) -> None:
        self.bar = bar
        self.task = bar.add_task(label, total=total) if bar is not None else None

    def advance(self, n: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task, n)

    def context(self) -> Any:
        return self.bar if self.bar is not None else nullcontext()


class PlanPrinter:
    """A --dry-run's rows (cli/_plan.py) as pages arrive: streamed JSON, or a table of the
    first TABLE_ROWS rows; the counts on stderr at the end."""

    def __init__(self, state: AppState, verb: str) -> None:
        self.state, self.verb = state, verb
        self.array = JsonArray() if state.as_json else None
        self.shown: list[dict[str, Any]] = []
        self.acting = 0
        self.skipped: dict[str, int] = {}
        self.waiting = 0

    def add(self, decisions: Sequence[Decision]) -> None:
        for d in decisions:
            waits = not d.act and d.exit_code == QUOTA
            would = self.verb if d.act else _plan.WAIT if waits else _plan.SKIP
            row = _plan.row(d.recording_id, d.title, would, d.reason)
            if d.act:
                self.acting += 1
            elif waits:  # it fits once the quota resets (docs/quotas.md)
                self.waiting += 1
            else:
                kind = _plan.kind(d.reason)
                self.skipped[kind] = self.skipped.get(kind, 0) + 1
            if self.array is not None:
                self.array.add(row)
            elif len(self.shown) < TABLE_ROWS:
                self.shown.append(row)

    def close(self) -> None:
        if self.array is not None:
            self.array.close()
        elif self.shown:
            total = self.acting + sum(self.skipped.values())
            title = f"leap {self.verb} --dry-run"
            if total > len(self.shown):
                title += f" (first {len(self.shown)} of {total:,}; --json lists all)"
            self.state.output.table(self.shown, _plan.COLUMNS, title=title, shorten="title")
        self.state.output.message(
            _plan.counted(self.acting, self.skipped, self.verb, waiting=self.waiting)
        )
