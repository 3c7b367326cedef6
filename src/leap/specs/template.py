"""The template file: parse and validate its TOML, and write it back out for export.

Every problem becomes one `UsageError` line naming the file and the key, never a pydantic dump.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

import regex
import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

from leap.errors import UsageError
from leap.specs.approval import GATE_KEY, MISPLACED
from leap.specs.metadata import check_metadata, check_templates
from leap.specs.processing import check_processing
from leap.specs.zoom_trash import AFTER_DAYS_KEY, check_after_days

# Index = datetime.weekday(): the matcher looks weekdays up by that number.
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_ALIASES: dict[str, str] = {
    **{d: d for d in WEEKDAYS},
    **dict(zip(_FULL_WEEKDAYS, WEEKDAYS, strict=True)),
}

NAME_MAX = 64
ORDER_LIMIT = 1_000_000  # keeps `order` inside a 32-bit INTEGER column on every backend
# People copy "18:00–21:30" from documents, so en and em dashes are accepted as separators.
_WINDOW_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–—]\s*(\d{1,2}):(\d{2})\s*$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")
# Zoom shows meeting ids as "812 3456 7890"; pasted ids keep those spaces (or dashes).
_MEETING_ID_SEPARATORS = re.compile(r"[\s\-]+")
_ASCII_DIGITS = re.compile(r"[0-9]+")


def normalize_meeting_id(value: str) -> str:
    """'812 3456 7890' -> '81234567890' (no validation; see MatchRules for that)."""
    return _MEETING_ID_SEPARATORS.sub("", value)


def parse_time_window(text: str) -> tuple[int, int]:
    """'HH:MM-HH:MM' -> (start, end) in minutes after midnight; end may be before start.

    '24:00' is accepted as an end and means midnight. Raises ValueError with a message
    fit for a user.
    """
    m = _WINDOW_RE.match(text)
    if m is None:
        raise ValueError(f"'{text}' is not a time window like '18:00-21:30'")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(f"'{text}' has an invalid time (use 24-hour HH:MM)")
    start, end = h1 * 60 + m1, (h2 * 60 + m2) % (24 * 60)
    if start == end:
        raise ValueError(
            f"'{text}' starts and ends at the same time; remove time_window to match any time"
        )
    return start, end


REGEX_MAX_CHARS = 500
# The regex engine unrolls counted repeats when it compiles: ((a{100}){100}){100} takes
# seconds and (x{65535}){65535} exhausts memory. Every {m,n} count, multiplied together (as if
# all were nested, which overestimates), stays under this.
REGEX_MAX_REPEAT = 1000
_COUNTED = re.compile(r"\{\s*([0-9]*)\s*(?:,\s*([0-9]*)\s*)?\}")


def check_regex(pattern: str) -> None:
    """Refuse a pattern the matcher could not compile quickly; ValueError fit for a user.
    The time a pattern may take on a title is bounded when matching (matching.py)."""
    shown = pattern if len(pattern) <= 40 else pattern[:37] + "..."
    if len(pattern) > REGEX_MAX_CHARS:
        raise ValueError(f"'{shown}' is longer than {REGEX_MAX_CHARS} characters")
    product = 1
    for low, high in _COUNTED.findall(pattern):
        bound = high if high else low
        count = int(bound[:6]) if bound else 1
        product *= max(count, 1)
        if product > REGEX_MAX_REPEAT:
            raise ValueError(
                f"invalid pattern '{shown}': counted repeats ({{n}}) multiply to more than "
                f"{REGEX_MAX_REPEAT}; use + or * instead"
            )
    # Imported here: matching imports this module.
    from leap.specs.matching import compile_regex

    try:
        compile_regex(pattern, case_sensitive=True)
    except regex.error as exc:
        raise ValueError(f"invalid pattern '{shown}': {exc}") from None


def format_time_window(start: int, end: int) -> str:
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


# PostgreSQL refuses NUL in text and jsonb; no template or preset has a use for it.
_NUL = "the NUL character (\\u0000) is not allowed"


def _nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def _non_empty(values: list[str]) -> list[str]:
    for v in values:
        if not v.strip():
            raise ValueError("empty strings are not allowed")
        if "\x00" in v:
            raise ValueError(_NUL)
    return [_nfc(v) for v in values]


class _Strict(BaseModel):
    # Unknown keys are typos that would silently do nothing, and TOML has real types, so
    # "yes" for a boolean or "10" for a number is a mistake worth reporting.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class MatchRules(_Strict):
    """Every condition given must hold; inside a list, any item (all_keywords: every item)."""

    keywords: list[str] = []
    all_keywords: list[str] = []
    exact: list[str] = []
    regex: list[str] = []
    sources: list[str] = []
    zoom_meeting_ids: list[str] = []
    hosts: list[str] = []
    weekdays: list[str] = []
    time_window: str | None = None
    case_sensitive: bool = False

    @field_validator("keywords", "all_keywords", "exact")
    @classmethod
    def _texts(cls, values: list[str]) -> list[str]:
        return _non_empty(values)

    @field_validator("sources")
    @classmethod
    def _sources(cls, values: list[str]) -> list[str]:
        return [v.strip() for v in _non_empty(values)]

    @field_validator("regex")
    @classmethod
    def _regex(cls, values: list[str]) -> list[str]:
        patterns = _non_empty(values)
        for pattern in patterns:
            check_regex(pattern)
        return patterns

    @field_validator("zoom_meeting_ids", mode="before")
    @classmethod
    def _meeting_ids(cls, values: Any) -> Any:
        if not isinstance(values, list):
            return values  # let the type check report it
        out: list[str] = []
        for v in values:
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                out.append(str(v))
            elif isinstance(v, str) and _ASCII_DIGITS.fullmatch(normalize_meeting_id(v)):
                out.append(normalize_meeting_id(v))
            else:
                shown = str(v).lower() if isinstance(v, bool) else repr(v)
                raise ValueError(f"{shown} is not a Zoom meeting id (digits, e.g. 81234567890)")
        return out

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, values: list[str]) -> list[str]:
        out = [v.strip() for v in _non_empty(values)]
        for v in out:
            if not _EMAIL_RE.match(v):
                raise ValueError(f"'{v}' is not an email address")
        return out

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, values: list[str]) -> list[str]:
        out: list[str] = []
        for v in values:
            day = _WEEKDAY_ALIASES.get(v.strip().lower())
            if day is None:
                raise ValueError(f"'{v}' is not a weekday (use mon, tue, wed, thu, fri, sat, sun)")
            if day not in out:
                out.append(day)
        return out

    @field_validator("time_window")
    @classmethod
    def _time_window(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return format_time_window(*parse_time_window(value))

    def is_empty(self) -> bool:
        """True when no condition is given (case_sensitive alone is not a condition)."""
        return not (
            self.keywords
            or self.all_keywords
            or self.exact
            or self.regex
            or self.sources
            or self.zoom_meeting_ids
            or self.hosts
            or self.weekdays
            or self.time_window is not None
        )


class BlankRules(_Strict):
    """Overrides of the user's blank-recording thresholds; None keeps the user's value."""

    min_duration_minutes: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    min_size_mb: float | None = Field(default=None, ge=0, allow_inf_nan=False)


class TemplateSpec(_Strict):
    name: str
    order: int = Field(default=100, ge=-ORDER_LIMIT, le=ORDER_LIMIT)
    enabled: bool = True
    # Hold what this template's recordings publish for `leap approve` (docs/approval.md).
    approval: bool = False
    match: MatchRules = MatchRules()
    blank: BlankRules = BlankRules()
    processing: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    presets: list[str] = []
    # leapd moves the Zoom copy to Zoom's trash this many days after publication
    # (docs/zoom-cleanup.md); None: never on its own.
    zoom_trash_after_days: int | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("processing", "metadata")
    @classmethod
    def _free_form(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Free-form here (another module gives these sections meaning), but they are stored
        # as JSON and exported as TOML, so only values both can hold are let in.
        if "presets" in value:
            raise _KeyProblem("presets", _PRESETS_MISPLACED)
        if GATE_KEY in value:
            raise _KeyProblem(GATE_KEY, MISPLACED)
        return {k: _plain(v, k) for k, v in value.items()}

    @field_validator("zoom_trash_after_days")
    @classmethod
    def _after_days(cls, value: int | None) -> int | None:
        return None if value is None else check_after_days(value)

    @field_validator("presets")
    @classmethod
    def _presets(cls, values: list[str]) -> list[str]:
        out = [v.strip() for v in _non_empty(values)]
        for v in out:
            if out.count(v) > 1:
                raise ValueError(f"preset '{v}' is listed twice")
        return out


def check_name(value: str) -> str:
    """Validate a template name and return it NFC-normalised; raises ValueError."""
    value = _nfc(value)
    if not 1 <= len(value) <= NAME_MAX:
        raise ValueError(f"must be 1-{NAME_MAX} characters")
    # A leading '-' would read as a CLI option and a leading '.' makes a hidden export file.
    if not value[0].isalnum() or not all(c.isalnum() or c in "-_." for c in value):
        raise ValueError(
            f"'{value}' may contain only letters, digits, '-', '_' and '.', "
            "and must start with a letter or digit"
        )
    return value


_PRESETS_MISPLACED = "presets is a top-level key; write it once, before the first [table]"


class _KeyProblem(ValueError):
    """A problem deep inside a free-form section; `sub` extends the reported key path."""

    def __init__(self, sub: str, text: str) -> None:
        super().__init__(f"'{sub}': {text}")
        self.sub = sub
        self.text = text


# Processing and metadata tables are two or three levels deep; anything far deeper is hostile
# and would exhaust recursion here or in the JSON encoder.
_MAX_DEPTH = 16


def _plain(value: Any, path: str, level: int = 0) -> Any:
    if level > _MAX_DEPTH:
        raise _KeyProblem(path, f"nested more than {_MAX_DEPTH} levels deep")
    if isinstance(value, str):
        if "\x00" in value:
            raise _KeyProblem(path, _NUL)
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        # Stored as JSON: PostgreSQL jsonb and SQLite keep 64-bit integers at most.
        if not -(2**63) <= value < 2**63:
            raise _KeyProblem(path, f"{value} is out of range")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _KeyProblem(path, f"{value} is not allowed; use a finite number")
        return value
    # TOML dates and times would not survive the JSON column; ISO 8601 text does.
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v, f"{path}[{i}]", level + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise _KeyProblem(path, f"keys must be strings, got {k!r}")
            if "\x00" in k:
                raise _KeyProblem(path, _NUL)
            out[k] = _plain(v, f"{path}.{k}", level + 1)
        return out
    if value is None:
        raise _KeyProblem(path, "null is not allowed (TOML has no null); leave it out")
    raise _KeyProblem(path, f"unsupported value of type {type(value).__name__}")


def plain_table(table: Mapping[str, Any], section: str, origin: str) -> dict[str, Any]:
    """`table` with only values JSON and TOML both hold (see _plain); UsageError otherwise."""
    try:
        return {k: _plain(v, k) for k, v in table.items()}
    except _KeyProblem as exc:
        raise UsageError(f"{origin}: {section}.{exc.sub}: {exc.text}") from None


# ---------------------------------------------------------------- parsing and errors

_TOML_TYPES: dict[type, str] = {
    bool: "boolean",
    int: "integer",
    float: "float",
    str: "string",
    list: "array",
    dict: "table",
    datetime: "datetime",
    date: "date",
    time: "time",
}
_EXPECTED: dict[str, str] = {
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "list_type": "expected an array",
    "dict_type": "expected a table",
    "model_type": "expected a table",
}
# A key written after a [table] header belongs to that table in TOML; the documented example
# puts `presets` last, so a `presets` (or another top-level key) that landed in a section is
# lifted back to the top.
_SECTIONS = ("match", "blank", "processing", "metadata")
_TOP_LEVEL = ("presets", AFTER_DAYS_KEY)


def parse_template(text: str, *, origin: str) -> TemplateSpec:
    """Parse a template file's text; `origin` (usually the file name) starts every error."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{origin}: malformed TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise UsageError(f"{origin}: nested too deeply") from None
    return spec_from_dict(_lift_presets(data), origin=origin)


