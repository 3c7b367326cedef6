"""The approval gate (docs/approval.md): the `approval` key of preset and template files, and the
pure decisions behind it: what the upload stage does with a target the gate holds, and what
`leap approve` does with a target that awaits approval."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from enum import StrEnum
from typing import Any

from leap.domain import Approval, Platform, TargetStatus
from leap.errors import UsageError
from leap.specs.metadata import parse_publish_at, rfc3339, youtube_body

# The top-level key of preset and template files. Written after a table, TOML puts it in
# [metadata], where no platform uses it: refused there, with a hint (MISPLACED).
GATE_KEY = "approval"
# In a YouTube target's sent_metadata: the privacy and publish_at the metadata asked for,
# which the gate replaced with a private, unscheduled upload; `leap approve` applies them.
ASKED_KEY = "approval_asked"
# In a YouTube target's sent_metadata: the videos.update status `leap approve` is about to
# send, recorded before it is sent, so that an approve cut short is finished with that same
# body and never with a different one.
SENT_KEY = "approval_update"
# The status fields a videos.update with part=status must send again: it replaces every
# mutable property of the part, and one left out reverts to YouTube's default.
_STATUS_KEYS = ("made_for_kids", "embeddable", "license")
MISPLACED = "approval is a top-level key; write it before the first [table]"


# ------------------------------------------------------------------------------ the upload


class Gate(StrEnum):
    """What the upload stage does with one target."""

    PUBLISH = "publish"  # as its metadata says
    PRIVATE = "private"  # YouTube: upload it private and unscheduled, then await approval
    HOLD = "hold"  # VK, local export: send nothing, await approval
    SCHEDULED = "scheduled"  # approved for a time still ahead: wait for it


def at_upload(
    *,
    platform: str,
    approval: str | None,
    gated: bool,
    started: bool,
    publish_at: datetime | None,
    now: datetime,
) -> Gate:
    """The gate's verdict on a target the upload stage is about to publish. `gated`: its
    preset or the recording's template says `approval = true`; `started`: something was sent
    for it already (a YouTube session, a VK slot), before the gate was turned on: it goes on as
    it began rather than leave a half-made upload behind. A target awaiting approval stays
    held until `leap approve`, even if the gate was turned off meanwhile."""
    if approval == Approval.APPROVED.value:
        if platform != Platform.YOUTUBE.value and publish_at is not None and publish_at > now:
            return Gate.SCHEDULED
        return Gate.PUBLISH
    if approval == Approval.AWAITING.value or (gated and not started):
        return Gate.PRIVATE if platform == Platform.YOUTUBE.value else Gate.HOLD
    return Gate.PUBLISH


def held(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A gated YouTube upload: the values to send (private, no publish_at, whatever the
    metadata says) and what the metadata asked for, which approval applies."""
    asked = {"privacy": values.get("privacy"), "publish_at": values.get("publish_at")}
    out = {k: v for k, v in values.items() if k != "publish_at"}
    out["privacy"] = "private"
    return out, asked


# ------------------------------------------------------------------------------ leap approve


def parse_when(text: str, tz: tzinfo, now: datetime) -> datetime:
    """`--publish-at TIME`: ISO 8601 like metadata's publish_at, a time without an offset in
    the user's timezone `tz`; it must lie ahead."""
    moment = parse_publish_at(text, "--publish-at", tz)
    if moment <= now:
        raise UsageError(f"--publish-at {text!r}: that time has passed (give a future time)")
    return moment


NOTHING = "nothing awaiting approval"


@dataclass(frozen=True)
class TargetFacts:
    """What the decision needs to know about one output target."""

    id: int
    preset: str
    platform: str
    status: str
    approval: str | None
    video_id: str | None  # remote_id: YouTube's video id once uploaded
    credential_id: int | None = None
    credential: str | None = None
    credential_dead: bool = False
    sent: Mapping[str, Any] = field(default_factory=dict)  # sent_metadata


@dataclass(frozen=True)
class Step:
    """One thing approve does: a YouTube target gets `status` by videos.update (None: its
    status already is what it asks for), a VK or local one is marked approved and published by
    an upload run, not before `publish_at`."""

    target_id: int
    preset: str
    platform: str
    note: str
    credential_id: int | None = None
    credential: str | None = None
    video_id: str | None = None
    status: dict[str, Any] | None = None
    publish_at: datetime | None = None

    @property
    def uploads(self) -> bool:
        return self.platform != Platform.YOUTUBE.value


