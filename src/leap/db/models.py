"""The whole product's tables. Later features fill columns designed here.

Ownership: every table below except `users`, `plans`, `system_state` and
`youtube_quota_usage` is `UserOwned`, so the scope hooks in `leap.db.scope` filter it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from leap.db.base import Base, Timestamped, UserOwned, utcnow
from leap.domain import (
    CredentialStatus,
    RecordingStatus,
    Role,
    RunStatus,
    StageStatus,
    TargetStatus,
)


class Plan(Timestamped, Base):
    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(80))
    # Quota key -> limit per period (None: unlimited), e.g. {"recordings_per_month": 20}.
    limits: Mapped[dict[str, Any]] = mapped_column(default=dict)


class User(Timestamped, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.USER.value)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("plans.id", ondelete="SET NULL"))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # The user's own processing defaults (bottom of the config hierarchy).
    defaults: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Folders an admin allowed this user to read and export into (docs/paths.md); None: the
    # install-wide [paths] roots only.
    allowed_roots: Mapped[list[Any] | None] = mapped_column(default=None)

    plan: Mapped[Plan | None] = relationship(lazy="joined")


class QuotaOverride(UserOwned, Timestamped, Base):
    __tablename__ = "quota_overrides"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float)  # None: unlimited
    until: Mapped[datetime | None] = mapped_column()  # None: for good (docs/quotas.md)


class UsageEvent(UserOwned, Base):
    __tablename__ = "usage_events"
    __table_args__ = (
        # Covering (migration 0007): the sums of usage reports read the index alone.
        Index("ix_usage_events_user_kind_at_amount", "user_id", "kind", "at", "amount"),
        Index("ix_usage_events_at_kind_user_amount", "at", "kind", "user_id", "amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))  # services/usage.py: KINDS
    amount: Mapped[float] = mapped_column(Float)
    # What the event pays for ("upload:12", "transcribe:40", "recording:7:2026-11-05"): a
    # reservation made again for the same thing (a retry, a second daemon) finds this row
    # instead of taking a second unit. None for events that reserve nothing.
    ref: Mapped[str | None] = mapped_column(String(160), unique=True)
    recording_id: Mapped[int | None] = mapped_column(
        ForeignKey("recordings.id", ondelete="SET NULL")
    )
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class Credential(UserOwned, Timestamped, Base):
    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), default=CredentialStatus.ACTIVE.value)
    status_reason: Mapped[str | None] = mapped_column(Text)
    # Fernet token of the JSON secret payload; the key never lives in the database.
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    # Non-secret facts safe to print (account id, client id, scopes, channel).
    public: Mapped[dict[str, Any]] = mapped_column(default=dict)
    expires_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()
    # A short-lived access token shared by every stage and process (Zoom S2S: one an hour),
    # encrypted like `secret`, and when it lapses. A cache: losing it costs one token call.
    token_cache: Mapped[bytes | None] = mapped_column(LargeBinary)
    token_expires_at: Mapped[datetime | None] = mapped_column()


class InputSource(UserOwned, Timestamped, Base):
    __tablename__ = "input_sources"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # zoom | local
    credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="RESTRICT")
    )
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)  # zoom_user, path, ...
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_synced_at: Mapped[datetime | None] = mapped_column()
    last_sync_window_end: Mapped[datetime | None] = mapped_column()
    last_sync_error: Mapped[str | None] = mapped_column(Text)


class OutputPreset(UserOwned, Timestamped, Base):
    __tablename__ = "output_presets"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(16))  # youtube | vk | local
    credential_id: Mapped[int | None] = mapped_column(
        ForeignKey("credentials.id", ondelete="RESTRICT")
    )
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    # `approval = true`: its videos wait for `leap approve` (docs/approval.md).
    approval: Mapped[bool] = mapped_column(Boolean, default=False)


class Template(UserOwned, Timestamped, Base):
    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(Integer, default=0)  # evaluation order
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    rules: Mapped[dict[str, Any]] = mapped_column(default=dict)  # [match]
    blank: Mapped[dict[str, Any]] = mapped_column(default=dict)  # [blank]
    processing: Mapped[dict[str, Any]] = mapped_column(default=dict)  # [processing]
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)  # [metadata]
    approval: Mapped[bool] = mapped_column(Boolean, default=False)  # docs/approval.md
    # leapd moves the Zoom copy to Zoom's trash this many days after publishing
    # (docs/zoom-cleanup.md); None: never.
    zoom_trash_after_days: Mapped[int | None] = mapped_column(Integer)


class TemplatePreset(UserOwned, Base):
    __tablename__ = "template_presets"
    __table_args__ = (UniqueConstraint("template_id", "preset_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"))
    preset_id: Mapped[int] = mapped_column(ForeignKey("output_presets.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)


class Recording(UserOwned, Timestamped, Base):
    __tablename__ = "recordings"
    __table_args__ = (
        UniqueConstraint("source_id", "external_id"),
        Index("ix_recordings_user_status", "user_id", "status"),
        Index("ix_recordings_user_start", "user_id", "start_time"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("input_sources.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text, default="")
    host: Mapped[str | None] = mapped_column(String(255))
    meeting_id: Mapped[str | None] = mapped_column(String(64))
    start_time: Mapped[datetime] = mapped_column()
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # The source's files: [{"id", "type", "recording_type", "size", "download_url", ...}].
    files: Mapped[list[Any]] = mapped_column(default=list)
    blank_record: Mapped[bool] = mapped_column(Boolean, default=False)
    blank_reason: Mapped[str | None] = mapped_column(Text)
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("templates.id", ondelete="SET NULL"), index=True
    )
    match_reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), default=RecordingStatus.INITIALIZED.value)
    progress: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # Only the per-recording overrides; template config is read live, never copied.
    overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    meta_overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The run holding the per-recording lock (claimed with one atomic UPDATE).
    active_run_id: Mapped[int | None] = mapped_column(Integer)
    source_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Zoom cloud cleanup (docs/zoom-cleanup.md): when the Zoom copy went to Zoom's trash, and
    # every trash call made for it: [{"at", "outcome", "status", "detail"}].
    zoom_trashed_at: Mapped[datetime | None] = mapped_column()
    zoom_trash_log: Mapped[list[Any]] = mapped_column(default=list)


class PipelineRun(UserOwned, Timestamped, Base):
    __tablename__ = "pipeline_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.ACTIVE.value)
    stages: Mapped[list[Any]] = mapped_column(default=list)  # planned stage names, in order
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)  # resolved at start
    forced: Mapped[bool] = mapped_column(Boolean, default=False)
    finished_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)


class StageResult(UserOwned, Timestamped, Base):
    __tablename__ = "stage_results"
    __table_args__ = (
        UniqueConstraint("run_id", "name"),
        Index("ix_stage_results_status_heartbeat", "status", "heartbeat_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id", ondelete="CASCADE"))
    recording_id: Mapped[int] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=StageStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    queued_at: Mapped[datetime | None] = mapped_column()
    not_before: Mapped[datetime | None] = mapped_column()  # retry back-off
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    artifacts: Mapped[dict[str, Any]] = mapped_column(default=dict)  # kind -> absolute path
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)  # stage facts (trim points…)
    error: Mapped[str | None] = mapped_column(Text)


class OutputTarget(UserOwned, Timestamped, Base):
    __tablename__ = "output_targets"
    __table_args__ = (UniqueConstraint("recording_id", "preset_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"))
    preset_id: Mapped[int] = mapped_column(ForeignKey("output_presets.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=TargetStatus.PENDING.value)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    remote_id: Mapped[str | None] = mapped_column(String(128))
    url: Mapped[str | None] = mapped_column(Text)
    upload_session_uri: Mapped[str | None] = mapped_column(Text)
    upload_offset: Mapped[int] = mapped_column(BigInteger, default=0)
    upload_total: Mapped[int] = mapped_column(BigInteger, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    deferred_until: Mapped[datetime | None] = mapped_column()
    sent_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    repairs: Mapped[list[Any]] = mapped_column(default=list)
    error: Mapped[str | None] = mapped_column(Text)
    uploaded_at: Mapped[datetime | None] = mapped_column()
    # The approval gate (docs/approval.md): None (no gate), "awaiting" or "approved"; when it
    # was approved, and the publish time asked for then.
    approval: Mapped[str | None] = mapped_column(String(16))
    approved_at: Mapped[datetime | None] = mapped_column()
    publish_at: Mapped[datetime | None] = mapped_column()


class AutomationJob(UserOwned, Timestamped, Base):
    __tablename__ = "automation_jobs"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    schedule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the action (sources, ...)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run_at: Mapped[datetime | None] = mapped_column()
    next_run_at: Mapped[datetime | None] = mapped_column()
    # The last planned time the scheduler has dealt with (fired, or let lapse): firings
    # after it are due. Set to the save time, so a new job never fires for its past.
    last_planned_at: Mapped[datetime | None] = mapped_column()


class AutomationRun(UserOwned, Base):
    """One firing of a job. (job_id, planned_at) is unique: whichever leapd inserts the row
    owns the firing, so a planned time fires once however many schedulers see it."""

    __tablename__ = "automation_runs"
    __table_args__ = (UniqueConstraint("job_id", "planned_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("automation_jobs.id", ondelete="CASCADE"), index=True
    )
    planned_at: Mapped[datetime | None] = mapped_column()
    trigger: Mapped[str] = mapped_column(String(16), default="schedule")  # schedule | manual
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="running")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)


class NotifyTarget(UserOwned, Timestamped, Base):
    """Where a user's notifications go: a webhook URL or an e-mail address."""

    __tablename__ = "notify_targets"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # webhook | email
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)  # url, style / to
    events: Mapped[list[Any]] = mapped_column(default=list)  # empty: every event
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class Notification(UserOwned, Base):
    """One message to one target: recorded before it is sent, so none is lost."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    target_id: Mapped[int] = mapped_column(
        ForeignKey("notify_targets.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()


class AuditEntry(UserOwned, Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))  # who did it (may be an admin)
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class YouTubeQuotaUsage(Base):
    """Per Google project and Pacific-time day; shared by every user of that project."""

    __tablename__ = "youtube_quota_usage"
    __table_args__ = (UniqueConstraint("project", "bucket", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(128))
    bucket: Mapped[str] = mapped_column(String(32))  # units | uploads
    day: Mapped[date] = mapped_column(Date)
    used: Mapped[int] = mapped_column(BigInteger, default=0)


class SystemState(Base):
    """Install-wide facts: daemon heartbeat, last reconcile, schema notes."""

    __tablename__ = "system_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
