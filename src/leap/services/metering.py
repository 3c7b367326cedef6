"""Quota enforcement where work is committed (docs/quotas.md, "Enforcement").

Every check-and-take happens with the owner's user row locked (FOR UPDATE on PostgreSQL;
on SQLite every transaction already holds the write lock, BEGIN IMMEDIATE), and counts
the period's usage events after taking the lock: two processes reserving the last unit are
serialised, and the second one sees the first one's event. A reservation is a usage event
with a `ref` naming what it pays for, so the same work reserved again (a retry, a second
daemon, a crash between reserve and call) finds its row instead of taking a second unit.

Period limits are reserved before the work and settled after it (transcription minutes:
estimated from the audio, settled to what was transcribed); a reservation whose work did
not happen is released. Standing limits (templates, presets, sources, automation jobs,
concurrent runs, storage) are checked on create."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select

from leap.context import Context
from leap.db.base import utcnow
from leap.db.models import (
    AutomationJob,
    InputSource,
    OutputPreset,
    PipelineRun,
    Template,
    UsageEvent,
    User,
)
from leap.domain import RunStatus
from leap.errors import QuotaExceeded
from leap.services import quotas
from leap.specs.quota import COUNTS, LIMITS, period

# Standing limits counted as rows the user owns now.
_ROWS: dict[str, Any] = {
    "templates": Template,
    "presets": OutputPreset,
    "sources": InputSource,
    "automation_jobs": AutomationJob,
}


@dataclass
class Meter:
    """One user's limits and period, read once with the user row locked."""

    user: User
    start: datetime
    end: datetime
    limits: dict[str, tuple[Any, str]]
    _period_use: dict[str, float] | None = field(default=None, repr=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.user.timezone)

    def limit(self, key: str) -> Any:
        return self.limits[key][0]

    def resets(self) -> str:
        return self.end.astimezone(self.tz).strftime("%Y-%m-%d %H:%M ") + self.user.timezone

    def refused(self, key: str, used: float, *, wanted: float = 1) -> QuotaExceeded:
        """The one-line refusal: the limit, its use, where the limit comes from, the reset."""
        value, origin = self.limits[key]
        if LIMITS[key].period:
            more = f" (needs {round(wanted, 2):g} more)" if wanted != 1 else ""
            return QuotaExceeded(
                f"quota {key} reached: {used:g} of {value:g} used{more} ({origin}); "
                f"resets {self.resets()}",
                resets_at=self.end,
            )
        return QuotaExceeded(
            f"quota {key} reached: {used:g} of {value:g} ({origin}); "
            "frees up when some are removed or finish"
        )


def meter(ctx: Context, user_id: int, now: datetime | None = None, *, lock: bool = True) -> Meter:
    """The user's meter; `lock` holds their row until the unit of work ends, so what is read
    next cannot change under the caller (every reservation locks; a --dry-run does not)."""
    now = now or utcnow()
    user = ctx.repos.users.lock(user_id) if lock else ctx.repos.users.require(user_id)
    start, end = period(user.created_at, now, ZoneInfo(user.timezone))
    return Meter(user, start, end, quotas.limits(ctx, user, now))


def period_use(ctx: Context, m: Meter) -> dict[str, float]:
    """Each period limit's use: the sum of its kinds' events this period, reservations
    included (one grouped query, read after the lock)."""
    if m._period_use is None:
        m._period_use = quotas.period_use(ctx, m.user.id, m.start, m.end)
    return m._period_use


def keys_for(kind: str) -> list[str]:
    """The period limits an event of `kind` counts toward (an upload to YouTube: uploads
    and YouTube uploads)."""
    return [key for key, kinds in COUNTS.items() if kind in kinds]


def over(ctx: Context, m: Meter, kind: str, amount: float) -> QuotaExceeded | None:
    """The refusal if `amount` more of `kind` does not fit this period, else None."""
    for key in keys_for(kind):
        value = m.limit(key)
        if value is None:
            continue
        used = period_use(ctx, m)[key]
        # A small tolerance: minutes are floats summed in a different order each time.
        if used + amount > float(value) + 1e-9:
            return m.refused(key, used, wanted=amount)
    return None


def reserve(
    ctx: Context,
    user_id: int,
    kind: str,
    amount: float,
    *,
    ref: str,
    recording_id: int | None = None,
    now: datetime | None = None,
    **detail: Any,
) -> UsageEvent:
    """Take `amount` of `kind` for the work `ref` names, or raise QuotaExceeded (with the
    period's reset as resets_at). The same ref reserved again returns its existing event."""
    m = meter(ctx, user_id, now)
    existing = ctx.repos.usage.find(ref=ref)
    if existing is not None:
        return existing
    refusal = over(ctx, m, kind, amount)
    if refusal is not None:
        raise refusal
    event = UsageEvent(
        user_id=user_id,
        kind=kind,
        amount=amount,
        recording_id=recording_id,
        ref=ref,
        detail={**detail, "reserved": True},
        at=now or utcnow(),
    )
    ctx.repos.usage.add(event)
    return event


def settle(ctx: Context, ref: str, amount: float, **detail: Any) -> None:
    """The work `ref` reserved for is done and cost `amount`."""
    event = ctx.repos.usage.find(ref=ref)
    if event is not None:
        event.amount = amount
        event.detail = {k: v for k, v in {**event.detail, **detail}.items() if k != "reserved"}


def release(ctx: Context, ref: str) -> None:
    """The work `ref` reserved for did not happen: its unit goes back."""
    ctx.session.execute(delete(UsageEvent).where(UsageEvent.ref == ref))


