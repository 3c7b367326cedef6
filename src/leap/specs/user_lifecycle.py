"""Deleting and disabling a user (docs/users.md): who may be removed or stopped, whether a
deletion may go ahead without asking, and how its inventory reads. Pure decisions; the
service (services/user_lifecycle.py) gathers the facts and acts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# How `leap user delete` goes on, from --yes, --dry-run and whether a person can answer.
DRY_RUN, GO, ASK, REFUSE = "dry-run", "go", "ask", "refuse"

# The inventory's lines, in this order: (key in the counts, words). Every other owned table
# is counted too (the audit entry lists them all); these are the ones a person weighs.
SHOWN = (
    ("recordings", "recording(s)"),
    ("runs_in_progress", "run(s) in progress (cancelled first)"),
    ("templates", "template(s)"),
    ("input_sources", "source(s)"),
    ("credentials", "credential(s)"),
    ("output_presets", "preset(s)"),
    ("automation_jobs", "automation job(s)"),
)


def refusal(
    *,
    deleting: bool,
    actor_id: int | None,
    target_id: int,
    target_is_admin: bool,
    other_active_admins: int,
) -> str | None:
    """Why an admin may not delete (or disable) this user, or None. Nobody removes or stops
    themselves, and the install always keeps an admin who can act."""
    verb = "delete" if deleting else "disable"
    if actor_id is not None and actor_id == target_id:
        return f"you cannot {verb} yourself"
    if target_is_admin and other_active_admins == 0:
        return f"cannot {verb} the last admin: make another user an admin first"
    return None


def confirmation(*, yes: bool, dry_run: bool, interactive: bool) -> str:
    """`--dry-run` shows and changes nothing; `--yes` goes; a person at a terminal is asked
    to type the name; without a terminal and without --yes nothing happens (exit 2)."""
    if dry_run:
        return DRY_RUN
    if yes:
        return GO
    return ASK if interactive else REFUSE


def confirmed(typed: str | None, name: str) -> bool:
    """A person confirms by typing the user's name exactly (surrounding blanks aside)."""
    return typed is not None and typed.strip() == name


@dataclass(frozen=True)
class Inventory:
    """What deleting a user removes: rows per owned table, and bytes per folder on disk."""

    user: str
    user_id: int
    counts: Mapping[str, int]
    files: Mapping[str, int] = field(default_factory=dict)  # folder -> bytes

    @property
    def bytes_on_disk(self) -> int:
        return sum(self.files.values())

    def lines(self) -> list[str]:
        out = [f"{self.counts.get(key, 0)} {words}" for key, words in SHOWN]
        out.append(f"{human_bytes(self.bytes_on_disk)} of files on disk")
        out.extend(f"  {folder} ({human_bytes(size)})" for folder, size in self.files.items())
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "id": self.user_id,
            "counts": dict(self.counts),
            "bytes_on_disk": self.bytes_on_disk,
            "folders": dict(self.files),
        }


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    size = n / 1024
    for unit in ("KB", "MB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
