"""What one sync of one source did: counts, skipped items with their reasons, warnings, and
the error that stopped it. The sources fill it in as they go; the CLI prints it."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

# The package's name, not this module's: the CLI drops this logger's warnings because the
# result it prints already says them (cli/app.py, SaidByTheCommand).
log = logging.getLogger(__package__)

# Skipped items named one by one in a result (and its warnings); the count has them all.
LISTED_SKIPS = 50


@dataclass(frozen=True)
class Skip:
    item: str
    reason: str


@dataclass
class SyncResult:
    source: str
    kind: str
    window_from: str | None = None
    window_to: str | None = None
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    blank: int = 0
    matched: int = 0
    unmatched: int = 0
    pages: int = 0
    skipped: int = 0
    dry_run: bool = False
    skips: list[Skip] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    error_code: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def skip(self, item: str, reason: str) -> None:
        """Record an item the source offered but sync could not keep, and why."""
        item, reason = printable(item), printable(reason)
        log.warning("sync of source %s: skipped %s: %s", self.source, item, reason)
        self.skipped += 1
        if self.skipped <= LISTED_SKIPS:
            self.skips.append(Skip(item, reason))
            self.warnings.append(f"skipped {item}: {reason}")
        elif self.skipped == LISTED_SKIPS + 1:
            self.warnings.append("more items were skipped; the log names every one")


def printable(text: str, limit: int = 300) -> str:
    """One line safe to print and store: lone surrogates (an undecodable file name) shown as
    escapes, newlines folded, length capped."""
    flat = " ".join(text.encode("utf-8", "backslashreplace").decode("utf-8").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
