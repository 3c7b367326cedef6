"""The daily digest (docs/notifications.md, "Daily digest"): once per user and local day, at
`notify.digest_hour`, a summary of the last 24 hours to the targets that asked for it. The
automation tick calls `send_due`; a (user, local day) row in system_state is the claim, so
several leapd send it once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from leap.context import Runtime, open_context
from leap.db.models import AutomationRun, Credential, OutputTarget, StageResult, SystemState
from leap.db.scope import Scope
from leap.domain import Approval, CredentialStatus, StageStatus, TargetStatus
from leap.services import notify
from leap.services.automation import zone_of

DIGEST = "digest"


def send_due(runtime: Runtime, now: datetime) -> int:
    """Send every digest due at `now`; returns how many users got one from this call."""
    hour = runtime.settings.notify.digest_hour
    with open_context(runtime, Scope.system_scope()) as ctx:
        wanted = {
            t.user_id for t in ctx.repos.notify_targets.list(enabled=True) if DIGEST in t.events
        }
        due: list[tuple[int, str]] = []
        for uid in sorted(wanted):
            user = ctx.repos.users.get(uid)
            if user is None or user.disabled:
                continue
            local = now.astimezone(zone_of(user))
            if local.hour >= hour:
                due.append((uid, local.date().isoformat()))
    sent = 0
    for uid, day in due:
        try:
            sent += _send(runtime, uid, day, now)
        except IntegrityError:
            continue  # another process sent this user's digest for the day
    return sent


def _send(runtime: Runtime, uid: int, day: str, now: datetime) -> int:
    key = f"digest:{uid}:{day}"
    with open_context(runtime, Scope.system_scope()) as ctx:
        if ctx.repos.system.get_key(key) is not None:
            return 0
        # The claim: system_state's key is unique, and it commits with the messages.
        ctx.session.add(SystemState(key=key, value={"at": now.isoformat()}))
        ctx.session.flush()
        since = now - timedelta(days=1)
        s = ctx.session
        published = s.scalar(
            select(func.count())
            .select_from(OutputTarget)
            .where(
                OutputTarget.user_id == uid,
                OutputTarget.status == TargetStatus.UPLOADED.value,
                OutputTarget.uploaded_at >= since,
                # Up but held for approval (a private YouTube video) is not published.
                OutputTarget.approval.is_distinct_from(Approval.AWAITING.value),
            )
        )
        failed = s.scalar(
            select(func.count())
            .select_from(StageResult)
            .where(
                StageResult.user_id == uid,
                StageResult.status == StageStatus.FAILED.value,
                StageResult.updated_at >= since,
            )
        )
        firings = dict(
            s.execute(
                select(AutomationRun.status, func.count())
                .where(AutomationRun.user_id == uid, AutomationRun.finished_at >= since)
                .group_by(AutomationRun.status)
            ).all()
        )
        dead = s.scalar(
            select(func.count())
            .select_from(Credential)
            .where(
                Credential.user_id == uid,
                Credential.status == CredentialStatus.NEEDS_REAUTH.value,
            )
        )
        payload = {
            "day": day,
            "since": since.astimezone(UTC).isoformat(),
            "published": int(published or 0),
            "failed": int(failed or 0),
            "firings": {str(k): int(v) for k, v in firings.items()},
            "needs_reauth": int(dead or 0),
        }
        return 1 if notify.emit(ctx, DIGEST, payload, user_id=uid) else 0
