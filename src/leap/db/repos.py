"""Repositories: the only place that builds `select()`. Tenancy is not their business: the
scope hooks in `leap.db.scope` filter every statement they run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    Table,
    delete,
    func,
    insert,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, Session, load_only

from leap.db import models as m
from leap.db.base import Base, UserOwned
from leap.db.scope import get_scope, stamp_owners
from leap.domain import Approval, RecordingStatus, Role
from leap.errors import NotFound

M = TypeVar("M", bound=Base)


class Repo(Generic[M]):
    model: type[M]
    noun: str = "item"

    def __init__(self, session: Session) -> None:
        self.session = session

    def _where(self, filters: dict[str, Any]) -> list[ColumnElement[bool]]:
        return [getattr(self.model, k) == v for k, v in filters.items()]

    def get(self, id_: int) -> M | None:
        # Not Session.get(): an identity-map hit would bypass the scope filter.
        pk = self.model.__mapper__.primary_key[0]
        return self.session.scalars(select(self.model).where(pk == id_)).one_or_none()

    def require(self, id_: int) -> M:
        obj = self.get(id_)
        if obj is None:
            raise NotFound(f"{self.noun} {id_} not found")
        return obj

    def lock(self, id_: int) -> M:
        """`require`, holding the row until the unit of work ends: FOR UPDATE on PostgreSQL;
        on SQLite every transaction already holds the database's write lock (BEGIN
        IMMEDIATE), which this waits for like any other writer."""
        pk = self.model.__mapper__.primary_key[0]
        stmt = (
            select(self.model)
            .where(pk == id_)
            .with_for_update(of=self.model)
            .execution_options(populate_existing=True)
        )
        obj = self.session.scalars(stmt).one_or_none()
        if obj is None:
            raise NotFound(f"{self.noun} {id_} not found")
        return obj

    def find(self, **filters: Any) -> M | None:
        return self.session.scalars(select(self.model).where(*self._where(filters))).first()

    def list(self, *, order_by: Sequence[Any] = (), **filters: Any) -> list[M]:
        stmt = select(self.model).where(*self._where(filters))
        pk = self.model.__mapper__.primary_key[0]
        stmt = stmt.order_by(*order_by, pk)
        return list(self.session.scalars(stmt))

    def count(self, **filters: Any) -> int:
        stmt = select(func.count()).select_from(self.model).where(*self._where(filters))
        return int(self.session.scalar(stmt) or 0)

    def add(self, obj: M) -> M:
        self.session.add(obj)
        self.session.flush()
        return obj

    def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        """One batched INSERT for many rows (no objects come back); owners are stamped by
        the scope hook."""
        if rows:
            # render_nulls: otherwise rows are grouped by which keys are None, and each
            # group becomes its own statement.
            self.session.execute(
                insert(self.model).execution_options(render_nulls=True), [dict(r) for r in rows]
            )

    def delete(self, obj: M) -> None:
        self.session.delete(obj)
        self.session.flush()

    def update_where(self, values: dict[str, Any], **filters: Any) -> int:
        stmt = update(self.model).where(*self._where(filters)).values(**values)
        res = self.session.execute(stmt, execution_options={"synchronize_session": "fetch"})
        return int(res.rowcount)  # type: ignore[attr-defined]

    def delete_where(self, **filters: Any) -> int:
        stmt = delete(self.model).where(*self._where(filters))
        res = self.session.execute(stmt, execution_options={"synchronize_session": "fetch"})
        return int(res.rowcount)  # type: ignore[attr-defined]


class NamedRepo(Repo[M]):
    """Rows with a `name` unique per user (or install-wide for users and plans)."""

    def by_name(self, name: str) -> M | None:
        return self.find(name=name)

    def require_name(self, name: str) -> M:
        obj = self.by_name(name)
        if obj is None:
            raise NotFound(f"{self.noun} '{name}' not found")
        return obj


class UserRepo(NamedRepo[m.User]):
    model = m.User
    noun = "user"

    def owned_counts(self, user_id: int) -> dict[str, int]:
        """Rows per user-owned table (every `UserOwned` model, so a new table is counted
        without a change here) for one user: what deleting the user removes."""
        out: dict[str, int] = {}
        for model in owned_models():
            stmt = select(func.count()).select_from(model).where(model.user_id == user_id)
            out[model.__tablename__] = int(self.session.scalar(stmt) or 0)
        return out

    def active_admins(self, *, besides: int) -> int:
        """Enabled admins other than user `besides`."""
        U = m.User
        stmt = (
            select(func.count())
            .select_from(U)
            .where(U.role == Role.ADMIN.value, U.disabled.is_(False), U.id != besides)
        )
        return int(self.session.scalar(stmt) or 0)


def owned_models() -> list[Any]:
    """Every mapped model that is `UserOwned` (ON DELETE CASCADE from users), by table name."""
    found = {
        mapper.class_ for mapper in Base.registry.mappers if issubclass(mapper.class_, UserOwned)
    }
    return sorted(found, key=lambda cls: cls.__tablename__)


class PlanRepo(NamedRepo[m.Plan]):
    model = m.Plan
    noun = "plan"


class QuotaOverrideRepo(Repo[m.QuotaOverride]):
    model = m.QuotaOverride
    noun = "quota override"


class UsageRepo(Repo[m.UsageEvent]):
    model = m.UsageEvent
    noun = "usage event"


class CredentialRepo(NamedRepo[m.Credential]):
    model = m.Credential
    noun = "credential"


class SourceRepo(NamedRepo[m.InputSource]):
    model = m.InputSource
    noun = "source"


class PresetRepo(NamedRepo[m.OutputPreset]):
    model = m.OutputPreset
    noun = "preset"


class TemplateRepo(NamedRepo[m.Template]):
    model = m.Template
    noun = "template"

    def ordered(self) -> list[m.Template]:
        return self.list(order_by=(m.Template.position, m.Template.name))


class TemplatePresetRepo(Repo[m.TemplatePreset]):
    model = m.TemplatePreset
    noun = "template preset link"


@dataclass(frozen=True)
class RecordingQuery:
    """The filters every recordings command shares, already resolved to ids."""

    ids: Sequence[int] | None = None
    statuses: Sequence[str] = ()
    template_id: int | None = None
    source_id: int | None = None
    mapped: bool | None = None
    blank: bool | None = None
    failed: bool = False
    date_from: datetime | None = None
    date_to: datetime | None = None
    search: str | None = None
    awaiting_approval: bool = False
    limit: int | None = None
    offset: int = 0
    # Keyset paging: only rows after this (start_time, id) in the listing's order (newest
    # first). Unlike OFFSET it neither skips nor repeats rows that change under the pager.
    after: tuple[datetime, int] | None = None
    # Load only these attributes (others raise if touched: no hidden query per row).
    only: Sequence[str] = ()


class RecordingRepo(Repo[m.Recording]):
    model = m.Recording
    noun = "recording"

    def search(self, q: RecordingQuery) -> list[m.Recording]:
        R = m.Recording
        stmt = self._filtered(select(R), q)
        if q.only:
            stmt = stmt.options(load_only(*(getattr(R, a) for a in q.only), raiseload=True))
        stmt = stmt.order_by(R.start_time.desc(), R.id.desc()).offset(q.offset)
        if q.limit is not None:
            stmt = stmt.limit(q.limit)
        return list(self.session.scalars(stmt))

    def count_matching(self, q: RecordingQuery) -> int:
        """How many rows `search` would page through (ignoring limit and offset)."""
        stmt = self._filtered(select(func.count()).select_from(m.Recording), q)
        return int(self.session.scalar(stmt) or 0)

    def lock_for_runs(self, run_of: dict[int, int], queued: str) -> set[int]:
        """The per-recording lock for many new runs in one statement: each recording in
        `run_of` (recording id -> run id) that holds no run gets its run, and the status
        `queued`. Returns the recordings that got theirs; any other already had a run (a
        concurrent start won it)."""
        if not run_of:
            return set()
        R = m.Recording
        stmt = (
            update(R)
            .where(
                R.id.in_(list(run_of)),
                R.active_run_id.is_(None),
                R.status != RecordingStatus.EXPIRED.value,
            )
            .values(
                # Written out, not bound: a page's 500 pairs as 1,000 bound parameters cost
                # more to build and cache than the UPDATE takes to run. Only ints go in.
                active_run_id=literal_column(
                    "CASE id "
                    + " ".join(f"WHEN {int(r)} THEN {int(n)}" for r, n in run_of.items())
                    + " END"
                ),
                status=queued,
                progress=0,
                error=None,
            )
            .returning(R.id)
        )
        # Not cached: each page's statement is its own, and 200 pages would fill the cache.
        options = {"synchronize_session": False, "compiled_cache": None}
        rows = self.session.execute(stmt, execution_options=options)
        return {int(r[0]) for r in rows}

    def _filtered(self, stmt: Any, q: RecordingQuery) -> Any:
        R = m.Recording
        if q.ids is not None:
            stmt = stmt.where(R.id.in_(list(q.ids)))
        if q.statuses:
            stmt = stmt.where(R.status.in_(list(q.statuses)))
        if q.failed:
            stmt = stmt.where(R.status == RecordingStatus.FAILED.value)
        if q.template_id is not None:
            stmt = stmt.where(R.template_id == q.template_id)
        if q.source_id is not None:
            stmt = stmt.where(R.source_id == q.source_id)
        if q.mapped is not None:
            stmt = stmt.where(R.template_id.is_not(None) if q.mapped else R.template_id.is_(None))
        if q.blank is not None:
            stmt = stmt.where(R.blank_record.is_(q.blank))
        if q.date_from is not None:
            stmt = stmt.where(R.start_time >= q.date_from)
        if q.date_to is not None:
            stmt = stmt.where(R.start_time < q.date_to)
        if q.search:
            # LIKE is case-insensitive only for ASCII on SQLite; lower() both sides helps
            # PostgreSQL, and Cyrillic on SQLite is matched as typed.
            pattern = f"%{q.search.lower()}%"
            stmt = stmt.where(func.lower(R.title).like(pattern) | func.lower(R.host).like(pattern))
        if q.awaiting_approval:
            # One query however many recordings: those with a target held for approval.
            T = m.OutputTarget
            held = select(T.recording_id).where(T.approval == Approval.AWAITING.value)
            stmt = stmt.where(R.id.in_(held))
        if q.after is not None:
            stmt = stmt.where(tuple_(R.start_time, R.id) < tuple_(*q.after))
        return stmt

    def by_external_ids(
        self, source_id: int, external_ids: Sequence[str]
    ) -> dict[str, m.Recording]:
        stmt = select(m.Recording).where(
            m.Recording.source_id == source_id, m.Recording.external_id.in_(list(external_ids))
        )
        return {r.external_id: r for r in self.session.scalars(stmt)}


class RunRepo(Repo[m.PipelineRun]):
    model = m.PipelineRun
    noun = "run"

    def add_many(self, rows: Sequence[dict[str, Any]]) -> dict[int, int]:
        """Insert many runs (at most one per recording) in batched statements: recording
        id -> its new run's id."""
        R = m.PipelineRun
        return {
            int(rid): int(run_id)
            for run_id, rid in _insert_returning(self.session, R, rows, R.id, R.recording_id)
        }

    def delete_ids(self, ids: Sequence[int]) -> None:
        if ids:
            self.session.execute(
                delete(m.PipelineRun).where(m.PipelineRun.id.in_(list(ids))),
                execution_options={"synchronize_session": False},
            )

    def latest_for(self, recording_id: int) -> m.PipelineRun | None:
        stmt = (
            select(m.PipelineRun)
            .where(m.PipelineRun.recording_id == recording_id)
            .order_by(m.PipelineRun.id.desc())
            .limit(1)
        )
        return self.session.scalars(stmt).first()


