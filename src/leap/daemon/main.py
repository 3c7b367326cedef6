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

from leap.config import Settings, check_worker_count, load_settings
from leap.context import Runtime
from leap.daemon.presence import Presence
from leap.daemon.scheduler import SchedulerLock, build_scheduler
from leap.db.migrate import require_head
from leap.errors import LeapError, UsageError
from leap.logs import Demote, setup_logging
from leap.specs.lanes import LANES, parse_queues, parse_workers
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


def run(
    config: str | None,
    workers: int | dict[str, int] | None,
    role: Role,
    queues: tuple[str, ...] = LANES,
) -> int:
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
    queue = TaskQueue.for_settings(runtime)
    runtime.enqueue = queue.send
    # Worker threads per lane this leapd consumes (specs/lanes.py).
    if isinstance(workers, dict):
        per_lane = {lane: workers.get(lane, settings.worker.count) for lane in queues}
    else:
        per_lane = {lane: workers or settings.worker.count for lane in queues}

    # Bound before anything starts, so a taken port stops leapd at once with one line.
    status_server = _start_status_server(runtime, queue) if settings.metrics.enabled else None

    presence = Presence(
        runtime,
        {
            "role": role,
            "queues": [] if role == "scheduler" else list(queues),
            "workers": 0 if role == "scheduler" else sum(per_lane.values()),
            "scheduler": False,
        },
    )
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

    def take_over() -> None:
        # The leapd that held the scheduler lock died (its lock went with it): the first
        # other leapd to notice runs the scheduler from now on, so heartbeats, the
        # reconciler and automation never stop for good (README.md, "Several hosts").
        nonlocal scheduler
        if scheduler is not None or role == "worker" or not lock.acquire():
            return
        scheduler = build_scheduler(runtime, queue)
        scheduler.start()
        presence.facts["scheduler"] = True
        if status_server is not None:
            status_server.scheduler_running = True
        log.warning("took over the scheduler: the leapd that ran it has stopped")

    presence.tick = take_over
    presence.facts["scheduler"] = scheduler is not None
    presence.beat()  # listed at once, not a heartbeat later
    presence.start()

    try:
        if role == "scheduler":
            stop = threading.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
            log.info("leapd (scheduler only) running")
            stop.wait()
        else:
            _consume(queue, per_lane, settings)
    finally:
        presence.stop()
        if status_server is not None:
            status_server.stop()
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        lock.release()
        runtime.dispose()
    log.info("leapd stopped")
    return 0


def _consume(queue: TaskQueue, per_lane: dict[str, int], settings: Settings) -> None:
    """Run one Huey consumer per lane until SIGTERM/SIGINT. The first one runs in the main
    thread and owns the signals (Huey's graceful stop); the others run their workers in the
    background and are stopped, as gracefully, when it returns."""
    hueys = queue.hueys()
    consumers = []
    for lane, count in per_lane.items():
        consumer = hueys.get(lane, queue.huey).create_consumer(
            workers=count,
            worker_type="thread",
            periodic=False,
            max_delay=settings.queue.max_delay,
            # SIGTERM (systemd stop) lets running tasks finish, up to the timeout.
            graceful_signal="TERM",
            shutdown_timeout=settings.worker.shutdown_timeout,
            flush_locks=lane == LANES[0],  # once: the locks are the install's
        )
        consumers.append(consumer)
    first, *others = consumers
    quiet = logging.getLogger("huey.consumer.lanes")
    quiet.setLevel(logging.WARNING)
    for other in others:
        # Only the main thread may own the signal handlers; the first consumer does. Its
        # start-up block (the command list, again) would only repeat the first one's.
        other._set_signal_handlers = lambda: None
        other._logger = quiet
        other.start()
    lanes_text = ", ".join(f"{lane} {n}" for lane, n in per_lane.items())
    install = first._set_signal_handlers

    def handlers_then_running() -> None:
        # "leapd running" only once SIGTERM means a graceful stop: said earlier, a stop
        # sent on seeing it (systemd, a test) could still kill the process outright.
        install()
        log.info("leapd running: worker(s) %s, queue %s", lanes_text, settings.queue.backend)

    first._set_signal_handlers = handlers_then_running
    try:
        first.run()
    finally:
        for other in others:
            other.stop(graceful=True)


def _start_status_server(runtime: Runtime, queue: TaskQueue) -> StatusServer:
    """/healthz, /metrics and the status page (`[metrics] enabled`). Imported only then:
    prometheus_client and http.server are memory a leapd without them would carry for
    nothing."""
    from leap.daemon.http import StatusServer

    try:
        return StatusServer.start(runtime, queue.pending_count)
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
    parser.add_argument(
        "--workers",
        metavar="N",
        help="worker threads per queue (1 to 64), or per queue: io=4,cpu=1",
    )
    parser.add_argument(
        "--queues",
        default="io,cpu",
        metavar="LIST",
        help="queues this leapd works: io, cpu or io,cpu (default both)",
    )
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
    try:
        queues = parse_queues(args.queues)
        workers = (
            parse_workers(args.workers, queues, check_worker_count)
            if args.workers is not None
            else None
        )
    except UsageError as exc:
        _refuse(exc.message)
    try:
        code = run(args.config, workers, args.role, queues)
    except LeapError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    sys.exit(code)


if __name__ == "__main__":
    main()
