"""Output: Rich tables on stdout for people, JSON on stdout for scripts (`--json`); messages
and progress always on stderr. Text from outside (titles, file names, provider answers) passes
through here, so this is the one place that keeps it from driving the operator's terminal."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from leap.logs import redact

# What a terminal may act on rather than show: C0 controls but newline and tab (ESC starts
# escape sequences that retitle, recolour or clear the screen; CR overwrites the line), DEL,
# C1 controls (0x9b is a one-byte CSI), lone surrogates (undecodable file-name bytes; they
# cannot even be encoded for output), line/paragraph separators, and the bidi controls that
# make a line read differently from what it holds.
_BIDI_AND_SEPARATORS = "\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff{_BIDI_AND_SEPARATORS}]")
# json.dumps escapes C0 itself, and its own raw newlines are indentation: only the rest.
_UNSAFE_IN_JSON = re.compile(f"[\x7f-\x9f\ud800-\udfff{_BIDI_AND_SEPARATORS}]")


_NAMED = {"\r": "\\r"}  # the one control people know by name


def _escaped(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """`text` with every character a terminal would act on shown as a visible escape."""
    return _UNSAFE.sub(_escaped, text)


# Decimals kept in JSON floats: a millisecond, a thousandth of a megabyte or of a percent.
# More are float noise (116.74000000000001) that scripts would have to round themselves.
FLOAT_DECIMALS = 3
# The narrowest a shortened column gets (Output.table): a title still recognisable.
SHORTEST = 12


def rounded(data: Any) -> Any:
    """`data` with every float rounded to FLOAT_DECIMALS, through dicts, lists and tuples."""
    if isinstance(data, float):
        return round(data, FLOAT_DECIMALS)
    if isinstance(data, dict):
        return {k: rounded(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [rounded(v) for v in data]
    return data


def json_text(data: Any) -> str:
    """JSON that stays valid UTF-8 and inert on a terminal: the characters json.dumps leaves
    raw become \\u escapes, which decode to the same strings. Floats are rounded."""
    text = json.dumps(rounded(data), ensure_ascii=False, default=_default, indent=2)
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def natural_widths(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, int]:
    """Each column's width in terminal cells when nothing is cut: header or widest cell."""
    return {
        c: max([cell_len(c), *(cell_len(terminal_safe(_cell(r.get(c)))) for r in rows)])
        for c in columns
    }


def table_width(widths: Sequence[int]) -> int:
    """Cells a Rich table of these column widths takes: a space each side, and n+1 rules."""
    return sum(widths) + 3 * len(widths) + 1


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class Output:
    def __init__(self, *, as_json: bool = False, quiet: bool = False) -> None:
        self.as_json = as_json
        self.quiet = quiet
        # No emoji codes: a title such as "Retro :fire:" is printed as written (and Rich's
        # emoji table, 0.5 MB, is never loaded).
        self.out = Console(soft_wrap=True, emoji=False)
        self.err = Console(stderr=True, soft_wrap=True, emoji=False)

    def json(self, data: Any) -> None:
        sys.stdout.write(json_text(data) + "\n")
        sys.stdout.flush()

    def _text(self, value: str) -> Text:
        # Never markup: a title such as "[/]" would crash Rich, "[blink]" would restyle.
        return self.out.render_str(terminal_safe(value), markup=False)

    def table(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str],
        *,
        title: str | None = None,
        shorten: str | None = None,
        wide: bool = False,
    ) -> None:
        """Rows as a table. `shorten`: the one column cut with … so the table fits the
        terminal on one line per row (every other column whole); `wide`: nothing is cut or
        wrapped, lines may run past the terminal's edge."""
        if self.as_json:
            self.json(list(rows))
            return
        widths = natural_widths(rows, columns)
        whole = table_width(list(widths.values()))
        table = Table(title=self._text(title) if title else None, show_lines=False)
        for col in columns:
            if not wide and shorten is None:
                table.add_column(self._text(col))
                continue
            # One line per row: every cell whole but the shortened one, which gets what the
            # others leave (never under SHORTEST: a table a little too wide beats no title).
            limit = None
            if col == shorten and not wide:
                limit = max(SHORTEST, widths[col] - max(0, whole - self.out.width))
            table.add_column(self._text(col), no_wrap=True, overflow="ellipsis", max_width=limit)
        for row in rows:
            table.add_row(*(self._text(_cell(row.get(c))) for c in columns))
        if not wide or whole <= self.out.width:
            self.out.print(table)
            return
        # Rich never renders wider than its console; a wide table gets a console its size.
        shown, self.out.width = self.out.width, whole
        try:
            self.out.print(table)
        finally:
            self.out.width = shown

    def paragraph(self, label: str, text: str) -> None:
        """A labelled paragraph on stdout, wrapped at the terminal's width (what a table
        cell would have made fifty rows high)."""
        body = terminal_safe(redact(text).strip())
        self.out.print(Text.assemble((label, "bold red"), " ", body), soft_wrap=False)

    def record(self, data: Mapping[str, Any], *, title: str | None = None) -> None:
        if self.as_json:
            self.json(dict(data))
            return
        table = Table(title=self._text(title) if title else None, show_header=False)
        table.add_column("key", style="bold")
        table.add_column("value")
        for k, v in data.items():
            table.add_row(self._text(str(k)), self._text(_cell(v)))
        self.out.print(table)

    def done(self, data: Mapping[str, Any], text: str) -> None:
        """A command's outcome: the data for scripts (--json), one line for people."""
        if self.as_json:
            self.json(dict(data))
        else:
            self.message(text)

    def message(self, text: str) -> None:
        if not self.quiet:
            self.err.print(terminal_safe(text), highlight=False, markup=False)

    def error(self, text: str) -> None:
        # Errors may quote provider answers; redact anything that looks like a secret.
        # One line, as scripts expect: a newline quoted from a name or an answer is shown.
        self._labelled("error:", "bold red", redact(text).strip().replace("\n", "\\n"))

    def warning(self, text: str) -> None:
        if not self.quiet:
            self._labelled("warning:", "yellow", redact(text))

    def _labelled(self, label: str, style: str, text: str) -> None:
        # A Text, not markup: messages quote user text such as "[match]".
        self.err.print(Text.assemble((label, style), " ", terminal_safe(text)), highlight=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(round(value, FLOAT_DECIMALS))
    if isinstance(value, (dict, list)):
        return json.dumps(rounded(value), ensure_ascii=False, default=_default)
    return str(_default(value)) if isinstance(value, (datetime, date)) else str(value)