@dataclass(frozen=True)
class Plan:
    """What approve does with one recording: its steps, or why it does nothing: `skip` (not
    an error: nothing awaits, it is running) or `refused` (an error: a dead credential)."""

    recording_id: int
    title: str
    steps: tuple[Step, ...] = ()
    skip: str | None = None
    refused: str | None = None

    @property
    def acts(self) -> bool:
        return bool(self.steps) and self.refused is None

    @property
    def reason(self) -> str | None:
        if self.refused is not None:
            return self.refused
        if self.steps:
            return "; ".join(s.note for s in self.steps)
        return self.skip


def plan(
    recording_id: int,
    title: str,
    *,
    running: bool,
    targets: Sequence[TargetFacts],
    publish_at: datetime | None,
    now: datetime,
) -> Plan:
    """The decision `leap approve` and its --dry-run share."""
    waiting = [t for t in targets if t.approval == Approval.AWAITING.value]
    if not waiting:
        done = any(t.approval == Approval.APPROVED.value for t in targets)
        return Plan(recording_id, title, skip="already approved" if done else NOTHING)
    if running:
        return Plan(recording_id, title, skip="running")
    dead = next((t for t in waiting if t.credential_dead), None)
    if dead is not None:
        # Nothing of the recording is approved: a half-approved lecture helps no one, and
        # the credential is fixed first (leap oauth ... / credentials add --replace).
        refused = f"re-authenticate {dead.credential}: it was refused before"
        return Plan(recording_id, title, refused=refused)
    steps: list[Step] = []
    later: list[str] = []
    for t in waiting:
        if t.platform != Platform.YOUTUBE.value:
            steps.append(_upload_step(t, publish_at))
        elif t.status != TargetStatus.UPLOADED.value or not t.video_id:
            later.append(f"{t.preset} ({t.platform}) is {t.status}")
        else:
            steps.append(_youtube_step(t, publish_at, now))
    if not steps:
        return Plan(recording_id, title, skip="not uploaded yet: " + ", ".join(later))
    return Plan(recording_id, title, steps=tuple(steps))


def _upload_step(t: TargetFacts, publish_at: datetime | None) -> Step:
    verb = "export" if t.platform == Platform.LOCAL.value else "upload"
    when = f" at {rfc3339(publish_at)}" if publish_at is not None else ""
    return Step(
        t.id,
        t.preset,
        t.platform,
        f"{t.platform}: {verb}{when}",
        t.credential_id,
        t.credential,
        publish_at=publish_at,
    )


def _youtube_step(t: TargetFacts, publish_at: datetime | None, now: datetime) -> Step:
    def step(note: str, status: dict[str, Any] | None, when: datetime | None = None) -> Step:
        return Step(
            t.id,
            t.preset,
            t.platform,
            f"youtube: {note}",
            t.credential_id,
            t.credential,
            t.video_id,
            status,
            when,
        )

    pending = t.sent.get(SENT_KEY)
    if isinstance(pending, Mapping) and isinstance(pending.get("status"), Mapping):
        # An approve was cut short after recording its update: the same body again, whatever
        # is asked now, so a lost answer cannot turn into a second, different outcome.
        note = f"{pending.get('note') or 'update'} (finishing an earlier approve)"
        when = _time(pending.get("publish_at"))
        return step(note, dict(pending["status"]), when)
    if publish_at is not None:
        note = f"schedule for {rfc3339(publish_at)}"
        return step(note, status_for(t.sent, publish_at=publish_at), publish_at)
    asked = t.sent.get(ASKED_KEY)
    asked = asked if isinstance(asked, Mapping) else {}
    wanted = _time(asked.get("publish_at"))
    if wanted is not None and wanted > now:
        note = f"schedule for {rfc3339(wanted)} (its metadata's publish_at)"
        return step(note, status_for(t.sent, publish_at=wanted), wanted)
    if wanted is not None:  # the time it was to go public has passed while it waited
        return step("make public (its publish_at has passed)", status_for(t.sent, "public"))
    privacy = str(asked.get("privacy") or "private")
    if privacy == "private":
        return step("stays private (its metadata asks for private)", None)
    return step(f"make {privacy}", status_for(t.sent, privacy))


def _time(value: Any) -> datetime | None:
    """A stored publish time, or None when there is none (or it no longer parses)."""
    if value in (None, ""):
        return None
    try:
        return parse_publish_at(value, "publish_at")
    except UsageError:
        return None


def status_for(
    sent: Mapping[str, Any], privacy: str = "private", *, publish_at: datetime | None = None
) -> dict[str, Any]:
    """The videos.update status: the new privacy (a publish time forces private until then)
    and the status fields the upload sent, which an update of the part must repeat."""
    values: dict[str, Any] = {k: sent[k] for k in _STATUS_KEYS if k in sent}
    values["privacy"] = privacy
    if publish_at is not None:
        values["publish_at"] = publish_at
    status: dict[str, Any] = youtube_body(values)["status"]
    return status