def check_standing(ctx: Context, user_id: int, key: str, adding: int = 1) -> None:
    """Before creating `adding` more of a standing thing (a template, preset, source,
    automation job): QuotaExceeded if it would pass the user's limit. Locks the user row,
    so two concurrent creates cannot both take the last place."""
    m = meter(ctx, user_id)
    value = m.limit(key)
    if value is None:
        return
    model = _ROWS[key]
    have = int(
        ctx.session.scalar(select(func.count(model.id)).where(model.user_id == user_id)) or 0
    )
    if have + adding > value:
        raise m.refused(key, have)


def check_room(ctx: Context, key: str) -> None:
    """`check_standing` for the acting user (nothing to check for the system scope)."""
    if ctx.scope.user_id is not None:
        check_standing(ctx, ctx.scope.user_id, key)


def active_runs(ctx: Context, user_id: int) -> int:
    return int(
        ctx.session.scalar(
            select(func.count(PipelineRun.id)).where(
                PipelineRun.user_id == user_id, PipelineRun.status == RunStatus.ACTIVE.value
            )
        )
        or 0
    )


def check_storage(ctx: Context, user_id: int, media_root: Path) -> None:
    """Before a download adds media: QuotaExceeded when the user's media is at the limit."""
    m = meter(ctx, user_id, lock=False)
    value = m.limit("storage_gb")
    if value is None:
        return
    used = quotas.storage_bytes(media_root, user_id) / quotas.GB
    if used >= float(value):
        raise m.refused("storage_gb", round(used, 3))


@dataclass
class Budget:
    """What one user may still start (services/bulk_start.py): recordings this period and
    runs in progress, counted after locking the user row for a real start. A recording
    already paid for this period (`paid`) costs nothing more: one recording is one unit
    however many runs it takes."""

    meter: Meter
    recordings_left: float | None
    runs_left: float | None
    recordings_used: float = 0
    runs_used: float = 0
    paid: set[int] = field(default_factory=set)
    taken: set[int] = field(default_factory=set)

    def learn(self, ctx: Context, recording_ids: list[int]) -> None:
        """Which of a page's recordings are paid for this period already (one query)."""
        if self.recordings_left is None or not recording_ids:
            return
        ev = UsageEvent
        self.paid.update(
            int(rid)
            for rid in ctx.session.scalars(
                select(ev.recording_id).where(
                    ev.user_id == self.meter.user.id,
                    ev.kind == "recordings",
                    ev.at >= self.meter.start,
                    ev.at < self.meter.end,
                    ev.recording_id.in_(recording_ids),
                )
            )
            if rid is not None
        )

    def take(self, recording_id: int) -> QuotaExceeded | None:
        """Takes one start's units, or returns the refusal when it does not fit."""
        if self.runs_left is not None and self.runs_left < 1:
            return self.meter.refused("concurrent_runs", self.runs_used)
        needs = recording_id not in self.paid and recording_id not in self.taken
        if needs and self.recordings_left is not None and self.recordings_left < 1:
            return self.meter.refused("recordings_per_month", self.recordings_used)
        if self.runs_left is not None:
            self.runs_left -= 1
            self.runs_used += 1
        if needs:
            self.taken.add(recording_id)
            if self.recordings_left is not None:
                self.recordings_left -= 1
                self.recordings_used += 1
        return None


def budget(ctx: Context, user_id: int, *, lock: bool, now: datetime | None = None) -> Budget:
    """The user's start budget, read now (after locking their row when `lock`)."""
    m = meter(ctx, user_id, now, lock=lock)
    rec_limit, run_limit = m.limit("recordings_per_month"), m.limit("concurrent_runs")
    b = Budget(m, None, None)
    if rec_limit is not None:
        b.recordings_used = period_use(ctx, m)["recordings_per_month"]
        b.recordings_left = float(rec_limit) - b.recordings_used
    if run_limit is not None:
        b.runs_used = active_runs(ctx, user_id)
        b.runs_left = float(run_limit) - b.runs_used
    return b


def recording_ref(m: Meter, recording_id: int) -> str:
    """One recording is paid once per period, however many runs it takes."""
    return f"recording:{recording_id}:{m.start.date().isoformat()}"


def record_starts(ctx: Context, budgets: dict[int, Budget], started: dict[int, int]) -> None:
    """The `recordings` events of the runs just started (recording id -> owner), one
    INSERT for them all. Every start is recorded, limited or not: usage history counts
    what was done; a recording already paid for this period adds nothing."""
    now = utcnow()
    rows = []
    seen: set[str] = set()
    for rid, uid in started.items():
        b = budgets[uid]
        ref = recording_ref(b.meter, rid)
        if rid in b.paid or ref in seen:
            continue
        seen.add(ref)
        rows.append(
            {
                "user_id": uid,
                "kind": "recordings",
                "amount": 1.0,
                "recording_id": rid,
                "ref": ref,
                "detail": {},
                "at": now,
            }
        )
    if not rows:
        return
    # When no limit is set, `paid` was not asked: a ref already there (a second run of a
    # recording this period) is skipped by the insert itself. (Asking first with
    # `ref IN (…)` cost PostgreSQL 0.13 s a page at 30,000 events: bench_bulk.)
    # Each dialect's module is imported only where it is used: a SQLite install never loads
    # PostgreSQL's (tests/test_stage_imports.py).
    if ctx.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as make
    else:
        from sqlalchemy.dialects.sqlite import insert as make  # type: ignore[assignment]
    ctx.session.execute(make(UsageEvent).on_conflict_do_nothing(index_elements=["ref"]), rows)
