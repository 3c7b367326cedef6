"""`leap approve` (docs/approval.md), one recording at a time: what approving it means (read
here, decided by `specs.approval.plan`, which its --dry-run shares), the YouTube updates it
makes, and the unit of work that marks its targets approved and starts the upload run VK and
local export need.

The order keeps publishing exactly once: each videos.update body is recorded on its target
(`begin`, committed) before it is sent (`send`, outside any transaction: HTTP never holds the
database), and `finish` marks the targets approved afterwards. A crash in between leaves the
target awaiting with its body recorded; the next approve sends that same body again, which
leaves the video as one send does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx

from leap import states
from leap.context import Context, Runtime
from leap.db.base import utcnow
from leap.db.models import PipelineRun
from leap.db.scope import Scope
from leap.domain import Approval, CredentialStatus, RecordingStatus, Stage
from leap.errors import CredentialDead, LeapError
from leap.providers.http import Deferred, PermanentError
from leap.providers.youtube import YouTubeClient
from leap.services import clients, runs, youtube_quota
from leap.specs import approval
from leap.specs.approval import Plan, Step, TargetFacts
from leap.specs.metadata import rfc3339

YOUTU_BE = "https://youtu.be/"


def parse_when(ctx: Context, text: str, now: datetime) -> datetime:
    """`--publish-at TIME`, a time without an offset read in the acting user's timezone."""
    uid = ctx.scope.user_id
    zone = ctx.repos.users.require(uid).timezone if uid is not None else "UTC"
    return approval.parse_when(text, ZoneInfo(zone), now)


def plan(ctx: Context, recording_id: int, *, publish_at: datetime | None, now: datetime) -> Plan:
    """What approving this recording would do; NotFound for another user's (the scope)."""
    rec = ctx.repos.recordings.require(recording_id)
    facts = []
    for t in ctx.repos.targets.list(recording_id=rec.id):
        preset = ctx.repos.presets.get(t.preset_id)
        cred = (
            ctx.repos.credentials.get(preset.credential_id)
            if preset is not None and preset.credential_id is not None
            else None
        )
        facts.append(
            TargetFacts(
                id=t.id,
                preset=preset.name if preset is not None else str(t.preset_id),
                platform=t.platform,
                status=t.status,
                approval=t.approval,
                # The stage keeps a published target's link as its remote_id.
                video_id=t.remote_id.removeprefix(YOUTU_BE) if t.remote_id else None,
                credential_id=cred.id if cred is not None else None,
                credential=cred.name if cred is not None else None,
                credential_dead=cred is not None
                and cred.status == CredentialStatus.NEEDS_REAUTH.value,
                sent=dict(t.sent_metadata or {}),
            )
        )
    return approval.plan(
        rec.id,
        rec.title,
        running=rec.active_run_id is not None,
        targets=facts,
        publish_at=publish_at,
        now=now,
    )


def begin(ctx: Context, plan: Plan) -> None:
    """Record each videos.update body on its target before it is sent (see the module's
    docstring). A body recorded by an earlier approve stays as it was: the plan resends it."""
    for step in plan.steps:
        if step.status is None:
            continue
        target = ctx.repos.targets.require(step.target_id)
        sent = dict(target.sent_metadata or {})
        if approval.SENT_KEY in sent:
            continue
        sent[approval.SENT_KEY] = {
            "status": step.status,
            "note": step.note.removeprefix("youtube: "),
            "publish_at": rfc3339(step.publish_at) if step.publish_at else None,
        }
        target.sent_metadata = sent


@dataclass(frozen=True)
class Failure:
    """A step that did not happen: why, the CLI's exit code for it, and whether the update
    may have reached YouTube all the same (its answer lost), so its recorded body must stay."""

    message: str
    exit_code: int
    maybe_sent: bool


@dataclass(frozen=True)
class Sent:
    failed: dict[int, Failure]  # by target id
    units: dict[str, int]  # quota units spent, by Google project (every attempt costs)


def send(runtime: Runtime, scope: Scope, plan: Plan, http: httpx.Client) -> Sent:
    """The videos.update calls. Called between units of work (the client refreshes its token
    in its own); a credential YouTube rejects is marked dead, and its other steps are not
    tried."""
    made: dict[int, tuple[YouTubeClient, str]] = {}
    dead: dict[int, Failure] = {}
    failed: dict[int, Failure] = {}
    for step in plan.steps:
        if step.status is None or step.credential_id is None or step.video_id is None:
            continue
        cred = step.credential_id
        if cred in dead:
            failed[step.target_id] = dead[cred]
            continue
        try:
            if cred not in made:
                client, secret = clients.youtube_client(runtime, scope, cred, http)
                made[cred] = client, str(secret["client_id"])  # the Google project
            made[cred][0].update_status(step.video_id, step.status)
        except CredentialDead as exc:
            clients.mark_dead(runtime, scope, cred, "YouTube rejected the refresh token")
            why = f"re-authenticate {step.credential}: {exc.message}"
            failed[step.target_id] = dead[cred] = Failure(why, exc.exit_code, maybe_sent=False)
        except (PermanentError, Deferred) as exc:  # refused: 404 video gone, 400, 403, quota
            failed[step.target_id] = Failure(_said(step, exc), exc.exit_code, maybe_sent=False)
        except LeapError as exc:  # 5xx or the network past the retries: outcome unknown
            failed[step.target_id] = Failure(_said(step, exc), exc.exit_code, maybe_sent=True)
    units: dict[str, int] = {}
    for client, project in made.values():
        units[project] = units.get(project, 0) + sum(client.units_spent.values())
    return Sent(failed, units)


def _said(step: Step, exc: LeapError) -> str:
    return f"{step.preset}: {exc.message}"


@dataclass(frozen=True)
class Outcome:
    approved: list[str]  # preset names
    run: PipelineRun | None  # the upload run VK and local export go out with


def finish(ctx: Context, plan: Plan, sent: Sent | None = None) -> Outcome:
    """The unit of work that approves: every step that did not fail marks its target
    approved; VK and local targets are then published by an upload run (`leapd` takes it;
    a publish time ahead makes its stage wait for it). The recording is ready once nothing of
    it awaits approval any more. The quota units the updates spent go to the ledger."""
    failed: Mapping[int, Failure] = sent.failed if sent is not None else {}
    for project, units in (sent.units if sent is not None else {}).items():
        youtube_quota.charge(ctx, project, units)
    rec = ctx.repos.recordings.lock(plan.recording_id)
    now = utcnow()
    approved: list[str] = []
    upload = False
    for step in plan.steps:
        target = ctx.repos.targets.require(step.target_id)
        failure = failed.get(step.target_id)
        if failure is not None:
            if not failure.maybe_sent:  # YouTube refused it: the next approve decides anew
                target.sent_metadata = {
                    k: v for k, v in (target.sent_metadata or {}).items() if k != approval.SENT_KEY
                }
            continue
        if target.approval != Approval.AWAITING.value:
            continue  # another approve got there first
        target.approval, target.approved_at = Approval.APPROVED.value, now
        target.publish_at = step.publish_at
        approved.append(step.preset)
        upload = upload or step.uploads
    run = None
    if upload:
        run = runs.start_run(ctx, rec.id, stages=[Stage.UPLOAD.value])
    elif rec.status == RecordingStatus.AWAITING_APPROVAL.value and not ctx.repos.targets.list(
        recording_id=rec.id, approval=Approval.AWAITING.value
    ):
        rec.status = states.check(rec.status, RecordingStatus.READY).value
    return Outcome(approved, run)
