"""SELECTION, the same on every command that acts on recordings: ids and ranges as arguments
(`1 2 5-9,12`), or `--ids-from FILE` / `--ids-from -` (one id per line), or FILTERS.

The parsing is pure (no database): which of the ids exist for the acting user is the
command's business, and each missing one is reported by id."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, TextIO

import typer

from leap.cli._files import one_line
from leap.errors import NotFound, UsageError
from leap.views import id_ranges

# A million ids is far more than any install holds; a bigger selection is a typo
# (`1-9999999999`), and expanding it would only fill memory.
MAX_IDS = 1_000_000
# Row ids are INTEGER primary keys, 32 bits on PostgreSQL (see _filters.ID_MAX).
ID_MAX = 2**31 - 1
# About 12 bytes a line for a million ids; more is not a list of ids.
MAX_FILE_BYTES = 16_000_000
# ASCII digits only: \d would also take Arabic-Indic and other Unicode digits.
_NUMBER = re.compile(r"[0-9]+")
_RANGE = re.compile(r"([0-9]+)-([0-9]+)")

Ids = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[ID|A-B]...", help="Recording ids or ranges (5-9, 5-9,12).", show_default=False
    ),
]
IdsFrom = Annotated[
    str | None,
    typer.Option("--ids-from", metavar="FILE", help="Ids, one a line ('-': stdin; # comments)."),
]


def _shown(text: str) -> str:
    text = one_line(text)
    return text if len(text) <= 40 else text[:37] + "..."


def _number(text: str, token: str) -> int:
    """One id of a range: 1 to ID_MAX."""
    if len(text.lstrip("0")) > 10 or not 1 <= int(text) <= ID_MAX:
        raise UsageError(f"'{_shown(token)}': ids run from 1 to {ID_MAX}")
    return int(text)


def parse_part(part: str) -> range:
    """`5` or `5-9` as a range of ids; anything else is a UsageError naming it."""
    text = part.strip()
    if _NUMBER.fullmatch(text):
        # A single id past what a row can have names no recording: not found, as
        # `recordings show` says (exit 3), rather than a usage error.
        if len(text.lstrip("0")) > 19 or int(text) > ID_MAX:
            raise NotFound(f"recording {_shown(text)} not found")
        if int(text) == 0:
            raise UsageError("'0' is not a recording id (ids start at 1)")
        return range(int(text), int(text) + 1)
    if m := _RANGE.fullmatch(text):
        lo, hi = _number(m.group(1), text), _number(m.group(2), text)
        if lo > hi:
            raise UsageError(f"range '{_shown(text)}' runs backwards (write {hi}-{lo})")
        return range(lo, hi + 1)
    if text.startswith("-") and _NUMBER.fullmatch(text[1:]):
        raise UsageError(f"'{_shown(text)}' is not a recording id (ids are positive)")
    if "-" in text:
        raise UsageError(f"'{_shown(text)}' is not a range of ids (like 5-9)")
    raise UsageError(f"'{_shown(text)}' is not a recording id (a positive whole number, or A-B)")


def parse_ids(tokens: Iterable[str], *, where: str = "") -> list[int]:
    """Ids from tokens like `1`, `5-9`, `5-9,12`, in the order given, each once. `where`
    prefixes every error (e.g. "--ids-from f: line 3: ")."""
    out: dict[int, None] = {}
    for token in tokens:
        for part in token.split(","):
            try:
                ids = parse_part(part)
            except (UsageError, NotFound) as exc:
                exc.message = where + exc.message
                exc.args = (exc.message,)
                raise
            if len(out) + len(ids) > MAX_IDS:
                raise UsageError(f"{where}more than {MAX_IDS:,} ids selected")
            out.update(dict.fromkeys(ids))
    return list(out)


def parse_lines(text: str, *, name: str) -> list[int]:
    """`--ids-from` contents: one id (or range) a line; blank lines and `#` comments are
    skipped. An error names the line."""
    out: dict[int, None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        ids = parse_ids([content], where=f"--ids-from {_shown(name)}: line {number}: ")
        if len(out) + len(ids) > MAX_IDS:
            raise UsageError(f"--ids-from {_shown(name)}: more than {MAX_IDS:,} ids")
        out.update(dict.fromkeys(ids))
    return list(out)


def read_ids_from(source: str, stdin: TextIO | None = None) -> list[int]:
    """The ids in FILE, or on stdin for `-`."""
    if source == "-":
        stream = stdin if stdin is not None else sys.stdin
        text = stream.read(MAX_FILE_BYTES + 1)
        if len(text) > MAX_FILE_BYTES:
            raise UsageError(f"--ids-from -: more than {MAX_FILE_BYTES:,} bytes")
        return parse_lines(text, name="-")
    path = Path(source)
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"--ids-from {_shown(source)}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise UsageError(f"--ids-from {_shown(source)}: more than {MAX_FILE_BYTES:,} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"--ids-from {_shown(source)}: not UTF-8 text (invalid byte at offset {exc.start})"
        ) from None
    return parse_lines(text, name=source)


def choose(
    tokens: list[str] | None,
    ids_from: str | None,
    *,
    filtered: bool = False,
    stdin: TextIO | None = None,
) -> list[int] | None:
    """The ids a command was given, or None when it was given none (FILTERS, or nothing,
    then decide). Ids and FILTERS, or ids and --ids-from, together are a UsageError."""
    if tokens and ids_from is not None:
        raise UsageError("give recording ids or --ids-from, not both")
    if (tokens or ids_from is not None) and filtered:
        raise UsageError("give recording ids or FILTERS, not both")
    if tokens:
        return parse_ids(tokens)
    if ids_from is not None:
        return read_ids_from(ids_from, stdin)
    return None


def summary(ids: list[int]) -> str:
    """`1-5,9`: a selection written back as short ranges (for messages and the audit log)."""
    text = id_ranges(ids)
    return text if len(text) <= 100 else text[:97] + "..."
