"""The scheduler: jobs only enqueue. Exactly one leapd per install runs it (docs/internals.md, "One
scheduler per install": two schedulers on one job store ran a job 19 times in 10 s): a lock file
next to a SQLite database, a session-level advisory lock on PostgreSQL."""

from __future__ import annotations

import fcntl
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Connection, text

from leap.context import Runtime
from leap.db.engine import sqlite_path
from leap.tasks import AUTOMATION_TICK, HEARTBEAT, RECONCILE, ZOOM_CLEANUP, TaskQueue

log = logging.getLogger(__name__)

# An arbitrary constant that names "the LEAP scheduler" among advisory locks.
ADVISORY_KEY = 0x1EA9_5C4E


class SchedulerLock:
    """Held for the life of the process; released by the OS if the process dies."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._file: IO[str] | None = None
        self._conn: Connection | None = None

    def acquire(self) -> bool:
        db_file = sqlite_path(self.runtime.settings.database_url)
        if self.runtime.engine.dialect.name == "postgresql":
            conn = self.runtime.engine.connect()
            got = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar()
            )
            conn.commit()
            if got:
                self._conn = conn
            else:
                conn.close()
            return got
        path = (db_file.parent if db_file else self.runtime.settings.data_path) / "scheduler.lock"
        return self._lock_file(path)

    def _lock_file(self, path: Path) -> bool:
        fh = path.open("a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._file = fh
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._conn is not None:
            self._conn.close()  # ends the session: the advisory lock goes with it
            self._conn = None


def build_scheduler(runtime: Runtime, queue: TaskQueue) -> BackgroundScheduler:
    # Jobs live in memory and are rebuilt from LEAP's tables at start; APScheduler's own job
    # stores are not shared between processes safely.
    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
    )

    def enqueue(name: str, **kwargs: Any) -> None:
        try:
            queue.send(name, kwargs)
        except Exception:  # a queue outage must not kill the scheduler thread
            log.exception("could not enqueue %s", name)

    scheduler.add_job(
        enqueue,
        "interval",
        seconds=runtime.settings.worker.heartbeat_seconds,
        args=[HEARTBEAT],
        id=HEARTBEAT,
        next_run_time=datetime.now(UTC),
    )
    scheduler.add_job(
        enqueue,
        "interval",
        seconds=runtime.settings.worker.reconcile_seconds,
        args=[RECONCILE],
        id=RECONCILE,
        next_run_time=datetime.now(UTC),  # at start: finish what a crash left behind
    )
    # Automation: one tick looks for due firings in LEAP's tables (docs/automation.md), so
    # jobs added, edited or disabled take effect at the next tick, without a restart, and
    # the database claim, not this scheduler, decides who fires a planned time.
    scheduler.add_job(
        enqueue,
        "interval",
        seconds=runtime.settings.automation.tick_seconds,
        args=[AUTOMATION_TICK],
        id=AUTOMATION_TICK,
        next_run_time=datetime.now(UTC),  # at start: a firing missed while down, once
    )
    # Zoom cloud cleanup (docs/zoom-cleanup.md): the pass claims each recording in the
    # database, so it is safe wherever it runs; the first one comes an interval after start
    # (a restarting leapd does not make Zoom calls on its way up).
    scheduler.add_job(
        enqueue,
        "interval",
        minutes=runtime.settings.zoom.cleanup_interval_minutes,
        args=[ZOOM_CLEANUP],
        id=ZOOM_CLEANUP,
    )
    return scheduler
