"""Notifications: each user's targets (webhooks, e-mail), the events they hear, and delivery.

`emit` writes one `Notification` row per subscribed target inside the caller's unit of work
and queues its delivery for after the commit, so a message is never sent about something that
was rolled back, and never lost: the row is the truth, the queue message only a nudge (Huey
is at-most-once; `requeue_due`, run by the reconciler, nudges again). `deliver` sends one
row once, outside any unit of work, and records the outcome in its own: sent, or a retry
with back-off, or failed after `notify.max_attempts` (docs/notifications.md).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update

from leap.config import Settings
from leap.context import Context, Runtime, open_context
from leap.db.base import utcnow
from leap.db.models import (
    Credential,
    Notification,
    NotifyTarget,
    OutputTarget,
    PipelineRun,
    Recording,
    StageResult,
)
from leap.db.scope import Scope
from leap.domain import Approval, Stage, TargetStatus
from leap.errors import ConfigError, Conflict, LeapError, NotFound, UsageError
from leap.logs import register_secret
from leap.providers.http import make_http_client, one_line
from leap.providers.notify_transport import (
    STYLES,
    NotifyFailed,
    post_webhook,
    safe_url,
    send_email,
    valid_address,
)

log = logging.getLogger(__name__)

DELIVER_TASK = "leap.notify.deliver"  # tasks.NOTIFY_DELIVER (services may not import tasks)

EVENTS = (
    "published",
    "stage_failed",
    "credential_reauth",
    "quota_deferred",
    "automation_failed",
    "digest",
)
# Sent only to targets that name them in --events ("all" means every other event): a daily
# summary nobody asked for is noise.
OPT_IN = frozenset({"digest"})
KINDS = ("webhook", "email")
PENDING, SENT, FAILED = "pending", "sent", "failed"

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # as credential names

# Back-off between attempts: 30 s, 1 min, 2 min, ... never more than an hour.
BACKOFF_BASE_S = 30.0
BACKOFF_MAX_S = 3600.0
# A delivery message may arrive this early (another host's clock) and still be taken.
EARLY_S = 5.0
# The reconciler nudges a pending row this long past its due time: its own message had that
# long to arrive, so it was lost with a killed worker or a queue that did not answer.
REQUEUE_GRACE_S = 120.0
REQUEUE_BATCH = 500

# (task name, kwargs, delay in seconds or None): TaskQueue.send, or a test's recorder.
Send = Callable[[str, dict[str, Any], float | None], None]


# ----------------------------------------------------------------------------------- targets


def parse_events(text: str | None) -> list[str]:
    """`published,stage_failed` → that list; empty, None or `all` → [] (every event)."""
    if text is None or text.strip() in ("", "all"):
        return []
    events: list[str] = []
    for raw in text.split(","):
        name = raw.strip()
        if not name:
            continue
        if name not in EVENTS:
            raise UsageError(f"--events: unknown event '{name}' (one of: {', '.join(EVENTS)})")
        if name not in events:
            events.append(name)
    return events


def check_webhook_url(url: str) -> None:
    """An http(s) URL with a host. The URL is never echoed: it may hold a token."""
    bad = UsageError("--webhook: expected an http:// or https:// URL with a host")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise bad
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise bad from None
    if parts.scheme not in ("http", "https") or not host:
        raise bad


def add_target(
    ctx: Context,
    name: str,
    *,
    webhook: str | None = None,
    email: str | None = None,
    style: str | None = None,
    events: list[str] | None = None,
) -> NotifyTarget:
    """A new target of the acting user; `events` empty or None: every event."""
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"invalid target name '{name}': letters, digits, '.', '_', '-'")
    if (webhook is None) == (email is None):
        raise UsageError("give --webhook URL or --email ADDRESS (one of them)")
    for event in events or []:
        if event not in EVENTS:
            raise UsageError(f"--events: unknown event '{event}' (one of: {', '.join(EVENTS)})")
    config: dict[str, Any]
    if webhook is not None:
        check_webhook_url(webhook)
        chosen = style or "json"
        if chosen not in STYLES:
            raise UsageError(f"--style: unknown style '{chosen}' (one of: {', '.join(STYLES)})")
        kind, config = "webhook", {"url": webhook, "style": chosen}
    else:
        assert email is not None
        if style is not None:
            raise UsageError("--style is for webhooks; an e-mail target has none")
        if not valid_address(email):
            raise UsageError("--email: expected one address such as name@example.org")
        if not ctx.settings.notify.smtp_host:
            raise ConfigError(
                "e-mail targets need notify.smtp_host (leap.toml [notify], or "
                "LEAP_NOTIFY__SMTP_HOST)"
            )
        kind, config = "email", {"to": email}
    repo = ctx.repos.notify_targets
    if repo.by_name(name) is not None:
        raise Conflict(f"notification target '{name}' already exists (remove it first)")
    return repo.add(NotifyTarget(name=name, kind=kind, config=config, events=list(events or [])))


def list_targets(ctx: Context) -> list[NotifyTarget]:
    return ctx.repos.notify_targets.list(order_by=(NotifyTarget.name,))


def get_target(ctx: Context, name: str) -> NotifyTarget:
    return ctx.repos.notify_targets.require_name(name)


def remove_target(ctx: Context, name: str) -> None:
    """Delete a target and its messages (sent or not)."""
    target = get_target(ctx, name)
    ctx.repos.notifications.delete_where(target_id=target.id)
    ctx.repos.notify_targets.delete(target)


def where(target: NotifyTarget) -> str:
    """Where a target sends, as it may be shown: an address, or a URL's scheme and host."""
    if target.kind == "email":
        return str(target.config.get("to", ""))
    return safe_url(str(target.config.get("url", "")))


