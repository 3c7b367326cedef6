"""The upload stage: every target of the recording is published once. Local export writes a
folder per recording; a target already published is never published again unless forced."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from leap.context import open_context
from leap.db.base import utcnow
from leap.domain import Approval, CredentialStatus, RecordingStatus, TargetStatus
from leap.errors import CredentialDead, LeapError, QuotaExceeded
from leap.pipeline.publish.local import export_local
from leap.pipeline.publish.targets import RESERVED_KEY, STEPS_KEY, Publisher
from leap.pipeline.publish.vk import publish_vk
from leap.pipeline.publish.youtube import publish_youtube
from leap.pipeline.stage_api import StageContext, StageOutcome, Waiting
from leap.providers.http import Deferred, RetryableError
from leap.providers.youtube import QuotaDeferred
from leap.services import metering, notify, publishing, usage
from leap.specs import approval
from leap.specs.approval import Gate

# The package's name: the CLI drops this logger's errors, which the stage's error already says
# (cli/app.py, SaidByTheCommand).
log = logging.getLogger(__package__)


PUBLISHERS: dict[str, Publisher] = {
    "local": export_local,
    "youtube": publish_youtube,
    "vk": publish_vk,
}


def run_upload(sc: StageContext) -> StageOutcome:
    scheduled: list[datetime] = []  # approved VK/local targets whose publish time is ahead
    with open_context(sc.runtime, sc.scope) as ctx:
        rec = ctx.repos.recordings.require(sc.recording_id)
        pairs = publishing.ensure_targets(ctx, rec)
        if sc.force and "republished" not in sc.state:
            # Redo outputs once per run: a retry, a wake-up after a quota wait or a restart
            # after a crash resumes instead of publishing yet again. The mark is written in
            # the same transaction as the resets, so no crash can separate them.
            reset = [t.id for t, _ in pairs if publishing.reset_for_republish(t)]
            stage = ctx.repos.stages.find(run_id=sc.run_id, name=sc.stage.value)
            if stage is not None:
                stage.result = {**stage.result, "republished": reset}
        plans = []
        for t, p in pairs:
            if t.status == TargetStatus.UPLOADED.value:
                continue
            cred = ctx.repos.credentials.get(p.credential_id) if p.credential_id else None
            gate = publishing.gate(ctx, rec, p, t)
            if gate is Gate.HOLD:
                # Nothing goes out until `leap approve` (docs/approval.md): not a failure.
                t.approval, t.status = Approval.AWAITING.value, TargetStatus.PENDING.value
                t.error = None
                continue
            if gate is Gate.SCHEDULED:
                assert t.publish_at is not None
                scheduled.append(t.publish_at)
                continue
            plans.append((t.id, p, cred, publishing.resolve_for(ctx, rec, p), gate))
    if not pairs:
        return StageOutcome(skipped=True, result={"reason": "the template names no presets"})
    done: list[str] = []
    failed: list[str] = []
    dead: list[str] = []
    transient: list[str] = []
    deferred: list[datetime] = []
    for target_id, preset, cred, meta, gate in plans:
        extra: dict[str, Any] = {}
        if gate is Gate.PRIVATE:
            # Up as private and unscheduled whatever the metadata says; what it asked for is
            # kept for `leap approve` to apply.
            held, asked = approval.held(meta.values)
            meta, extra = replace(meta, values=held), {approval.ASKED_KEY: asked}
        # An upload to a platform takes one unit of the owner's quota before the first byte
        # (services/metering.py); over it, the target waits for the period's reset.
        kind = usage.upload_kind(preset.platform)
        try:
            with open_context(sc.runtime, sc.scope) as ctx:
                if kind is not None:  # in the same commit as the target's "uploading"
                    metering.reserve(
                        ctx,
                        rec.user_id,
                        kind,
                        1,
                        ref=upload_ref(target_id),
                        recording_id=rec.id,
                        platform=preset.platform,
                    )
                target = ctx.repos.targets.require(target_id)
                target.status, target.attempts = TargetStatus.UPLOADING.value, target.attempts + 1
                if gate is Gate.PRIVATE:  # decided before the first byte, kept across attempts
                    target.approval = Approval.AWAITING.value
                # An upload slot saved by an earlier attempt must survive (it is how an unknown
                # outcome is reconciled before anything is sent again), and so must the record of
                # the extras done after an upload.
                kept = {
                    k: v
                    for k, v in (target.sent_metadata or {}).items()
                    if k in ("vk_slot", STEPS_KEY, RESERVED_KEY)
                }
                target.sent_metadata = {**meta.values, **extra, **kept}
                target.repairs = [r.__dict__ for r in meta.repairs]
        except QuotaExceeded as exc:
            until = exc.resets_at or utcnow() + timedelta(hours=1)
            _finish(sc, target_id, TargetStatus.DEFERRED, error=exc.message, deferred_until=until)
            deferred.append(until)
            continue
        try:
            if cred is not None and cred.status == CredentialStatus.NEEDS_REAUTH.value:
                raise CredentialDead("it was refused before; add it again once re-authorized")
            url = PUBLISHERS[preset.platform](sc, rec, target, preset, meta)
        except Deferred as exc:
            # Not a failure: the quota resets (or flood control ends) at retry_at; the stage
            # waits for it. Its unit of our quota goes back until then.
            _release(sc, kind, target_id)
            _finish(
                sc,
                target_id,
                TargetStatus.DEFERRED,
                error=exc.message,
                deferred_until=exc.retry_at,
                quota=isinstance(exc, QuotaDeferred),
            )
            deferred.append(exc.retry_at)
            continue
        except CredentialDead as exc:
            _release(sc, kind, target_id)
            name = cred.name if cred is not None else preset.name
            why = f"re-authenticate {name}: {exc.message}"
            _finish(sc, target_id, TargetStatus.FAILED, error=why)
            log.error("recording %s, target %s: %s", rec.id, preset.name, why)
            failed.append(f"{preset.name}: {why}")
            dead.append(preset.name)
            continue
        except RetryableError as exc:  # the in-stage retries ran out: the stage retries later
            _finish(sc, target_id, TargetStatus.FAILED, error=exc.message)
            transient.append(f"{preset.name}: {exc.message}")
            continue
        except LeapError as exc:
            _release(sc, kind, target_id)
            _finish(sc, target_id, TargetStatus.FAILED, error=exc.message)
            failed.append(f"{preset.name}: {exc.message}")
            continue
        # A transient failure keeps its unit: the retry may find the video already up, and
        # reuses the reservation (same ref) either way.
        _finish(sc, target_id, TargetStatus.UPLOADED, url=url, settle=kind is not None)
        if gate is not Gate.PRIVATE:  # a held video is up, but not published
            done.append(preset.name)
    if deferred or scheduled:
        # Targets that failed meanwhile keep their error and are tried again on that pass.
        wait = max(1.0, (min(deferred + scheduled) - utcnow()).total_seconds())
        waits = []
        if deferred:
            waits.append(f"{len(deferred)} target(s) wait for the platform (quota or flood)")
        if scheduled:
            waits.append(f"{len(scheduled)} target(s) wait for their approved publish time")
        raise Waiting("; ".join(waits), wait)
    if transient:
        raise RetryableError(
            f"{len(transient)} of {len(pairs)} target(s) will be retried: " + "; ".join(transient),
            provider="upload",
        )
    if failed:
        message = f"{len(failed)} of {len(pairs)} target(s) failed: " + "; ".join(failed)
        if len(dead) == len(failed):  # only dead credentials: the CLI's exit code 5
            raise CredentialDead(message)
        raise LeapError(message)
    result: dict[str, Any] = {"published": done, "targets": len(pairs)}
    with open_context(sc.runtime, sc.scope) as ctx:
        waiting = {
            t.preset_id
            for t in ctx.repos.targets.list(
                recording_id=sc.recording_id, approval=Approval.AWAITING.value
            )
        }
    held_back = [p.name for _, p in pairs if p.id in waiting]
    if held_back:
        # Not a failure: the stage is done, the recording awaits approval (services.runs).
        result[RecordingStatus.AWAITING_APPROVAL.value] = held_back
        log.info(
            "recording %s: %s await(s) approval (leap approve %s)",
            sc.recording_id,
            ", ".join(held_back),
            sc.recording_id,
        )
    return StageOutcome(result=result)


def upload_ref(target_id: int) -> str:
    """What an upload's reservation pays for: the target, uploaded once (a retry or a
    second daemon finds the same reservation)."""
    return f"upload:{target_id}"


def _release(sc: StageContext, kind: str | None, target_id: int) -> None:
    if kind is not None:
        with open_context(sc.runtime, sc.scope) as ctx:
            metering.release(ctx, upload_ref(target_id))


def _finish(
    sc: StageContext,
    target_id: int,
    status: TargetStatus,
    *,
    url: str | None = None,
    error: str | None = None,
    deferred_until: datetime | None = None,
    quota: bool = False,
    settle: bool = False,
) -> None:
    with open_context(sc.runtime, sc.scope) as ctx:
        if settle:  # the reservation is now a done upload, in the target's own commit
            metering.settle(ctx, upload_ref(target_id), 1)
        target = ctx.repos.targets.require(target_id)
        target.status, target.error = status.value, error
        target.deferred_until = deferred_until
        if quota:  # a YouTube quota deferral (not VK's flood control, over in minutes)
            notify.quota_deferred(ctx, target, error or "", deferred_until)
        if url is not None:
            target.url = url if "://" in url else f"file://{url}"
            target.remote_id = url
            target.uploaded_at = utcnow()
