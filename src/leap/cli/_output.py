"""Output: Rich tables on stdout for people, JSON on stdout for scripts (`--json`); messages
and progress always on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from leap.logs import redact


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
        self.out = Console(soft_wrap=True)
        self.err = Console(stderr=True, soft_wrap=True)

    def json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, ensure_ascii=False, default=_default, indent=2) + "\n")
        sys.stdout.flush()

    def table(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str],
        *,
        title: str | None = None,
    ) -> None:
        if self.as_json:
            self.json(list(rows))
            return
        table = Table(title=title, show_lines=False)
        for col in columns:
            table.add_column(col)
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        self.out.print(table)

    def record(self, data: Mapping[str, Any], *, title: str | None = None) -> None:
        if self.as_json:
            self.json(dict(data))
            return
        table = Table(title=title, show_header=False)
        table.add_column("key", style="bold")
        table.add_column("value")
        for k, v in data.items():
            table.add_row(k, _cell(v))
        self.out.print(table)

    def done(self, data: Mapping[str, Any], text: str) -> None:
        """A command's outcome: the data for scripts (--json), one line for people."""
        if self.as_json:
            self.json(dict(data))
        else:
            self.message(text)

    def message(self, text: str) -> None:
        if not self.quiet:
            self.err.print(text, highlight=False, markup=False)

    def error(self, text: str) -> None:
        # Errors may quote provider answers; redact anything that looks like a secret.
        # escape(): messages quote user text such as "[match]", which is not Rich markup.
        self.err.print(f"[bold red]error:[/] {escape(redact(text))}", highlight=False)

    def warning(self, text: str) -> None:
        if not self.quiet:
            self.err.print(f"[yellow]warning:[/] {escape(redact(text))}", highlight=False)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=_default)
    return str(_default(value)) if isinstance(value, (datetime, date)) else str(value)
