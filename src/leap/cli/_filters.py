"""FILTERS, the same on every recordings command, and date parsing for the CLI."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, TypeVar, cast

import typer

from leap.cli._files import one_line
from leap.errors import NotFound, UsageError
from leap.services.recordings import RecordingFilter

# ASCII digits only: \d would also take Arabic-Indic and other Unicode digits.
_REL = re.compile(r"^([0-9]{1,9})([dhw])$")
_DIGITS = re.compile(r"[0-9]+")
# Ids, limits and offsets go to 64-bit INTEGER columns and LIMIT/OFFSET clauses; a bigger
# number overflows the driver (SQLite) or the server (PostgreSQL).
DB_INT_MAX = 2**63 - 1
# Row ids are INTEGER primary keys: 32 bits on PostgreSQL (64 on SQLite); a larger id names
# no row on either, and PostgreSQL refuses to even compare it.
ID_MAX = 2**31 - 1
# Recordings are never older than the epoch, and `--to` adds a day to its date, so the
# last day datetime can hold is not a usable bound.
DATE_MIN, DATE_MAX = date(1970, 1, 1), date(9998, 12, 31)


def _shown(text: str) -> str:
    text = one_line(text)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_date(value: str, *, option: str) -> date:
    """YYYY-MM-DD, or a relative '7d' / '2w' back from today (UTC)."""
    value = value.strip()
    if m := _REL.match(value):
        n, unit = int(m.group(1)), m.group(2)
        hours = n * {"h": 1, "d": 24, "w": 24 * 7}[unit]
        try:
            day = (datetime.now(UTC) - timedelta(hours=hours)).date()
        except OverflowError:  # past year 1: out of range below
            day = date.min
    else:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise UsageError(
                f"{option}: '{_shown(value)}' is not a date (YYYY-MM-DD or like 7d)"
            ) from None
    if not DATE_MIN <= day <= DATE_MAX:
        raise UsageError(f"{option}: '{_shown(value)}' is out of range ({DATE_MIN} to {DATE_MAX})")
    return day


def parse_days(value: str, *, option: str, limit: int = 36_500) -> int:
    """'90d' -> 90; at most `limit` days (a century: older recordings do not exist)."""
    m = _REL.match(value.strip())
    if not m or m.group(2) != "d" or not 1 <= int(m.group(1)) <= limit:
        raise UsageError(f"{option}: '{_shown(value)}' is not a number of days like 90d")
    return int(m.group(1))


def parse_span(value: str, *, option: str, limit_days: int = 36_500) -> tuple[timedelta, str]:
    """'30d', '2w', '12h' (the relative form of a FILTERS date) as a span back from now, and
    the text as written (for messages); at least an hour, at most `limit_days`."""
    text = value.strip()
    m = _REL.match(text)
    if m is None or int(m.group(1)) == 0:
        raise UsageError(f"{option}: '{_shown(value)}' is not a span like 30d (h, d or w)")
    hours = int(m.group(1)) * {"h": 1, "d": 24, "w": 24 * 7}[m.group(2)]
    if hours > limit_days * 24:
        raise UsageError(f"{option}: '{_shown(value)}' is longer than {limit_days} days")
    return timedelta(hours=hours), text


def parse_recording_id(value: str) -> int:
    """A recording id from the command line. Typer's own int type would pass any size on to
    the database, and prints a multi-line usage box; this is one line and a stable code."""
    text = str(value).strip()
    if not _DIGITS.fullmatch(text):
        raise UsageError(f"'{_shown(text)}' is not a recording id (a positive whole number)")
    # len() first: int() refuses strings over 4,300 digits with a ValueError of its own.
    if len(text.lstrip("0")) > 19 or not 1 <= int(text) <= ID_MAX:
        raise NotFound(f"recording {_shown(text)} not found")
    return int(text)


def _whole(option: str, lo: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        text = str(value).strip()
        if _DIGITS.fullmatch(text) and len(text.lstrip("0")) <= 19:
            number = int(text)
            if lo <= number <= DB_INT_MAX:
                return number
        raise UsageError(f"{option}: '{_shown(text)}' is not a whole number from {lo} to 2^63-1")

    return parse


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
AwaitingApproval = Annotated[
    bool,
    typer.Option("--awaiting-approval", help="With a target held for `leap approve`."),
]
Limit = Annotated[
    int | None,
    typer.Option("--limit", parser=_whole("--limit", 1), metavar="N", help="At most N recordings."),
]
Offset = Annotated[
    int,
    typer.Option("--offset", parser=_whole("--offset", 0), metavar="N", help="Skip the first N."),
]
RecordingId = Annotated[
    int, typer.Argument(parser=parse_recording_id, metavar="ID", help="Recording id.")
]


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
    awaiting_approval: bool = False,
) -> RecordingFilter:
    start = day_start(parse_date(date_from, option="--from")) if date_from is not None else None
    end = (
        day_start(parse_date(date_to, option="--to")) + timedelta(days=1)
        if date_to is not None
        else None
    )
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
        awaiting_approval=awaiting_approval,
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
    ("awaiting_approval", AwaitingApproval, False),
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
        # Against each option's default: `--unmapped` (False) is a filter as much as
        # `--mapped` is. --limit alone selects nothing in particular.
        filtered = any(
            given[name] != default and given[name] not in (None, [])
            for name, _, default in _FILTER_PARAMS
            if name != "limit"
        )
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
            awaiting_approval=given["awaiting_approval"],
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