def target_view(ctx: Context, target: NotifyTarget) -> dict[str, Any]:
    """The row `leap notify list` shows: never the full webhook URL."""
    last = ctx.session.scalars(
        select(Notification)
        .where(Notification.target_id == target.id)
        .order_by(Notification.id.desc())
        .limit(1)
    ).first()
    return {
        "name": target.name,
        "kind": target.kind,
        "style": target.config.get("style") if target.kind == "webhook" else None,
        "to": where(target),
        "events": ",".join(target.events) if target.events else "all",
        "enabled": target.enabled,
        "last_event": last.event if last else None,
        "last_status": last.status if last else None,
        "last_error": last.error if last else None,
    }


# ------------------------------------------------------------------------------------- emit


def _json_safe(payload: dict[str, Any]) -> dict[str, Any]:
    # The row's JSON column refuses datetimes and the like: they become their text.
    value = json.loads(json.dumps(payload, default=str))
    return value if isinstance(value, dict) else {}


def emit(ctx: Context, event: str, payload: dict[str, Any], *, user_id: int | None = None) -> int:
    """Record `event` for every enabled target of the user (the acting user, or `user_id`;
    system-scope callers must name it) that hears it, and queue each delivery for after this
    unit of work commits. Returns how many were recorded. Nothing is sent here, so nothing
    about delivery can fail the caller."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    owner = user_id if user_id is not None else ctx.scope.user_id
    if owner is None:
        raise ValueError("notify.emit in system scope needs the user_id")
    targets = ctx.repos.notify_targets.list(user_id=owner, enabled=True)
    chosen = [t for t in targets if event in t.events or (not t.events and event not in OPT_IN)]
    if not chosen:
        return 0
    body = _json_safe(payload)
    now = utcnow()
    rows = [
        Notification(
            user_id=owner,
            target_id=t.id,
            event=event,
            payload=body,
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
        )
        for t in chosen
    ]
    ctx.session.add_all(rows)
    ctx.session.flush()
    for row in rows:
        ctx.defer_enqueue(DELIVER_TASK, notification_id=row.id)
    return len(rows)


# The events LEAP's own code raises, each built from the rows at hand: ids, titles, links,
# names and reasons (already redacted where they quote a provider), never a secret.


def recording_published(ctx: Context, rec: Recording, run: PipelineRun) -> int:
    """The run ended with its upload stage done: `published` if that stage published
    anything (a pass that found every target already up says nothing new)."""
    upload = next(
        (s for s in ctx.repos.stages.list(run_id=run.id) if s.name == Stage.UPLOAD.value), None
    )
    if upload is None or not upload.result.get("published"):
        return 0
    links = []
    for t in ctx.repos.targets.list(recording_id=rec.id, order_by=(OutputTarget.id,)):
        if t.status != TargetStatus.UPLOADED.value or not t.url:
            continue
        if t.approval == Approval.AWAITING.value:  # up, but held back: not published yet
            continue
        preset = ctx.repos.presets.get(t.preset_id)
        links.append(
            {"preset": preset.name if preset else None, "platform": t.platform, "url": t.url}
        )
    payload = {"recording_id": rec.id, "title": rec.title, "run_id": run.id, "links": links}
    return emit(ctx, "published", payload, user_id=rec.user_id)


def stage_failed(ctx: Context, rec: Recording, st: StageResult, reason: str) -> int:
    """A stage failed for good (no attempts left, or an error not worth retrying)."""
    payload = {
        "recording_id": rec.id,
        "title": rec.title,
        "run_id": st.run_id,
        "stage": st.name,
        "attempts": st.attempts,
        "reason": reason,
    }
    return emit(ctx, "stage_failed", payload, user_id=rec.user_id)


def credential_reauth(ctx: Context, cred: Credential, reason: str) -> int:
    payload = {"credential": cred.name, "kind": cred.kind, "reason": reason}
    return emit(ctx, "credential_reauth", payload, user_id=cred.user_id)


def quota_deferred(
    ctx: Context, target: OutputTarget, reason: str, retry_at: datetime | None
) -> int:
    rec = ctx.repos.recordings.get(target.recording_id)
    preset = ctx.repos.presets.get(target.preset_id)
    payload = {
        "recording_id": target.recording_id,
        "title": rec.title if rec else None,
        "preset": preset.name if preset else None,
        "platform": target.platform,
        "reason": reason,
        "retry_at": retry_at,
    }
    return emit(ctx, "quota_deferred", payload, user_id=target.user_id)


# --------------------------------------------------------------------------------- messages


def _recording(payload: dict[str, Any]) -> str:
    title = str(payload.get("title") or "").strip()
    rid = payload.get("recording_id")
    if title and rid is not None:
        return f"{title} (recording {rid})"
    return title or f"recording {rid}"


def render(event: str, payload: dict[str, Any]) -> tuple[str, str]:
    """The title and the plain text of a message (docs/notifications.md, "Events")."""
    p = payload
    if event == "published":
        links = [
            f"{link.get('preset') or link.get('platform')}: {link.get('url')}"
            for link in p.get("links") or []
            if isinstance(link, dict)
        ]
        return f"Published: {_recording(p)}", "\n".join(links) or "published"
    if event == "stage_failed":
        return (
            f"Failed: {_recording(p)}",
            f"stage {p.get('stage')} failed after {p.get('attempts')} attempt(s): "
            f"{p.get('reason')}\n'leap retry {p.get('recording_id')}' runs it again.",
        )
    if event == "credential_reauth":
        name = p.get("credential")
        return (
            f"Re-authenticate {name}",
            f"{p.get('kind')} credential '{name}' was refused and needs re-authentication: "
            f"{p.get('reason')}\n'leap oauth ... {name}' or 'leap credentials add ... {name} "
            "--replace' restores it.",
        )
    if event == "quota_deferred":
        return (
            f"Quota: {_recording(p)} waits",
            f"{p.get('preset') or p.get('platform')} waits for the quota reset at "
            f"{p.get('retry_at')}: {p.get('reason')}",
        )
    if event == "test":
        return "LEAP test notification", str(p.get("text") or "This target works.")
    if event == "digest":
        firings = p.get("firings") or {}
        lines = [
            f"published: {p.get('published', 0)} recording(s)",
            f"failed stages: {p.get('failed', 0)}",
            f"automation firings: {firings.get('done', 0)} done, {firings.get('failed', 0)} failed",
            f"credentials needing re-authentication: {p.get('needs_reauth', 0)}",
        ]
        return f"LEAP daily digest for {p.get('day')}", "\n".join(lines)
    # automation_failed, and any event whose payload is not LEAP's own: every scalar fact.
    name = p.get("job") or p.get("automation") or p.get("name")
    title = f"Automation failed: {name}" if event == "automation_failed" else event
    facts = [f"{k}: {v}" for k, v in p.items() if not isinstance(v, (dict, list))]
    return title, "\n".join(facts) or event


@dataclass(frozen=True)
class Message:
    """One message, ready to send outside any unit of work."""

    kind: str
    target: str  # the target's name
    config: dict[str, Any]
    title: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)


def _message(target: NotifyTarget, event: str, payload: dict[str, Any], nid: int | None) -> Message:
    title, text = render(event, payload)
    data = {"event": event, "id": nid, "target": target.name, "data": payload}
    return Message(target.kind, target.name, dict(target.config), title, text, data)


def send(settings: Settings, message: Message) -> None:
    """One attempt; raises NotifyFailed (one redacted line) when it does not go through."""
    s = settings.notify
    if message.kind == "webhook":
        url = str(message.config.get("url", ""))
        # Slack and Discord URLs carry their token: no log line may show it, whoever logs.
        register_secret(url)
        path = url.split("://", 1)[-1].partition("/")[2]
        if len(path) >= 12:
            register_secret("/" + path)
        style = str(message.config.get("style") or "json")
        with make_http_client(timeout=s.timeout_seconds, deadline=s.timeout_seconds) as http:
            post_webhook(http, url, style, message.title, message.text, message.data)
        return
    if message.kind == "email":
        if not s.smtp_host:
            raise NotifyFailed("e-mail needs notify.smtp_host, which is not set")
        sender = s.smtp_from or (s.smtp_user if valid_address(s.smtp_user) else "leap@localhost")
        body = message.text + "\n\n-- \nSent by LEAP (" + str(message.data.get("event")) + ")\n"
        send_email(
            host=s.smtp_host,
            port=s.smtp_port,
            user=s.smtp_user,
            password=s.smtp_password.get_secret_value(),
            sender=sender,
            starttls=s.smtp_starttls,
            timeout=s.timeout_seconds,
            to=str(message.config.get("to", "")),
            subject=f"[LEAP] {message.title}",
            body=body,
        )
        return
    raise NotifyFailed(f"target '{message.target}' has an unknown kind '{message.kind}'")


def _attempt(settings: Settings, message: Message) -> str | None:
    """Send once; None when delivered, else the reason as one line. Never raises."""
    try:
        send(settings, message)
    except LeapError as exc:
        return one_line(exc.message)
    except Exception as exc:  # a bug must not lose the row: it is recorded, then retried
        log.error("notification to %s: unexpected error", message.target, exc_info=True)
        return one_line(f"unexpected {type(exc).__name__} (a bug; details in the log)")
    return None


# ---------------------------------------------------------------------------------- deliver


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones."""
    return float(min(BACKOFF_BASE_S * 2 ** max(attempts - 1, 0), BACKOFF_MAX_S))


