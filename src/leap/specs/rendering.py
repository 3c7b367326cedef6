"""Template text for titles and descriptions: `{variable}` and `{time_var:DD.MM.YYYY hh:mm}`
rendered against one recording, in the user's timezone; `{{` and `}}` are literal braces."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from leap.errors import UsageError
from leap.text.topics import Topics, chapter_stamp, hms

__all__ = [
    "DEFAULT_TIME_FORMAT",
    "TIME_VARIABLES",
    "TOPICS_DISPLAYS",
    "VARIABLES",
    "RenderContext",
    "for_paths",
    "format_time",
    "render",
    "render_topics",
    "validate_template",
]

TOPICS_DISPLAYS = ("numbered", "bulleted", "timestamps", "chapters", "compact")
DEFAULT_TIME_FORMAT = "DD.MM.YYYY hh:mm"

# Variables taking an inline time format, and what they render without one.
TIME_VARIABLES: dict[str, str] = {
    "record_time": DEFAULT_TIME_FORMAT,
    "publish_time": DEFAULT_TIME_FORMAT,
}

VARIABLES: dict[str, str] = {
    "display_name": "the template's display name (falls back to the recording title)",
    "title": "the recording's own title (as Zoom names it)",
    "host": "the meeting host",
    "template": "the matched template's name",
    "source": "the recording source (zoom, local, ...)",
    "duration": "the video length: 45:10 or 1:23:45",
    "themes": "the themes, comma-separated",
    "topics": "the topic list, shaped by topics_display",
    "record_time": f"when it was recorded; default format {DEFAULT_TIME_FORMAT}",
    "publish_time": "the scheduled publish time; empty when none is set",
    "date": "the record date, DD.MM.YYYY",
    "time": "the record time of day, hh:mm",
    "year": "the record year, YYYY",
}

_TOKEN = re.compile(r"YYYY|YY|DD|MM|hh|mm|ss|date|time")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class RenderContext:
    title: str
    display_name: str
    host: str
    template: str
    source: str
    record_time: datetime  # aware; a naive value is taken as UTC
    publish_time: datetime | None
    duration_s: float
    themes: list[str] = field(default_factory=list)
    topics: Topics | None = None
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))


def for_paths(ctx: RenderContext) -> RenderContext:
    """The same values made safe inside one path component: a title such as "A/B" or ".."
    must not add folders or climb out of the one the path template names."""

    def safe(text: str) -> str:
        text = text.replace("/", "∕").replace("\\", "∖").replace("\0", "")
        return "_" + text if text in (".", "..") or text.startswith("~") else text

    return replace(
        ctx,
        title=safe(ctx.title),
        display_name=safe(ctx.display_name),
        host=safe(ctx.host),
        template=safe(ctx.template),
        source=safe(ctx.source),
        themes=[safe(t) for t in ctx.themes],
        topics=None,  # a multi-line list has no place in a folder name: {topics} is empty
    )


# ---------------------------------------------------------------------------------------------
# Parsing


@dataclass(frozen=True)
class _Field:
    name: str
    fmt: str | None


def _parse(text: str, where: str) -> Iterator[str | _Field]:
    """Literal text and fields, in order; UsageError on a malformed template."""
    i, n = 0, len(text)
    buf: list[str] = []
    while i < n:
        ch = text[i]
        if ch == "{" and text.startswith("{{", i):
            buf.append("{")
            i += 2
        elif ch == "}" and text.startswith("}}", i):
            buf.append("}")
            i += 2
        elif ch == "}":
            raise UsageError(
                f"single '}}' in {where} at position {i + 1}; write '}}}}' for a brace"
            )
        elif ch == "{":
            end = text.find("}", i + 1)
            if end < 0:
                raise UsageError(f"unclosed '{{' in {where} at position {i + 1}")
            body = text[i + 1 : end]
            name, sep, fmt = body.partition(":")
            name = name.strip()
            if not _NAME.fullmatch(name):
                raise UsageError(f"bad field {{{body}}} in {where}; write '{{{{' for a brace")
            if buf:
                yield "".join(buf)
                buf = []
            yield _Field(name, fmt if sep else None)
            i = end + 1
        else:
            buf.append(ch)
            i += 1
    if buf:
        yield "".join(buf)


def _check_format(fmt: str, name: str, where: str) -> None:
    rest = _TOKEN.sub("", fmt)
    bad = [c for c in rest if c.isascii() and c.isalpha()]
    if bad or not fmt.strip():
        raise UsageError(
            f"bad time format {{{name}:{fmt}}} in {where}; tokens: DD MM YY YYYY hh mm ss date time"
        )


def _check_field(f: _Field, where: str) -> None:
    if f.name not in VARIABLES:
        known = ", ".join(sorted(VARIABLES))
        raise UsageError(f"unknown variable {{{f.name}}} in {where}; known: {known}")
    if f.fmt is not None:
        if f.name not in TIME_VARIABLES:
            raise UsageError(
                f"{{{f.name}}} in {where} takes no format; only "
                f"{', '.join(sorted(TIME_VARIABLES))} do"
            )
        _check_format(f.fmt, f.name, where)


def validate_template(text: str, *, where: str = "template") -> None:
    """Raise UsageError naming the first unknown variable or bad format (template save time)."""
    for part in _parse(text, where):
        if isinstance(part, _Field):
            _check_field(part, where)


# ---------------------------------------------------------------------------------------------
# Rendering


def format_time(moment: datetime, fmt: str, tz: ZoneInfo) -> str:
    """Tokens DD MM YY YYYY hh mm ss, `date` (DD.MM.YYYY), `time` (hh:mm); the rest literal."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        local = moment.astimezone(tz)
    except OverflowError:  # within hours of year 1 or 9999 (a bogus clock): shown in UTC
        local = moment.astimezone(UTC)
    values: dict[str, Callable[[], str]] = {
        "YYYY": lambda: f"{local.year:04d}",
        "YY": lambda: f"{local.year % 100:02d}",
        "DD": lambda: f"{local.day:02d}",
        "MM": lambda: f"{local.month:02d}",
        "hh": lambda: f"{local.hour:02d}",
        "mm": lambda: f"{local.minute:02d}",
        "ss": lambda: f"{local.second:02d}",
        "date": lambda: f"{local.day:02d}.{local.month:02d}.{local.year:04d}",
        "time": lambda: f"{local.hour:02d}:{local.minute:02d}",
    }
    return _TOKEN.sub(lambda m: values[m.group(0)](), fmt)


