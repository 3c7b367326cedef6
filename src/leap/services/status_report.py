"""What leapd's /healthz, /metrics and status page show (docs/internals.md, "Metrics and the
status page"), read from the database on every request.

The database, not a process's memory, is where the numbers live: several leapd processes
(and `leap process --now`) share one database, so counters kept in one process would each
show a part. Every figure is one set-based query (GROUP BY, SUM, COUNT); no query loads all
the rows of a table, and the lists of the status page are capped. Install-wide: open the
context in the system scope.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, case, cast, func, or_, select

from leap.context import Context
from leap.db.base import utcnow
from leap.db.models import (
    AutomationJob,
    AutomationRun,
    Credential,
    OutputTarget,
    PipelineRun,
    Recording,
    StageResult,
    User,
    YouTubeQuotaUsage,
)
from leap.domain import CredentialStatus, RunStatus, StageStatus, TargetStatus
from leap.logs import redact
from leap.services import system
from leap.services.youtube_quota import pacific_day

# Upper bounds of the stage-duration histogram, in seconds: a local copy takes a second, a
# transcription of a long lecture an hour or more.
DURATION_BUCKETS: tuple[float, ...] = (
    1,
    5,
    15,
    30,
    60,
    120,
    300,
    600,
    1200,
    1800,
    3600,
    7200,
    14400,
)

# Failure reasons, normalised to a short category so that a metric label has a bounded set
# of values (a raw error quotes ids, paths and provider answers: one series each). The
# first line that matches wins: the CLI exit code the stage failed with (stored in its
# result by runs.fail_stage), else a phrase of the message (lower case).
REASONS: tuple[tuple[str, int | None, tuple[str, ...]], ...] = (
    ("credential", 5, ("re-authenticate", "invalid_grant")),
    ("quota", 4, ("quota",)),
    ("config", 6, ()),
    ("bad_input", 2, ()),
    ("not_found", 3, ("not found", "is gone")),
    ("worker_lost", None, ("worker process died", "stopped sending heartbeats")),
    ("bug", None, ("(a bug;",)),
    ("timeout", None, ("timed out", "timeout", "no complete answer")),
    ("network", None, ("network error", "retries exhausted", "connection")),
    ("storage", None, ("no space left", "permission denied", "read-only file system")),
    ("media", None, ("ffmpeg", "ffprobe", "no audio track", "not a media file")),
    ("provider", None, ("http 4", "http 5")),
)
OTHER_REASON = "other"
REASON_CATEGORIES = (*(name for name, _, _ in REASONS), OTHER_REASON)

# Firing statuses that still change (services/automation.py); every other one is final.
FIRING_IN_PROGRESS = ("queued", "running")

# The most rows a list of the status page shows; the page says how many there are in all.
PAGE_ROWS = 50


def failure_reason() -> ColumnElement[str]:
    """The category of a failed stage's error (REASONS), as an SQL expression."""
    S = StageResult
    text = func.lower(func.coalesce(S.error, ""))
    code = S.result["exit_code"].as_integer()
    whens: list[tuple[ColumnElement[bool], str]] = []
    for name, exit_code, phrases in REASONS:
        tests: list[ColumnElement[bool]] = [text.contains(p, autoescape=True) for p in phrases]
        if exit_code is not None:
            tests.insert(0, code == exit_code)
        whens.append((or_(*tests), name))
    return case(*whens, else_=OTHER_REASON)


def _seconds_between(start: Any, end: Any, dialect: str) -> ColumnElement[float]:
    """end - start in seconds. SQLite stores times as text that julianday() reads (days, as a
    float: about a millisecond of precision); PostgreSQL subtracts timestamps."""
    if dialect == "sqlite":
        return cast((func.julianday(end) - func.julianday(start)) * 86400.0, Float)
    # date_part gives double precision; EXTRACT gives numeric since PostgreSQL 14, whose
    # arithmetic made the histogram query 3 times slower.
    return cast(func.date_part("epoch", end - start), Float)


@dataclass
class Histogram:
    """Cumulative counts per upper bound (DURATION_BUCKETS), the count and the sum."""

    buckets: list[int]
    count: int
    total: float


