"""Sync: bring a source's recordings into LEAP exactly once, matched and blank-checked.

Each page of a source is its own unit of work (one SELECT for the page's existing rows, one
batched INSERT for new ones, an UPDATE only per changed row), so a crash keeps what was
synced, a long Zoom listing never holds the database's write lock, and a re-sync with no
changes writes no recording at all. One bad item never sinks a page: when the page fails, it
is redone item by item, each inside a SAVEPOINT, and the items that still fail are skipped
with their reason in the result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.exc import InterfaceError, OperationalError

from leap.context import Context, Runtime, open_context
from leap.db.base import utcnow
from leap.db.models import InputSource, Recording
from leap.db.scope import Scope
from leap.domain import RecordingStatus, SourceKind
from leap.errors import CredentialDead, LeapError, PartialFailure, UsageError
from leap.services import credentials, mapping
from leap.services.sync.item import SourceItem, SyncDeps
from leap.services.sync.local import local_pages
from leap.services.sync.result import SyncResult, printable
from leap.services.sync.zoom import zoom_pages

# The package's name (see result.py): the CLI's output already says these warnings.
log = logging.getLogger(__package__)

# Errors of the database itself (connection lost, locked), not of one item: retrying the
# page item by item would only skip every item for nothing.
_SYSTEMIC = (OperationalError, InterfaceError)


@dataclass
class _Tally:
    """What one attempt at a page did; added to the result only once its SAVEPOINT held."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    blank: int = 0
    matched: int = 0
    unmatched: int = 0

    def add_to(self, total: SyncResult | _Tally) -> None:
        for f in fields(self):
            setattr(total, f.name, getattr(total, f.name) + getattr(self, f.name))


def upsert_page(
    ctx: Context,
    source_id: int,
    items: Sequence[SourceItem],
    matcher: mapping.Matcher,
    result: SyncResult,
) -> None:
    """Insert new recordings, update changed ones, leave local state alone; an item that
    cannot be stored is skipped with its reason and the rest of the page is kept."""
    unique: dict[str, SourceItem] = {}
    for item in items:
        unique.setdefault(item.external_id, item)  # a source that repeats itself in a page
    page = list(unique.values())
    try:
        with ctx.session.begin_nested():
            tally = _upsert(ctx, source_id, page, matcher, result.dry_run)
    except _SYSTEMIC:
        raise
    except Exception as exc:
        log.info("a page of %d item(s) failed (%s); retrying item by item", len(page), _reason(exc))
        tally = _Tally()
        for item in page:
            try:
                with ctx.session.begin_nested():
                    one = _upsert(ctx, source_id, [item], matcher, result.dry_run)
            except _SYSTEMIC:
                raise
            except Exception as item_exc:
                result.skip(item.external_id, _reason(item_exc))
            else:
                one.add_to(tally)
    tally.add_to(result)


def _reason(exc: BaseException) -> str:
    # SQLAlchemy wraps driver errors with the statement and parameters: the driver's first
    # line says what was wrong without dumping the whole row.
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip().splitlines()
    return printable(f"{type(cause).__name__}: {text[0] if text else 'no detail'}")


def _upsert(
    ctx: Context,
    source_id: int,
    items: Sequence[SourceItem],
    matcher: mapping.Matcher,
    dry_run: bool,
) -> _Tally:
    tally = _Tally()
    existing = ctx.repos.recordings.by_external_ids(source_id, [i.external_id for i in items])
    fresh: list[dict[str, Any]] = []
    for item in items:
        rec = existing.get(item.external_id)
        if rec is None:
            rec = Recording(
                source_id=source_id,
                external_id=item.external_id,
                status=RecordingStatus.INITIALIZED.value,
                progress=0,
            )
            item.apply(rec)
            _classify(rec, matcher, tally)
            fresh.append(_row(rec))
            tally.new += 1
        elif item.differs(rec):
            if not dry_run:
                item.apply(rec)
                if rec.template_id is None:
                    mapping.apply_match(rec, matcher.match(rec))
                mapping.apply_blank(rec, matcher.thresholds_for(rec.template_id))
            tally.updated += 1
        else:
            tally.unchanged += 1
    if not dry_run:
        # One batched INSERT per page instead of a statement per recording.
        ctx.repos.recordings.insert_many(fresh)
    ctx.session.flush()
    return tally


_INSERTED = (
    "source_id",
    "external_id",
    "title",
    "host",
    "meeting_id",
    "start_time",
    "duration_s",
    "size_bytes",
    "files",
    "blank_record",
    "blank_reason",
    "template_id",
    "match_reason",
    "status",
    "progress",
)


def _row(rec: Recording) -> dict[str, Any]:
    now = utcnow()
    row = {k: getattr(rec, k) for k in _INSERTED}
    return row | {
        "overrides": {},
        "meta_overrides": {},
        "error": None,
        "source_deleted": False,
        "created_at": now,
        "updated_at": now,
    }