def render_topics(topics: Topics | None, display: str, *, show_timestamps: bool = True) -> str:
    """The topic list in one of TOPICS_DISPLAYS; `chapters` falls back to `timestamps` unless
    the topics are valid YouTube chapters."""
    if display not in TOPICS_DISPLAYS:
        raise UsageError(
            f"unknown topics_display {display!r}; one of: {', '.join(TOPICS_DISPLAYS)}"
        )
    if topics is None or not topics.topics:
        return ""
    items = topics.topics
    if display == "chapters":
        if topics.chapters_ok:
            return "\n".join(topics.chapter_lines())
        display = "timestamps"
    if display == "compact":
        return " · ".join(t.title for t in items)
    if display == "timestamps":
        return "\n".join(f"{hms(t.start)} — {t.title}" for t in items)
    lines: list[str] = []
    for i, t in enumerate(items, 1):
        mark = f"{i}." if display == "numbered" else "•"
        stamp = f"{hms(t.start)} — " if show_timestamps else ""
        lines.append(f"{mark} {stamp}{t.title}")
    return "\n".join(lines)


def _value(f: _Field, ctx: RenderContext, topics_display: str, show_timestamps: bool) -> str:
    name = f.name
    if name in TIME_VARIABLES:
        moment = ctx.record_time if name == "record_time" else ctx.publish_time
        if moment is None:
            return ""
        return format_time(moment, f.fmt if f.fmt is not None else TIME_VARIABLES[name], ctx.tz)
    simple: dict[str, Callable[[], str]] = {
        "display_name": lambda: ctx.display_name or ctx.title,
        "title": lambda: ctx.title,
        "host": lambda: ctx.host,
        "template": lambda: ctx.template,
        "source": lambda: ctx.source,
        "duration": lambda: chapter_stamp(ctx.duration_s),
        "themes": lambda: ", ".join(ctx.themes),
        "topics": lambda: render_topics(
            ctx.topics, topics_display, show_timestamps=show_timestamps
        ),
        "date": lambda: format_time(ctx.record_time, "date", ctx.tz),
        "time": lambda: format_time(ctx.record_time, "time", ctx.tz),
        "year": lambda: format_time(ctx.record_time, "YYYY", ctx.tz),
    }
    return simple[name]()


def render(
    text: str,
    ctx: RenderContext,
    *,
    topics_display: str = "timestamps",
    show_timestamps: bool = True,
    where: str = "template",
) -> str:
    """Render `text`; a missing publish_time renders as an empty string (not an error), so a
    preview before scheduling works. UsageError for anything validate_template rejects."""
    out: list[str] = []
    for part in _parse(text, where):
        if isinstance(part, str):
            out.append(part)
        else:
            _check_field(part, where)
            out.append(_value(part, ctx, topics_display, show_timestamps))
    return "".join(out)