def _lease(settings: Settings) -> timedelta:
    # How long one attempt may hold its row: a webhook ends within twice the timeout (the
    # whole-call deadline), an SMTP exchange within a few timeouts; then a lost attempt is
    # the reconciler's to send again.
    return timedelta(seconds=6 * settings.notify.timeout_seconds + 60)


def deliver(runtime: Runtime, notification_id: int, send_task: Send) -> str:
    """Send one notification once and record what happened; returns "sent", "retry",
    "failed" or why nothing was done ("gone", "done", "busy"). Never raises for a delivery
    problem: the next attempt is a delayed queue message, and the row says it is due."""
    settings = runtime.settings
    now = utcnow()
    with open_context(runtime, Scope.system_scope()) as ctx:
        row = ctx.repos.notifications.get(notification_id)
        if row is None:
            return "gone"  # its target was removed
        if row.status != PENDING:
            return "done"
        # Take the row for this attempt: one UPDATE, so a duplicate message (a reconciler
        # nudge crossing the original) finds it taken and sends nothing.
        taken = ctx.session.execute(
            update(Notification)
            .where(
                Notification.id == notification_id,
                Notification.status == PENDING,
                or_(
                    Notification.next_attempt_at.is_(None),
                    Notification.next_attempt_at <= now + timedelta(seconds=EARLY_S),
                ),
            )
            .values(next_attempt_at=now + _lease(settings))
            .execution_options(synchronize_session=False)
        )
        if not int(taken.rowcount):  # type: ignore[attr-defined]
            return "busy"
        target = ctx.repos.notify_targets.get(row.target_id)
        if target is None or not target.enabled:
            row.status, row.next_attempt_at = FAILED, None
            row.error = "the target was removed or disabled"
            return FAILED
        message = _message(target, row.event, dict(row.payload), row.id)
        name, limit = target.name, settings.notify.max_attempts
    error = _attempt(settings, message)  # the network: outside any unit of work
    delay: float | None = None
    with open_context(runtime, Scope.system_scope()) as ctx:
        row = ctx.repos.notifications.get(notification_id)
        if row is None or row.status != PENDING:
            return "gone" if row is None else "done"
        row.attempts += 1
        if error is None:
            row.status, row.sent_at, row.error, row.next_attempt_at = SENT, utcnow(), None, None
        elif row.attempts < limit:
            delay = backoff(row.attempts)
            row.error, row.next_attempt_at = error, utcnow() + timedelta(seconds=delay)
        else:
            row.status, row.error, row.next_attempt_at = FAILED, error, None
        attempts = row.attempts
    if error is None:
        log.info("notification %s (%s) sent to %s", notification_id, row.event, name)
        return SENT
    if delay is None:
        log.error(
            "notification %s to %s failed after %d attempt(s): %s",
            notification_id,
            name,
            attempts,
            error,
        )
        return FAILED
    log.warning(
        "notification %s to %s: attempt %d of %d failed, next in %.0f s: %s",
        notification_id,
        name,
        attempts,
        limit,
        delay,
        error,
    )
    try:
        send_task(DELIVER_TASK, {"notification_id": notification_id}, delay)
    except LeapError as exc:  # the queue is down: the row is due, the reconciler sends it
        log.warning("notification %s: retry not queued: %s", notification_id, exc.message)
    return "retry"


