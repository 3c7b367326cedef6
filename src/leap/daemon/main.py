"""`leapd`: check the schema, take the scheduler lock, run the consumer until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING, Literal, NoReturn

from leap.config import check_worker_count, load_settings
from leap.context import Runtime
from leap.daemon.scheduler import SchedulerLock, build_scheduler
from leap.db.migrate import require_head
from leap.errors import LeapError
from leap.logs import Demote, setup_logging
from leap.queue import make_huey
from leap.tasks import AUTOMATION_TICK, HEARTBEAT, RECONCILE, TaskQueue

if TYPE_CHECKING:
    from leap.daemon.http import StatusServer

log = logging.getLogger("leapd")

Role = Literal["all", "worker", "scheduler"]


M_ARENA_MAX = -8  # glibc's <malloc.h>


def _fewer_malloc_arenas() -> None:
    """glibc gives every thread that allocates its own malloc arena (up to eight per core),
    and each keeps what it once touched: 1.3 MB of leapd's peak RSS publishing one video
    (bench_upload). leapd's threads mostly wait on sockets or hold the GIL, so one shared
    arena costs no speed. Must run before the first thread starts; a libc without mallopt
    is left as is."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(M_ARENA_MAX, 1)


def run(config: str | None, workers: int | None, role: Role) -> int:
    _fewer_malloc_arenas()
    settings = load_settings(config)
    setup_logging(settings.log.level, settings.log.format)
    # Huey says "Executing"/"executed" for every task; for the housekeeping ones that is two
    # lines every few seconds of an idle daemon (55 per idle 5 minutes before).
    logging.getLogger("huey").addFilter(Demote((HEARTBEAT, RECONCILE, AUTOMATION_TICK)))
    # A tick skipped because the previous enqueue still runs is coalesced into the next one:
    # routine on a busy machine, not a warning.
    logging.getLogger("apscheduler.scheduler").addFilter(
        Demote(("maximum number of running instances reached",), up_to=logging.WARNING)
    )
    runtime = Runtime.from_settings(settings)
    require_head(runtime.engine)
    queue = TaskQueue(make_huey(settings), runtime)
    runtime.enqueue = queue.send

    # Bound before anything starts, so a taken port stops leapd at once with one line.
    status_server = _start_status_server(runtime, queue) if settings.metrics.enabled else None

    lock = SchedulerLock(runtime)
    scheduler = None
    if role in ("all", "scheduler"):
        if lock.acquire():
            scheduler = build_scheduler(runtime, queue)
            scheduler.start()
            log.info("scheduler started")
        else:
            log.warning("another leapd runs the scheduler; this one only works the queue")
    if status_server is not None:
        status_server.scheduler_running = scheduler is not None

    try:
        if role == "scheduler":
            stop = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            log.info("leapd (scheduler only) running")
            stop.wait()
        else:
            count = workers or settings.worker.count
            consumer = queue.huey.create_consumer(
                workers=count,
                worker_type="thread",
                periodic=False,
                max_delay=settings.queue.max_delay,
                # SIGTERM (systemd stop) lets running tasks finish, up to the timeout.
                graceful_signal="TERM",
                shutdown_timeout=settings.worker.shutdown_timeout,
                flush_locks=True,
            )
            log.info("leapd running: %d worker(s), queue %s", count, settings.queue.backend)
            consumer.run()
    finally:
        if status_server is not None:
            status_server.stop()
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        lock.release()
        runtime.dispose()
    log.info("leapd stopped")
    return 0


def _start_status_server(runtime: Runtime, queue: TaskQueue) -> StatusServer:
    """/healthz, /metrics and the status page (`[metrics] enabled`). Imported only then:
    prometheus_client and http.server are memory a leapd without them would carry for
    nothing."""
    from leap.daemon.http import StatusServer

    try:
        return StatusServer.start(runtime, queue.huey.pending_count)
    except LeapError:
        runtime.dispose()
        raise


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other refusal (argparse would add its usage block).
        self.exit(2, f"error: {message} (leapd --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="leapd",
        description="Run LEAP's task consumer and scheduler (systemd-friendly; logs to stdout).",
    )
    parser.add_argument("--config", metavar="PATH", help="path to leap.toml")
    parser.add_argument("--workers", metavar="N", help="worker threads (1 to 64)")
    parser.add_argument(
        "--role", default="all", metavar="ROLE", help="all | worker | scheduler (default all)"
    )
    return parser


def _refuse(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    """leapd's command line: argparse, not Typer, because leapd has three options and lives
    for weeks: Typer and its Click would hold 0.9 MB of its RSS for nothing."""
    args = _parser().parse_args(argv)
    if args.role not in ("all", "worker", "scheduler"):
        _refuse(f"--role must be all, worker or scheduler, not {args.role!r}")
    workers = None
    if args.workers is not None:
        try:
            workers = int(args.workers)
        except ValueError:
            _refuse(f"--workers must be a whole number of worker threads, not {args.workers!r}")
        if problem := check_worker_count(workers):
            _refuse(f"--workers {problem}")
    try:
        code = run(args.config, workers, args.role)
    except LeapError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    sys.exit(code)


if __name__ == "__main__":
    main()