@dataclass
class Aggregates:
    stages: dict[tuple[str, str], int]  # (stage name, status) -> stages
    queue_ready: int  # queued stages a worker may take now
    queue_backoff: int  # queued stages waiting out a back-off or a remote job's poll
    durations: dict[str, Histogram]  # stage name -> finished (done) stages' durations
    failures: dict[tuple[str, str], int]  # (stage name, reason category) -> failed stages
    targets: dict[tuple[str, str], int]  # (platform, status) -> output targets
    uploaded_bytes: dict[str, int]  # platform -> sum of upload_total of uploaded targets
    downloaded_bytes: int  # sum of the file sizes finished download stages report
    youtube_units_today: dict[str, int]  # Google project -> units used this Pacific day
    credentials_needing_reauth: dict[str, int]  # credential kind -> credentials
    automation_firings: dict[str, int]  # firing status -> firings
    heartbeat_age_s: float | None
    now: datetime = field(default_factory=utcnow)


def aggregates(ctx: Context) -> Aggregates:
    """Every figure /metrics exposes, in ten small queries."""
    S, T = StageResult, OutputTarget
    session = ctx.session
    dialect = session.get_bind().dialect.name
    now = utcnow()

    stages = {
        (str(name), str(status)): int(n)
        for name, status, n in session.execute(
            select(S.name, S.status, func.count()).group_by(S.name, S.status)
        )
    }

    due = or_(S.not_before.is_(None), S.not_before <= now)
    ready, queued = session.execute(
        select(func.sum(case((due, 1), else_=0)), func.count()).where(
            S.status == StageStatus.QUEUED.value
        )
    ).one()
    ready, queued = int(ready or 0), int(queued or 0)

    # Each duration is computed once, in a subquery, then compared with every bound. Both
    # databases would fold a plain subquery into the outer query and compute the duration
    # again for each of the 14 sums; neither folds one with a LIMIT or OFFSET, so SQLite gets
    # "LIMIT -1" and PostgreSQL "OFFSET 0" (both: no limit). For 50,000 stages: 82 ms
    # instead of 240 on SQLite, 55 instead of 240 on PostgreSQL.
    finished = select(
        S.name.label("stage"), _seconds_between(S.started_at, S.finished_at, dialect).label("took")
    ).where(
        S.status == StageStatus.DONE.value,
        S.started_at.is_not(None),
        S.finished_at.is_not(None),
    )
    finished = finished.limit(-1) if dialect == "sqlite" else finished.offset(0)
    finished_rows = finished.subquery("finished")
    took = finished_rows.c.took
    sums = [func.sum(case((took <= bound, 1), else_=0)) for bound in DURATION_BUCKETS]
    durations: dict[str, Histogram] = {}
    for row in session.execute(
        select(finished_rows.c.stage, func.count(), func.sum(took), *sums).group_by(
            finished_rows.c.stage
        )
    ):
        name, count, total, *cumulative = row
        durations[str(name)] = Histogram(
            [int(c or 0) for c in cumulative], int(count), max(0.0, float(total or 0.0))
        )

    # The category is computed in a subquery and grouped outside: PostgreSQL refuses a GROUP
    # BY on an expression whose bound parameters differ from the SELECT's copy of it.
    failed = (
        select(S.name.label("stage"), failure_reason().label("reason"))
        .where(S.status == StageStatus.FAILED.value)
        .subquery()
    )
    failures = {
        (str(stage), str(reason)): int(n)
        for stage, reason, n in session.execute(
            select(failed.c.stage, failed.c.reason, func.count()).group_by(
                failed.c.stage, failed.c.reason
            )
        )
    }

    targets: dict[tuple[str, str], int] = {}
    uploaded_bytes: dict[str, int] = {}
    for platform, status, n, sent in session.execute(
        select(T.platform, T.status, func.count(), func.sum(T.upload_total)).group_by(
            T.platform, T.status
        )
    ):
        targets[(str(platform), str(status))] = int(n)
        if status == TargetStatus.UPLOADED.value:
            uploaded_bytes[str(platform)] = int(sent or 0)

    downloaded = session.scalar(
        select(func.sum(S.result["size"].as_float())).where(
            S.name == "download", S.status == StageStatus.DONE.value
        )
    )

    Q = YouTubeQuotaUsage
    units = {
        str(project): int(used)
        for project, used in session.execute(
            select(Q.project, func.sum(Q.used))
            .where(Q.bucket == "units", Q.day == pacific_day(now))
            .group_by(Q.project)
        )
    }

    C = Credential
    reauth = {
        str(kind): int(n)
        for kind, n in session.execute(
            select(C.kind, func.count())
            .where(C.status == CredentialStatus.NEEDS_REAUTH.value)
            .group_by(C.kind)
        )
    }

    A = AutomationRun
    firings = {
        str(status): int(n)
        for status, n in session.execute(select(A.status, func.count()).group_by(A.status))
    }

    return Aggregates(
        stages=stages,
        queue_ready=ready,
        queue_backoff=queued - ready,
        durations=durations,
        failures=failures,
        targets=targets,
        uploaded_bytes=uploaded_bytes,
        downloaded_bytes=int(downloaded or 0),
        youtube_units_today=units,
        credentials_needing_reauth=reauth,
        automation_firings=firings,
        heartbeat_age_s=heartbeat_age(ctx, now),
        now=now,
    )