class StageRepo(Repo[m.StageResult]):
    model = m.StageResult
    noun = "stage"

    def add_many(self, rows: Sequence[dict[str, Any]]) -> dict[tuple[int, int], int]:
        """Insert many stages in batched statements: (run id, position) -> stage id."""
        S = m.StageResult
        return {
            (int(run_id), int(pos)): int(sid)
            for sid, run_id, pos in _insert_returning(
                self.session, S, rows, S.id, S.run_id, S.position
            )
        }

    def finished_names(self, recording_ids: Sequence[int]) -> dict[int, set[str]]:
        """Per recording, the stages some run finished (done or skipped): one query."""
        S = m.StageResult
        stmt = (
            select(S.recording_id, S.name)
            .where(S.recording_id.in_(list(recording_ids)), S.status.in_(("done", "skipped")))
            .distinct()
        )
        out: dict[int, set[str]] = {}
        for rid, name in self.session.execute(stmt):
            out.setdefault(int(rid), set()).add(str(name))
        return out

    def claim(self, stage_id: int, worker: str, now: datetime) -> bool:
        """queued -> running for one worker, in one statement (docs/internals.md, "SQLite
        transactions and claims": a SELECT then UPDATE let several processes claim the same
        job)."""
        S = m.StageResult
        stmt = (
            update(S)
            .where(
                S.id == stage_id,
                S.status == "queued",
                (S.not_before.is_(None)) | (S.not_before <= now),
            )
            .values(
                status="running",
                lease_owner=worker,
                heartbeat_at=now,
                started_at=func.coalesce(S.started_at, now),
                attempts=S.attempts + 1,
                progress=0.0,
            )
        )
        res = self.session.execute(stmt, execution_options={"synchronize_session": False})
        return int(res.rowcount) == 1  # type: ignore[attr-defined]

    def beat(self, stage_id: int, worker: str, now: datetime, progress: float) -> bool:
        S = m.StageResult
        stmt = (
            update(S)
            .where(S.id == stage_id, S.lease_owner == worker, S.status == "running")
            .values(heartbeat_at=now, progress=progress)
        )
        res = self.session.execute(stmt, execution_options={"synchronize_session": False})
        return int(res.rowcount) == 1  # type: ignore[attr-defined]

    def next_pending(self, run_id: int) -> m.StageResult | None:
        S = m.StageResult
        stmt = (
            select(S).where(S.run_id == run_id, S.status == "pending").order_by(S.position).limit(1)
        )
        return self.session.scalars(stmt).first()

    def next_queued(self, run_id: int) -> m.StageResult | None:
        S = m.StageResult
        stmt = (
            select(S).where(S.run_id == run_id, S.status == "queued").order_by(S.position).limit(1)
        )
        return self.session.scalars(stmt).first()

    def done_for(self, recording_id: int) -> list[m.StageResult]:
        S = m.StageResult
        stmt = (
            select(S)
            .where(S.recording_id == recording_id, S.status == "done")
            .order_by(S.finished_at, S.id)
        )
        return list(self.session.scalars(stmt))

    # The reconciler's reads lock what they return and skip rows another daemon's
    # reconciler holds (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite's transactions are
    # serial already): with several leapd, a stuck stage is re-queued once, by one of them,
    # and the others see it fresh once that commits.

    def stale_running(self, before: datetime) -> list[m.StageResult]:
        S = m.StageResult
        stmt = select(S).where(S.status == "running", S.heartbeat_at < before)
        return list(self.session.scalars(stmt.with_for_update(skip_locked=True)))

    def stale_queued(self, before: datetime, now: datetime) -> list[m.StageResult]:
        S = m.StageResult
        stmt = select(S).where(
            S.status == "queued",
            S.queued_at < before,
            (S.not_before.is_(None)) | (S.not_before <= now),
        )
        return list(self.session.scalars(stmt.with_for_update(skip_locked=True)))

    def names_and_configs(self, ids: Sequence[int]) -> list[tuple[int, str, dict[str, Any]]]:
        """(stage id, stage name, its run's config) of each stage: the queue routes by them
        (specs/lanes.py)."""
        S, R = m.StageResult, m.PipelineRun
        stmt = select(S.id, S.name, R.config).join(R, R.id == S.run_id).where(S.id.in_(ids))
        return [(int(i), str(n), dict(c or {})) for i, n, c in self.session.execute(stmt)]

    def running_owned_by(self, prefix: str) -> list[m.StageResult]:
        S = m.StageResult
        stmt = select(S).where(S.status == "running", S.lease_owner.like(f"{prefix}%"))
        return list(self.session.scalars(stmt.with_for_update(skip_locked=True)))


