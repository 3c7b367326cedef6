"""FILTERS, the same on every recordings command, and date parsing for the CLI."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, TypeVar, cast

import typer

from leap.errors import UsageError
from leap.services.recordings import RecordingFilter

_REL = re.compile(r"^(\d+)([dhw])$")


def parse_date(value: str, *, option: str) -> date:
    """YYYY-MM-DD, or a relative '7d' / '2w' back from today (UTC)."""
    value = value.strip()
    if m := _REL.match(value):
        n, unit = int(m.group(1)), m.group(2)
        delta = {"d": timedelta(days=n), "w": timedelta(weeks=n), "h": timedelta(hours=n)}[unit]
        return (datetime.now(UTC) - delta).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option}: '{value}' is not a date (YYYY-MM-DD or like 7d)") from None


def day_start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


Status = Annotated[list[str] | None, typer.Option("--status", help="Status (repeatable).")]
TemplateName = Annotated[str | None, typer.Option("--template", help="Template name.")]
SourceName = Annotated[str | None, typer.Option("--source", help="Source name.")]
Mapped = Annotated[
    bool | None, typer.Option("--mapped/--unmapped", help="With or without a template.")
]
Blank = Annotated[bool | None, typer.Option("--blank/--no-blank", help="Blank records or not.")]
Failed = Annotated[bool, typer.Option("--failed", help="Only failed recordings.")]
From = Annotated[str | None, typer.Option("--from", help="Recorded on or after (YYYY-MM-DD|7d).")]
To = Annotated[str | None, typer.Option("--to", help="Recorded on or before (YYYY-MM-DD).")]
Search = Annotated[str | None, typer.Option("--search", help="Text in title or host.")]
Limit = Annotated[int | None, typer.Option("--limit", min=1, help="At most N recordings.")]
Offset = Annotated[int, typer.Option("--offset", min=0, help="Skip the first N.")]


def build_filter(
    *,
    status: list[str] | None,
    template: str | None,
    source: str | None,
    mapped: bool | None,
    blank: bool | None,
    failed: bool,
    date_from: str | None,
    date_to: str | None,
    search: str | None,
    limit: int | None,
    offset: int = 0,
    ids: list[int] | None = None,
) -> RecordingFilter:
    start = day_start(parse_date(date_from, option="--from")) if date_from else None
    end = day_start(parse_date(date_to, option="--to")) + timedelta(days=1) if date_to else None
    return RecordingFilter(
        ids=ids,
        statuses=list(status or []),
        template=template,
        source=source,
        mapped=mapped,
        blank=blank,
        failed=failed,
        date_from=start,
        date_to=end,
        search=search,
        limit=limit,
        offset=offset,
    )


# (name, annotation, default) of every FILTERS option, in help order.
_FILTER_PARAMS: tuple[tuple[str, Any, Any], ...] = (
    ("status", Status, None),
    ("template", TemplateName, None),
    ("source", SourceName, None),
    ("mapped", Mapped, None),
    ("blank", Blank, None),
    ("failed", Failed, False),
    ("date_from", From, None),
    ("date_to", To, None),
    ("search", Search, None),
    ("limit", Limit, None),
    ("offset", Offset, 0),
)

F = TypeVar("F", bound=Callable[..., Any])


def with_filters(fn: F) -> F:
    """Give a command the shared FILTERS options; it receives them as `filters=`
    (a RecordingFilter) and `filtered=` (whether any filter was given)."""
    names = [name for name, _, _ in _FILTER_PARAMS]
    sig = inspect.signature(fn, eval_str=True)  # Typer reads real annotations
    kept = [p for p in sig.parameters.values() if p.name not in ("filters", "filtered")]
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)
        for name, ann, default in _FILTER_PARAMS
    ]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in names}
        filtered = any(v not in (None, False, 0) for k, v in given.items() if k != "limit")
        flt = build_filter(
            status=given["status"],
            template=given["template"],
            source=given["source"],
            mapped=given["mapped"],
            blank=given["blank"],
            failed=given["failed"],
            date_from=given["date_from"],
            date_to=given["date_to"],
            search=given["search"],
            limit=given["limit"],
            offset=given["offset"],
        )
        return fn(*args, filters=flt, filtered=filtered, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=kept + extra)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {
        **{k: v for k, v in fn.__annotations__.items() if k not in ("filters", "filtered")},
        **{name: ann for name, ann, _ in _FILTER_PARAMS},
    }
    return cast(F, wrapper)
