"""What a `--dry-run` prints: one row per selected recording, saying what the real command
would do to it or why it would leave it alone. The rows come from the same decision the real
run makes (each verb's service decides, the CLI only prints), so a dry-run cannot promise
what the run then does differently.

A row: `recording_id`, `title`, `would` (the verb's action, e.g. "process", or "skip"),
`reason` (why it is skipped, or a note on the action; None when there is nothing to add)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from leap.cli._run import AppState

SKIP = "skip"
WAIT = "wait"  # would start, but the owner's quota does not fit it now (docs/quotas.md)
COLUMNS = ("recording_id", "title", "would", "reason")


def row(recording_id: int, title: str, would: str, reason: str | None = None) -> dict[str, Any]:
    return {"recording_id": recording_id, "title": title, "would": would, "reason": reason}


def summary(rows: Sequence[Mapping[str, Any]], verb: str, *, dry_run: bool = True) -> str:
    """`dry run: 12 would process; 3 skipped (2 blank record, 1 running); nothing was
    changed`; before a real run (`dry_run=False`) the same counts as `plan: ...`, since the
    run itself follows."""
    acting = sum(1 for r in rows if r["would"] not in (SKIP, WAIT))
    skipped = Counter(kind(r["reason"]) for r in rows if r["would"] == SKIP)
    waiting = sum(1 for r in rows if r["would"] == WAIT)
    return counted(acting, skipped, verb, dry_run=dry_run, waiting=waiting)


def counted(
    acting: int, skipped: Mapping[str, int], verb: str, *, dry_run: bool = True, waiting: int = 0
) -> str:
    text = f"{'dry run' if dry_run else 'plan'}: {acting:,} would {verb}"
    if waiting:
        text += f"; {waiting:,} would wait for quota"
    if skipped:
        why = ", ".join(f"{n:,} {k}" for k, n in Counter(skipped).most_common())
        text += f"; {sum(skipped.values()):,} skipped ({why})"
    return text + ("; nothing was changed" if dry_run else "")


def kind(reason: str | None) -> str:
    """The first clause of a reason, for counting ("blank record (silence); --force runs
    it" -> "blank record")."""
    text = reason or "no reason"
    for mark in (":", ";", "("):
        text = text.split(mark, 1)[0]
    return text.strip() or "no reason"


def show(
    state: AppState,
    rows: Sequence[Mapping[str, Any]],
    *,
    verb: str,
    dry_run: bool = True,
    command: str | None = None,
) -> None:
    """The plan: JSON array on stdout with --json, else a table; the summary on stderr.
    Before a real run (`dry_run=False`) with --json only the summary is printed: stdout
    then carries the run's own results, one JSON document. `command`: the command's words
    for the table's title (default: the verb)."""
    if state.as_json:
        if dry_run:
            state.output.json(list(rows))
    elif rows:
        name = f"leap {command or verb}"
        title = f"{name} --dry-run" if dry_run else f"{name}: plan"
        state.output.table(rows, COLUMNS, title=title, shorten="title")
    state.output.message(summary(rows, verb, dry_run=dry_run))