class TargetRepo(Repo[m.OutputTarget]):
    model = m.OutputTarget
    noun = "output target"

    def states_for(
        self, recording_ids: Sequence[int]
    ) -> dict[int, dict[int, tuple[str, str | None]]]:
        """Per recording, preset id -> (target status, approval): one query for a page of
        recordings."""
        T = m.OutputTarget
        stmt = select(T.recording_id, T.preset_id, T.status, T.approval).where(
            T.recording_id.in_(list(recording_ids))
        )
        out: dict[int, dict[int, tuple[str, str | None]]] = {}
        for rid, pid, status, approval in self.session.execute(stmt):
            out.setdefault(int(rid), {})[int(pid)] = (str(status), approval)
        return out


class AutomationRepo(NamedRepo[m.AutomationJob]):
    model = m.AutomationJob
    noun = "automation job"


class AutomationRunRepo(Repo[m.AutomationRun]):
    model = m.AutomationRun
    noun = "automation run"


class NotifyTargetRepo(NamedRepo[m.NotifyTarget]):
    model = m.NotifyTarget
    noun = "notification target"


class NotificationRepo(Repo[m.Notification]):
    model = m.Notification
    noun = "notification"


class AuditRepo(Repo[m.AuditEntry]):
    model = m.AuditEntry
    noun = "audit entry"

    def newest(self, limit: int) -> list[m.AuditEntry]:
        A = m.AuditEntry
        return list(self.session.scalars(select(A).order_by(A.at.desc(), A.id.desc()).limit(limit)))