def _classify(rec: Recording, matcher: mapping.Matcher, tally: _Tally) -> None:
    match = matcher.match(rec)
    mapping.apply_match(rec, match)
    mapping.apply_blank(rec, matcher.thresholds_for(rec.template_id))
    tally.blank += rec.blank_record
    if match:
        tally.matched += 1
    else:
        tally.unmatched += 1


@dataclass(frozen=True)
class SyncRequest:
    # Names of the sources to sync, in this order (each once); empty: every enabled source.
    sources: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    dry_run: bool = False


class Syncer:
    """Runs sync for one user's sources, opening a unit of work per page (see module doc)."""

    def __init__(
        self,
        runtime: Runtime,
        scope: Scope,
        http: httpx.Client,
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.scope = scope
        self.http = http
        self.sleep = sleep

    def run(self, req: SyncRequest) -> list[SyncResult]:
        if req.date_from and req.date_to and req.date_from > req.date_to:
            raise UsageError(f"--from {req.date_from} is after --to {req.date_to}")
        with open_context(self.runtime, self.scope) as ctx:
            if req.sources:
                # Every name is resolved before any source syncs: a typo in the second
                # name must not leave the first one half done.
                targets = [ctx.repos.sources.require_name(n) for n in dict.fromkeys(req.sources)]
            else:
                targets = [
                    s for s in ctx.repos.sources.list(order_by=(InputSource.name,)) if s.enabled
                ]
        return [self._one(src, req) for src in targets]

    def _one(self, src: InputSource, req: SyncRequest) -> SyncResult:
        result = SyncResult(source=src.name, kind=src.kind, dry_run=req.dry_run)
        started = utcnow()
        try:
            start, end = self._window(src, req)
            result.window_from, result.window_to = start.isoformat(), end.isoformat()
            with open_context(self.runtime, self.scope) as ctx:
                matcher = mapping.load_matcher(ctx)  # once per source: constant cost per page
            for page in self._pages(src, start, end, req, result):
                with open_context(self.runtime, self.scope) as ctx:
                    upsert_page(ctx, src.id, page, matcher, result)
                    if req.dry_run:
                        ctx.session.rollback()
                result.pages += 1
        except LeapError as exc:
            result.error, result.error_code = exc.message, exc.exit_code
            log.warning("sync of source %s failed: %s", src.name, exc.message)
            if isinstance(exc, CredentialDead):
                self._mark_credential_dead(src, exc.message)
        except _SYSTEMIC:
            raise  # the database itself is gone: every other source would fail the same way
        except Exception as exc:
            # A bug or input nobody foresaw, outside any one item: this source fails with a
            # reason, the other sources still sync, the log keeps the traceback.
            log.exception("sync of source %s failed unexpectedly", src.name)
            result.error = printable(f"unexpected {type(exc).__name__}: {exc}")
            result.error_code = 1
        if not req.dry_run:
            self._record(src, result, started, end if result.error is None else None)
        return result

    def _window(self, src: InputSource, req: SyncRequest) -> tuple[date, date]:
        today = utcnow().date()
        end = req.date_to or today
        if req.date_from:
            return req.date_from, end
        s = self.runtime.settings.sync
        if src.last_sync_window_end is not None:
            start = src.last_sync_window_end.date() - timedelta(days=s.overlap_days)
        else:
            start = today - timedelta(days=s.initial_days)
        return min(start, end), end

    def _pages(
        self, src: InputSource, start: date, end: date, req: SyncRequest, result: SyncResult
    ) -> Iterator[Sequence[SourceItem]]:
        deps = SyncDeps(self.runtime, self.scope, self.http, self.sleep)
        if src.kind == SourceKind.ZOOM.value:
            return zoom_pages(deps, src, start, end, result)
        explicit = req.date_from is not None or req.date_to is not None
        return local_pages(deps, src, (start, end) if explicit else None, result)

    def _record(
        self, src: InputSource, result: SyncResult, started: datetime, window_end: date | None
    ) -> None:
        with open_context(self.runtime, self.scope) as ctx:
            row = ctx.repos.sources.require(src.id)
            row.last_synced_at = started
            row.last_sync_error = result.error
            if window_end is not None:
                end_dt = datetime(window_end.year, window_end.month, window_end.day, tzinfo=UTC)
                if row.last_sync_window_end is None or end_dt > row.last_sync_window_end:
                    row.last_sync_window_end = end_dt

    def _mark_credential_dead(self, src: InputSource, reason: str) -> None:
        if src.credential_id is None:
            return
        with open_context(self.runtime, self.scope) as ctx:
            cred = ctx.repos.credentials.require(src.credential_id)
            credentials.mark_dead(ctx, cred, reason)


def overall(results: Sequence[SyncResult]) -> None:
    """Raise the exit status a run deserves: all fine, partly failed, or all failed."""
    failed = [r for r in results if r.error]
    if not failed:
        return
    if len(failed) == len(results):
        first = failed[0]
        err = LeapError(f"sync failed: {first.source}: {first.error}")
        err.exit_code = first.error_code or 1
        raise err
    raise PartialFailure(
        f"{len(failed)} of {len(results)} source(s) failed: "
        + "; ".join(f"{r.source}: {r.error}" for r in failed)
    )