def requeue_due(ctx: Context, *, grace_s: float = REQUEUE_GRACE_S) -> int:
    """Queue again the pending notifications whose message was lost (a worker killed with it
    in hand, a queue that did not answer, `leap process --now` without leapd): due for
    longer than `grace_s`. Each is stamped, so it is not nudged on every pass."""
    now = utcnow()
    cutoff = now - timedelta(seconds=grace_s)
    rows = list(
        ctx.session.scalars(
            select(Notification)
            .where(
                Notification.status == PENDING,
                or_(
                    Notification.next_attempt_at <= cutoff,
                    Notification.next_attempt_at.is_(None) & (Notification.created_at <= cutoff),
                ),
            )
            .order_by(Notification.id)
            .limit(REQUEUE_BATCH)
        )
    )
    for row in rows:
        row.next_attempt_at = now
        ctx.defer_enqueue(DELIVER_TASK, notification_id=row.id)
    if rows:
        log.info("re-queued %d notification(s) whose message was lost", len(rows))
    return len(rows)


# ------------------------------------------------------------------------------------- test


def send_test(runtime: Runtime, scope: Scope, name: str | None = None) -> list[dict[str, Any]]:
    """`leap notify test`: a test message to one target (or each of the user's), sent now,
    in this process; one result per target: name, kind, to, ok, error."""
    with open_context(runtime, scope) as ctx:
        targets = [get_target(ctx, name)] if name else list_targets(ctx)
        if not targets:
            raise NotFound("no notification targets: add one with 'leap notify add'")
        user = ctx.repos.users.get(scope.user_id) if scope.user_id is not None else None
        text = f"A test message from LEAP to target '{{}}' of user {user.name if user else '?'}."
        plans = [(t, _message(t, "test", {"text": text.format(t.name)}, None)) for t in targets]
        shown = [(t.name, t.kind, where(t)) for t, _ in plans]
    results = []
    for (tname, kind, to), (_, message) in zip(shown, plans, strict=True):
        error = _attempt(runtime.settings, message)
        results.append({"name": tname, "kind": kind, "to": to, "ok": error is None, "error": error})
    return results
