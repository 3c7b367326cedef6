"""Whether a run may start for a recording now, and if not, why: one pure decision that both
`--dry-run` and the real start use, so a preview cannot promise what the run then does
differently (docs/cli.md, "Bulk work and --dry-run").

The facts come in as plain values (loaded set-based by services/bulk_start.py); nothing
here reads the database or the clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from leap.db.models import Recording
from leap.domain import RecordingStatus, Stage
from leap.states import can

# Exit codes of docs/cli.md that a refusal carries.
USAGE, NOT_FOUND, QUOTA, REAUTH, CONFLICT = 2, 3, 4, 5, 7


@dataclass(frozen=True)
class Facts:
    """What the decision needs about one recording."""

    recording_id: int
    title: str
    status: str
    blank: bool
    blank_reason: str | None
    mapped: bool
    active_run_id: int | None
    # Stages some earlier run finished (done or skipped): their outputs are reused.
    finished: frozenset[str] = frozenset()
    # Every target the template requires is uploaded (or held for approval).
    published: bool = False
    # Dead credential (needs re-authentication) by the stage that would use it.
    dead: Mapping[str, str] | None = None


def facts_of(rec: Recording, **more: Any) -> Facts:
    """A recording's own facts; `more` adds what its runs and targets say."""
    return Facts(
        recording_id=rec.id,
        title=rec.title,
        status=rec.status,
        blank=rec.blank_record,
        blank_reason=rec.blank_reason,
        mapped=rec.template_id is not None,
        active_run_id=rec.active_run_id,
        **more,
    )


@dataclass(frozen=True)
class Decision:
    recording_id: int
    title: str
    act: bool
    reason: str | None = None  # why not; or a note on what the run does
    exit_code: int = 0  # a refusal's code (docs/cli.md); 0 for a skip that is no failure

    @property
    def refused(self) -> bool:
        return not self.act and self.exit_code != 0


def not_found(recording_id: int) -> Decision:
    return Decision(recording_id, "", False, "not found", NOT_FOUND)


def waits_for_quota(d: Decision, refusal: str) -> Decision:
    """An accepted start that the owner's quota does not fit (services/metering.py): it
    waits for the reset, or for a run to end (docs/quotas.md)."""
    return Decision(d.recording_id, d.title, False, refusal, QUOTA)


def decide(f: Facts, planned: Sequence[str], *, force: bool, skip_done: bool = True) -> Decision:
    """Start a run of `planned` stages for this recording, or say why not. `skip_done`:
    a run whose every stage an earlier run finished would redo nothing (outputs are reused;
    only --force redoes them), so it is skipped rather than started."""

    def no(reason: str, code: int) -> Decision:
        return Decision(f.recording_id, f.title, False, reason, code)

    if f.status == RecordingStatus.EXPIRED.value:
        return no("deleted at its source", USAGE)
    if f.active_run_id is not None:
        return no(f"already being processed (run {f.active_run_id})", CONFLICT)
    if not force and f.blank:
        return no(f"blank record ({f.blank_reason or 'no reason given'}); --force runs it", USAGE)
    if not force and not f.mapped:
        return no("matches no template; add one, or --force", USAGE)
    if not can(f.status, RecordingStatus.QUEUED):
        return no(f"cannot be queued from status {f.status}", USAGE)
    todo = list(planned) if force else [s for s in planned if not _done(s, f)]
    if skip_done and not todo:
        return no("already done: outputs are reused, nothing would be redone; --force redoes", 0)
    for stage in todo:
        if f.dead and stage in f.dead:
            name = f.dead[stage]
            return no(f"credential {name} needs re-authentication: re-authenticate {name}", REAUTH)
    return Decision(f.recording_id, f.title, True)


def _done(stage: str, f: Facts) -> bool:
    if stage == Stage.UPLOAD.value:
        # An upload is done only when every target is: a preset added to the template
        # since, or a failed target, still has work.
        return stage in f.finished and f.published
    return stage in f.finished