def spec_from_dict(data: Mapping[str, Any], *, origin: str) -> TemplateSpec:
    """Validate an already-parsed template (from the database or an edit)."""
    if not isinstance(data, Mapping):
        raise UsageError(f"{origin}: expected a table of template keys")
    try:
        spec = TemplateSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise UsageError(_describe(exc, origin)) from None
    check_templates(spec.metadata, origin)
    check_metadata(spec.metadata, origin)
    check_processing(spec.processing, origin)
    return spec


def _lift_presets(data: dict[str, Any]) -> dict[str, Any]:
    for key in _TOP_LEVEL:
        holders = [s for s in _SECTIONS if isinstance(data.get(s), dict) and key in data[s]]
        if key in data or len(holders) != 1:
            continue  # nothing to lift, or ambiguous: validation names the stray key
        section = holders[0]
        lifted = {k: v for k, v in data[section].items() if k != key}
        data = {**data, section: lifted, key: data[section][key]}
    return data


def _describe(exc: ValidationError, origin: str) -> str:
    errors = exc.errors(include_url=False)
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{origin}: {_one(first)}{more}"


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _one(err: ErrorDetails) -> str:
    loc = tuple(err["loc"])
    path = _path(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"unknown key '{path}'{_suggest(loc)}"
    if kind == "missing":
        return f"missing required key '{path}'"
    if kind == "value_error":
        problem = err.get("ctx", {}).get("error", err["msg"])
        if isinstance(problem, _KeyProblem):
            joiner = "" if problem.sub.startswith("[") else "."
            return f"{path}{joiner}{problem.sub}: {problem.text}"
        return f"{path}: {problem}"
    if kind in _EXPECTED:
        value = err["input"]
        got = _TOML_TYPES.get(type(value), type(value).__name__)
        return f"{path}: {_EXPECTED[kind]}, got {got} {_short(value)}"
    return f"{path}: {err['msg'].replace('Input should be', 'must be')}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _suggest(loc: tuple[int | str, ...]) -> str:
    model: type[BaseModel] = TemplateSpec
    for part in loc[:-1]:
        annotation = model.model_fields[str(part)].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    key = str(loc[-1])
    if key == "presets" and model is not TemplateSpec:
        return f" ({_PRESETS_MISPLACED})"
    if key in _TOP_LEVEL and model is not TemplateSpec:
        return f" ({key} is a top-level key; write it before the first [table])"
    close = difflib.get_close_matches(key, list(model.model_fields), n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    if model is TemplateSpec:
        for section in ("match", "blank"):
            sub = TemplateSpec.model_fields[section].annotation
            if isinstance(sub, type) and issubclass(sub, BaseModel) and key in sub.model_fields:
                return f" (it belongs under [{section}])"
    return ""


# ---------------------------------------------------------------- export


def to_toml(spec: TemplateSpec) -> str:
    """The export format; `parse_template(to_toml(s), origin=...) == s`."""
    doc: dict[str, Any] = {"name": spec.name, "order": spec.order, "enabled": spec.enabled}
    if spec.approval:
        doc["approval"] = True
    # TOML puts a bare key after a [table] header inside that table, so presets go first.
    if spec.zoom_trash_after_days is not None:
        doc[AFTER_DAYS_KEY] = spec.zoom_trash_after_days
    if spec.presets:
        doc["presets"] = list(spec.presets)
    match = _match_table(spec.match)
    if match:
        doc["match"] = match
    blank = {
        k: _number(v)
        for k, v in (
            ("min_duration_minutes", spec.blank.min_duration_minutes),
            ("min_size_mb", spec.blank.min_size_mb),
        )
        if v is not None
    }
    if blank:
        doc["blank"] = blank
    if spec.processing:
        doc["processing"] = spec.processing
    if spec.metadata:
        doc["metadata"] = spec.metadata
    return tomli_w.dumps(doc)


def _match_table(rules: MatchRules) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("keywords", "all_keywords", "exact", "regex", "sources"):
        values = getattr(rules, key)
        if values:
            out[key] = list(values)
    if rules.zoom_meeting_ids:
        out["zoom_meeting_ids"] = [_meeting_id_value(v) for v in rules.zoom_meeting_ids]
    for key in ("hosts", "weekdays"):
        values = getattr(rules, key)
        if values:
            out[key] = list(values)
    if rules.time_window is not None:
        out["time_window"] = rules.time_window
    if rules.case_sensitive:
        out["case_sensitive"] = True
    return out


def _meeting_id_value(value: str) -> int | str:
    # Written as a number like the documented example, unless that would lose a leading zero
    # or overflow TOML's 64-bit integers.
    if value.isdigit() and not value.startswith("0") and len(value) <= 18:
        return int(value)
    return value


def _number(value: float) -> int | float:
    return int(value) if value.is_integer() else value
