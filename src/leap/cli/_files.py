"""Reading the files users hand to LEAP (templates, presets, credentials): bounded in size,
strict UTF-8, TOML or JSON, and every failure one `UsageError` line naming the file."""

from __future__ import annotations

import json
import tomllib
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from leap.errors import LeapError, UsageError

# These files are a few kB; a megabyte is generous and stops `--file /dev/zero` from
# filling memory.
MAX_BYTES = 1_000_000
# Nothing LEAP reads nests deeper than a handful of levels; a deeper document is hostile or
# broken, and would exhaust the recursion of the code that validates or stores it.
MAX_DEPTH = 32


def one_line(text: str) -> str:
    """`text` with control and line-separator characters escaped: an error quoting a key or
    value from a file must stay one line on the terminal and in logs."""
    if all(unicodedata.category(c) not in ("Cc", "Zl", "Zp") for c in text):
        return text
    out = []
    for c in text:
        if unicodedata.category(c) in ("Cc", "Zl", "Zp"):
            out.append(c.encode("unicode_escape").decode("ascii"))
        else:
            out.append(c)
    return "".join(out)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Re-raise any LeapError of the block with its message made one line."""
    try:
        yield
    except LeapError as exc:
        exc.message = one_line(exc.message)
        exc.args = (exc.message,)
        raise


def read_text(path: Path, *, limit: int = MAX_BYTES) -> str:
    """The file's text: at most `limit` bytes of strict UTF-8 (a BOM is allowed)."""
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise UsageError(f"{one_line(str(path))}: cannot read: {exc.strerror}") from None
    if len(data) > limit:
        raise UsageError(f"{one_line(str(path))}: larger than {limit:,} bytes; not a LEAP file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{one_line(str(path))}: not UTF-8 text (invalid byte at offset {exc.start})"
        ) from None


def depth(value: Any) -> int:
    """How deeply lists and tables nest in `value` (iteratively: no recursion to exhaust)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: list[Any] = list(node.values())
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def parse_document(text: str, *, fmt: str, origin: str) -> dict[str, Any]:
    """Parse TOML or JSON text into a table; `origin` names the file in every error."""
    where = one_line(origin)
    try:
        if fmt == "toml":
            data: Any = tomllib.loads(text)
        else:
            data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise UsageError(f"{where}: nested too deeply") from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        # The first line of a parser's message quotes no content, so no secret leaks through it.
        first = one_line(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
        raise UsageError(f"{where}: not valid {fmt.upper()}: {first}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a table (object) of keys")
    if depth(data) > MAX_DEPTH:
        raise UsageError(f"{where}: nested more than {MAX_DEPTH} levels deep")
    return data


def _no_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not, and no field wants them.
    raise ValueError(f"{name} is not a JSON number")


def read_document(path: Path, *, fmt: str) -> dict[str, Any]:
    return parse_document(read_text(path), fmt=fmt, origin=str(path))
