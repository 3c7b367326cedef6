"""Pure decisions of `leap doctor --deep`'s consistency checks (services/consistency.py reads
the database and the disk): which workspace files are temporary, when one is debris, which
targets an install published twice, and how a check's line reads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# How many offending ids a line names; the count says how many there are in all.
SHOWN = 5

# What the pipeline writes under a temporary name in a recording's workspace
# (media/user_<id>/recordings/<id>/): a download's partial bytes and resume validators
# (providers/download.py: NAME.part, NAME.part.json, and NAME.part.json.tmp while it is
# rewritten) and every output written before its rename into place
# (pipeline/workspace.py, Workspace.temp_for: .tmp-NAME).
PART_SUFFIXES = (".part", ".part.json")


def temporary_kind(name: str) -> str | None:
    """'part' (a download's partial file or its sidecar), 'tmp' (an output before its rename),
    or None for a file that is not temporary."""
    if name.startswith(".tmp-") or name.endswith(".tmp"):
        return "tmp"
    if name.endswith(PART_SUFFIXES):
        return "part"
    return None


def final_name(name: str) -> str:
    """The file a .part or .part.json will become."""
    for suffix in PART_SUFFIXES[::-1]:  # .part.json before .part
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_debris(name: str, siblings: set[str], *, stage_running: bool) -> bool:
    """A temporary file no stage will use again. An output's temporary is written only while
    its stage runs (a retry writes it afresh). A download's .part is kept on purpose while the
    file is not complete (the next attempt, or `leap retry`, resumes from it), so it is debris
    only once the finished file sits beside it."""
    kind = temporary_kind(name)
    if kind is None:
        return False
    if kind == "tmp":
        return not stage_running
    return final_name(name) in siblings


def published_twice(uploads: Sequence[tuple[int, bool, Iterable[str]]]) -> list[str]:
    """Presets a recording published in more than one run. `uploads`: the recording's done
    upload stages as (run id, forced, preset names published). A forced run publishes again
    on purpose (`--force`: a new video under a new marker), so it is not counted."""
    seen: dict[str, int] = {}
    twice: list[str] = []
    for run_id, forced, published in sorted(uploads, key=lambda u: u[0]):
        for name in published:
            if name in seen and not forced and name not in twice:
                twice.append(name)
            seen.setdefault(name, run_id)
    return twice


@dataclass(frozen=True)
class Verdict:
    """One consistency check: what it looked at (`checked`, a phrase with its count) and the
    offenders, each a short description starting with its id."""

    name: str
    checked: str
    offenders: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.offenders

    @property
    def detail(self) -> str:
        if self.ok:
            return f"ok: {self.checked}"
        shown = "; ".join(self.offenders[:SHOWN])
        more = len(self.offenders) - SHOWN
        tail = f"; and {more} more" if more > 0 else ""
        return f"{len(self.offenders)} found ({self.checked}): {shown}{tail}"