def heartbeat_age(ctx: Context, now: datetime | None = None) -> float | None:
    """Seconds since any leapd last beat (None: never)."""
    at = system.heartbeat(ctx).get("at")
    if not at:
        return None
    beat = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
    return max(0.0, ((now or utcnow()) - beat).total_seconds())


# -- the status page --------------------------------------------------------------------------


@dataclass(frozen=True)
class RunLine:
    run_id: int
    recording_id: int
    title: str
    user: str
    stage: str | None  # the running stage, else the next queued or pending one
    stage_status: str | None
    stage_progress: float | None  # 0..1 of that stage
    progress: int  # the recording's percentage
    not_before: datetime | None  # a queued stage waiting out a back-off
    started: datetime


@dataclass(frozen=True)
class FailureLine:
    recording_id: int
    title: str
    user: str
    stage: str
    reason: str  # a REASONS category
    error: str
    at: datetime | None


@dataclass(frozen=True)
class FiringLine:
    job: str
    user: str
    at: datetime


@dataclass(frozen=True)
class CredentialLine:
    name: str
    kind: str
    user: str
    reason: str
    since: datetime


@dataclass(frozen=True)
class StatusPage:
    runs: list[RunLine]
    runs_total: int
    failures: list[FailureLine]
    failures_total: int
    firings: list[FiringLine]
    credentials: list[CredentialLine]
    heartbeat_age_s: float | None
    now: datetime


def status_page(ctx: Context, limit: int = PAGE_ROWS) -> StatusPage:
    now = utcnow()
    runs, runs_total = runs_in_progress(ctx, limit)
    failures, failures_total = last_failures(ctx, limit)
    return StatusPage(
        runs=runs,
        runs_total=runs_total,
        failures=failures,
        failures_total=failures_total,
        firings=next_firings(ctx, limit),
        credentials=credentials_needing_attention(ctx, limit),
        heartbeat_age_s=heartbeat_age(ctx, now),
        now=now,
    )


def runs_in_progress(ctx: Context, limit: int = PAGE_ROWS) -> tuple[list[RunLine], int]:
    """The oldest `limit` active runs with their current stage, and how many there are."""
    R, S = PipelineRun, StageResult
    session = ctx.session
    active = R.status == RunStatus.ACTIVE.value
    total = int(session.scalar(select(func.count()).select_from(R).where(active)) or 0)
    rows = session.execute(
        select(R.id, Recording.id, Recording.title, User.name, Recording.progress, R.created_at)
        .join(Recording, Recording.id == R.recording_id)
        .join(User, User.id == R.user_id)
        .where(active)
        .order_by(R.created_at, R.id)
        .limit(limit)
    ).all()
    current: dict[int, tuple[str, str, float, datetime | None]] = {}
    rank = {StageStatus.RUNNING.value: 0, StageStatus.QUEUED.value: 1, StageStatus.PENDING.value: 2}
    if rows:
        stages = session.execute(
            select(S.run_id, S.name, S.status, S.progress, S.not_before, S.position)
            .where(S.run_id.in_([r[0] for r in rows]), S.status.in_(list(rank)))
            .order_by(S.run_id, S.position)
        ).all()
        for run_id, s_name, s_status, s_progress, s_not_before, _position in stages:
            seen = current.get(run_id)
            if seen is None or rank[s_status] < rank[seen[1]]:
                current[run_id] = (s_name, s_status, s_progress, s_not_before)
    lines = []
    for run_id, rec_id, title, user, pct, started in rows:
        stage = current.get(run_id)
        name, status = (stage[0], stage[1]) if stage else (None, None)
        not_before = stage[3] if stage else None
        fraction: float | None = None
        if stage is not None:
            # A waiting stage has done nothing yet (runs.stage_fraction).
            fraction = stage[2] if status == StageStatus.RUNNING.value else 0.0
        lines.append(
            RunLine(
                run_id=run_id,
                recording_id=rec_id,
                title=title,
                user=user,
                stage=name,
                stage_status=status,
                stage_progress=None if fraction is None else max(0.0, min(1.0, fraction)),
                progress=int(pct or 0),
                not_before=not_before if status == StageStatus.QUEUED.value else None,
                started=started,
            )
        )
    return lines, total