class SystemStateRepo(Repo[m.SystemState]):
    model = m.SystemState
    noun = "system state"

    def get_key(self, key: str) -> m.SystemState | None:
        return self.find(key=key)

    def list_prefixed(self, prefix: str) -> list[m.SystemState]:
        """The install-wide facts whose key starts with `prefix` ("daemon:")."""
        S = m.SystemState
        return list(self.session.scalars(select(S).where(_starts_with(S.key, prefix))))

    def delete_prefixed(self, prefix: str) -> int:
        """Remove the install-wide facts whose key starts with `prefix` ("digest:7:")."""
        S = m.SystemState
        stmt = delete(S).where(_starts_with(S.key, prefix))
        res = self.session.execute(stmt, execution_options={"synchronize_session": False})
        return int(res.rowcount)  # type: ignore[attr-defined]


def _starts_with(column: InstrumentedAttribute[str], prefix: str) -> ColumnElement[bool]:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped + "%", escape="\\")


# Rows per multi-row INSERT: 1,000 rows of a dozen columns stay well under SQLite's 32,766
# and PostgreSQL's 65,535 bound parameters.
_ROWS_PER_INSERT = 1000


def _insert_returning(
    session: Session, model: type[Base], rows: Sequence[dict[str, Any]], *columns: Any
) -> list[tuple[Any, ...]]:
    """INSERT many rows, RETURNING `columns` of each, straight through the driver.
    SQLAlchemy's own bulk INSERT converts every value of every row through its column type
    (a JSON dump, a date format): 80 % of the time of starting 10,000 runs. Here each
    distinct value object is converted once, through the same column types (a page's rows
    share their timestamps, config and empty results), so what is stored is exactly what
    the ORM would store. Owners are checked as for any insert (db/scope.py). The rows come
    back in no promised order: return columns that identify each row."""
    if not rows:
        return []
    rows = [dict(r) for r in rows]
    stamp_owners(get_scope(session), model, rows)
    table = cast(Table, model.__table__)
    conn = session.connection()
    # The ORM fills Python-side column defaults (attempts=0, result={}, created_at=now);
    # raw SQL does not: each missing one is computed once and shared by every row.
    for col in table.columns:
        d = col.default
        if col.name in rows[0] or col.primary_key or d is None:
            continue
        if getattr(d, "is_scalar", False) or getattr(d, "is_callable", False):
            value = d.arg(None) if d.is_callable else d.arg  # type: ignore[attr-defined]
            for r in rows:
                r[col.name] = value
    convert = _Converter(table, conn.dialect)
    if conn.dialect.name == "postgresql":
        return _copy_returning(conn, table, rows, convert, columns)
    names = list(rows[0])
    quote = conn.dialect.identifier_preparer.quote
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) VALUES "
    tail = " RETURNING " + ", ".join(quote(c.name) for c in columns) if columns else ""
    one = "(" + ", ".join(["?"] * len(names)) + ")"
    out: list[tuple[Any, ...]] = []
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        batch = rows[start : start + _ROWS_PER_INSERT]
        flat = tuple(v for r in batch for v in convert.row(r, names))
        result = conn.exec_driver_sql(head + ", ".join([one] * len(batch)) + tail, flat)
        if columns:
            out.extend(tuple(r) for r in result)
    return out


