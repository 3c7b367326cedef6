"""`leapd`: check the schema, take the scheduler lock, run the consumer until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated, Literal

import typer

from leap.config import check_worker_count, load_settings
from leap.context import Runtime
from leap.daemon.scheduler import SchedulerLock, build_scheduler
from leap.db.migrate import require_head
from leap.errors import LeapError
from leap.logs import Demote, setup_logging
from leap.queue import make_huey
from leap.tasks import HEARTBEAT, RECONCILE, TaskQueue

log = logging.getLogger("leapd")

Role = Literal["all", "worker", "scheduler"]


def run(config: str | None, workers: int | None, role: Role) -> int:
    settings = load_settings(config)
    setup_logging(settings.log.level, settings.log.format)
    # Huey says "Executing"/"executed" for every task; for the housekeeping ones that is two
    # lines every few seconds of an idle daemon (55 per idle 5 minutes before).
    logging.getLogger("huey").addFilter(Demote((HEARTBEAT, RECONCILE)))
    # A tick skipped because the previous enqueue still runs is coalesced into the next one:
    # routine on a busy machine, not a warning.
    logging.getLogger("apscheduler.scheduler").addFilter(
        Demote(("maximum number of running instances reached",), up_to=logging.WARNING)
    )
    runtime = Runtime.from_settings(settings)
    require_head(runtime.engine)
    queue = TaskQueue(make_huey(settings), runtime)
    runtime.enqueue = queue.send

    lock = SchedulerLock(runtime)
    scheduler = None
    if role in ("all", "scheduler"):
        if lock.acquire():
            scheduler = build_scheduler(runtime, queue)
            scheduler.start()
            log.info("scheduler started")
        else:
            log.warning("another leapd runs the scheduler; this one only works the queue")

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
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        lock.release()
        runtime.dispose()
    log.info("leapd stopped")
    return 0


def _cli(
    config: Annotated[str | None, typer.Option("--config", help="Path to leap.toml.")] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Worker threads (1 to 64).", show_default=False)
    ] = None,
    role: Annotated[str, typer.Option("--role", help="all | worker | scheduler")] = "all",
) -> None:
    """Run LEAP's task consumer and scheduler (systemd-friendly; logs to stdout)."""
    if role not in ("all", "worker", "scheduler"):
        typer.echo(f"error: --role must be all, worker or scheduler, not {role!r}", err=True)
        raise typer.Exit(2)
    problem = None if workers is None else check_worker_count(workers)
    if problem:
        # One line, like every other refusal; Click's range error is a framed box.
        typer.echo(f"error: --workers {problem}", err=True)
        raise typer.Exit(2)
    try:
        code = run(config, workers, role)  # type: ignore[arg-type]
    except LeapError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(exc.exit_code) from None
    raise typer.Exit(code)


def main() -> None:
    typer.run(_cli)


if __name__ == "__main__":
    main()