def last_failures(ctx: Context, limit: int = PAGE_ROWS) -> tuple[list[FailureLine], int]:
    """The `limit` stages that failed last, newest first, and how many failed stages there
    are."""
    S = StageResult
    session = ctx.session
    failed = S.status == StageStatus.FAILED.value
    total = int(session.scalar(select(func.count()).select_from(S).where(failed)) or 0)
    rows = session.execute(
        select(
            Recording.id,
            Recording.title,
            User.name,
            S.name,
            failure_reason(),
            S.error,
            S.finished_at,
        )
        .join(Recording, Recording.id == S.recording_id)
        .join(User, User.id == S.user_id)
        .where(failed)
        .order_by(S.finished_at.desc(), S.id.desc())
        .limit(limit)
    ).all()
    return [
        FailureLine(
            recording_id=rec_id,
            title=title,
            user=user,
            stage=stage,
            reason=reason,
            # Stored errors are redacted when written; rows from before a secret was known
            # are cleaned on the way out too, as everywhere (views._error).
            error=redact(error or ""),
            at=at,
        )
        for rec_id, title, user, stage, reason, error, at in rows
    ], total


def next_firings(ctx: Context, limit: int = PAGE_ROWS) -> list[FiringLine]:
    """Enabled automation jobs by their next firing (`automation_jobs.next_run_at`)."""
    J = AutomationJob
    rows = ctx.session.execute(
        select(J.name, User.name, J.next_run_at)
        .join(User, User.id == J.user_id)
        .where(and_(J.enabled.is_(True), J.next_run_at.is_not(None)))
        .order_by(J.next_run_at, J.id)
        .limit(limit)
    ).all()
    return [FiringLine(job=job, user=user, at=at) for job, user, at in rows if at is not None]


def credentials_needing_attention(ctx: Context, limit: int = PAGE_ROWS) -> list[CredentialLine]:
    """Credentials a service rejected (needs_reauth), most recently rejected first."""
    C = Credential
    rows = ctx.session.execute(
        select(C.name, C.kind, User.name, C.status_reason, C.updated_at)
        .join(User, User.id == C.user_id)
        .where(C.status == CredentialStatus.NEEDS_REAUTH.value)
        .order_by(C.updated_at.desc(), C.id.desc())
        .limit(limit)
    ).all()
    return [
        CredentialLine(name=name, kind=kind, user=user, reason=redact(reason or ""), since=since)
        for name, kind, user, reason, since in rows
    ]


# -- asking a leapd -----------------------------------------------------------------------------


def client_host(host: str) -> str:
    """Where to reach a server that listens on `host`: the wildcard addresses mean every
    interface, loopback included."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def base_url(host: str, port: int) -> str:
    shown = client_host(host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


@dataclass(frozen=True)
class HealthProbe:
    url: str
    health: dict[str, Any] | None  # the JSON leapd answered, when it answered
    problem: str | None  # why this is not a healthy leapd, or None


def probe_health(host: str, port: int, timeout: float = 5.0) -> HealthProbe:
    """GET /healthz of the leapd that serves `host`:`port`."""
    url = base_url(host, port) + "/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = resp.read(65536)
    except urllib.error.HTTPError as exc:  # 503: it answered, and says what is wrong
        body = exc.read(65536)
        exc.close()
    except OSError as exc:  # URLError, a refused connection, a timeout
        why = getattr(exc, "reason", None) or exc
        return HealthProbe(
            url,
            None,
            f"leapd's {url} is unreachable ({why}): is leapd running, with metrics.enabled?",
        )
    try:
        health = json.loads(body)
        if not isinstance(health, dict):
            raise ValueError("not an object")
    except ValueError:
        return HealthProbe(url, None, f"{url} did not answer with leapd's health JSON")
    broken = [k for k in ("database", "queue") if health.get(k) != "ok"]
    problem = f"leapd is unhealthy: {', '.join(f'{k} error' for k in broken)}" if broken else None
    return HealthProbe(url, health, problem)