class _Converter:
    """A value as its column type binds it for this dialect, each distinct object converted
    once (the rows being inserted hold every value alive, so an id names one object). On
    PostgreSQL, JSON is the text the JSON type sends (json.dumps), for COPY."""

    def __init__(self, table: Table, dialect: Any) -> None:
        self.memo: dict[tuple[str, int], Any] = {}
        self.procs: dict[str, Any] = {}
        for col in table.columns:
            if dialect.name == "postgresql" and isinstance(col.type, JSON):
                self.procs[col.name] = json.dumps
            else:
                self.procs[col.name] = col.type.dialect_impl(dialect).bind_processor(dialect)

    def row(self, row: dict[str, Any], names: Sequence[str]) -> list[Any]:
        """A row's values in `names` order; columns without a conversion pass as they are."""
        procs = self.procs
        return [row[n] if procs[n] is None else self(n, row[n]) for n in names]

    def __call__(self, name: str, value: Any) -> Any:
        proc = self.procs[name]
        if proc is None or value is None:
            return value
        key = (name, id(value))
        if key not in self.memo:
            self.memo[key] = proc(value)
        return self.memo[key]


def _copy_returning(
    conn: Any, table: Table, rows: list[dict[str, Any]], convert: _Converter, columns: Any
) -> list[tuple[Any, ...]]:
    """PostgreSQL: ids drawn from the table's sequence first, then the rows sent with COPY,
    the server's bulk path. (A VALUES list of 12,000 placeholders is re-parsed by psycopg,
    in Python, on every execute; arrays through unnest() are escaped element by element:
    each cost more than the inserts themselves.)"""
    pk = table.primary_key.columns.values()[0]
    if pk.name not in rows[0]:
        seq = conn.exec_driver_sql(
            "SELECT pg_get_serial_sequence(%s, %s)", (table.name, pk.name)
        ).scalar_one()
        ids = conn.exec_driver_sql(
            "SELECT nextval(%s) FROM generate_series(1, %s)", (seq, len(rows))
        ).scalars()
        for row, id_ in zip(rows, ids, strict=True):
            row[pk.name] = int(id_)
    names = list(rows[0])
    quote = conn.dialect.identifier_preparer.quote
    sql = f"COPY {quote(table.name)} ({', '.join(quote(n) for n in names)}) FROM STDIN"
    convert.procs[pk.name] = None  # drawn from the sequence above: an int as it is
    with conn.connection.driver_connection.cursor() as cur, cur.copy(sql) as copy:
        for row in rows:
            copy.write_row(convert.row(row, names))
    keys = [c.key for c in columns]  # once: an ORM attribute's name is a slow lookup
    return [tuple(row[k] for k in keys) for row in rows]


class Repos:
    """All repositories over one session."""

    def __init__(self, session: Session) -> None:
        self.users = UserRepo(session)
        self.plans = PlanRepo(session)
        self.quota_overrides = QuotaOverrideRepo(session)
        self.usage = UsageRepo(session)
        self.credentials = CredentialRepo(session)
        self.sources = SourceRepo(session)
        self.presets = PresetRepo(session)
        self.templates = TemplateRepo(session)
        self.template_presets = TemplatePresetRepo(session)
        self.recordings = RecordingRepo(session)
        self.runs = RunRepo(session)
        self.stages = StageRepo(session)
        self.targets = TargetRepo(session)
        self.automations = AutomationRepo(session)
        self.automation_runs = AutomationRunRepo(session)
        self.notify_targets = NotifyTargetRepo(session)
        self.notifications = NotificationRepo(session)
        self.audit = AuditRepo(session)
        self.system = SystemStateRepo(session)
