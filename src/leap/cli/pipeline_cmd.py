"""`leap process`, `leap retry`, `leap cancel`, `leap status`: run the pipeline and watch it."""

from __future__ import annotations

import threading
import time
from contextlib import nullcontext
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from leap.cli import _bulk as _Bulk
from leap.cli import _filters as F
from leap.cli import _selection as Sel
from leap.cli._run import AppState, state_of
from leap.context import Context, Enqueue, Runtime
from leap.domain import RunStatus, Stage, StageStatus
from leap.errors import LeapError, PartialFailure, QueueUnavailable, QuotaExceeded, UsageError
from leap.pipeline.foreground import run_now
from leap.pipeline.stage_api import Progress as StageProgress
from leap.services import audit, bulk_start, recordings, runs, system, takeover
from leap.services.recordings import RecordingFilter
from leap.specs.processing import parse_stages
from leap.specs.startable import CONFLICT, Decision

if TYPE_CHECKING:
    # Imported where a bar is drawn: only a terminal needs it (0.5 MB of every process).
    from rich.progress import Progress, TaskID

POLL_SECONDS = 0.5


class _Sender:
    """Sends the queue messages of the runs this command commits. After the first failure
    no more are tried (a server that refused one refuses the next, and each try may wait out
    a timeout): those runs are safe in the database and leapd's reconciler sends them."""

    def __init__(self, send: Enqueue | None) -> None:
        self.send = send
        self.failure: QueueUnavailable | None = None

    def __call__(self, name: str, kwargs: dict[str, Any], delay: float | None) -> None:
        if self.failure is not None or self.send is None:
            return
        try:
            self.send(name, kwargs, delay)
        except QueueUnavailable as exc:
            self.failure = exc

    def install(self, runtime: Runtime) -> _Sender:
        self.send, runtime.enqueue = runtime.enqueue, self
        return self


def _resumed(state: AppState, rid: int) -> tuple[dict[str, Any], list[int]]:
    """Take over the run of `rid` that nobody works on (a Conflict while someone does)."""
    with state.context() as c:
        taken = takeover.take_over(c, rid)
        run = c.repos.runs.require(taken.run_id)
        row = {
            "recording_id": rid,
            "run_id": run.id,
            "stages": run.stages,
            "error": None,
            "resumed": True,
        }
    why = (
        f"{', '.join(taken.resumed)} had been left running by a process that stopped"
        if taken.resumed
        else "it was waiting in the queue"
    )
    state.output.message(f"recording {rid}: resuming run {taken.run_id} here ({why})")
    if taken.waiting:
        state.output.message(
            f"recording {rid}: {', '.join(taken.waiting)} waits out a back-off; "
            "leapd runs it when it is due"
        )
    return row, taken.stage_ids


def _warn_without_daemon(state: AppState, preview: list[int], queued: int, command: str) -> bool:
    """Say so when runs were queued and no leapd is there to run them; True if none is.
    `preview`: the first few of the `queued` recordings, for the suggested command."""
    if not queued:
        return False
    with state.context() as c:
        alive = system.daemon_alive(c, state.settings.worker.heartbeat_seconds)
    if alive:
        return False
    ids = " ".join(str(i) for i in preview[:5]) + (" ..." if queued > 5 else "")
    state.output.warning(
        f"no leapd is running (no heartbeat in the last "
        f"{3 * state.settings.worker.heartbeat_seconds:.0f} s): the run(s) wait in the queue "
        f"until one starts; start `leapd`, or run them here with `leap {command} {ids} --now`"
    )
    return True


def _not_found(rid: int) -> dict[str, Any]:
    return {
        "recording_id": rid,
        "run_id": None,
        "stages": [],
        "error": f"recording {rid} not found",
        "exit_code": 3,
    }


def _split(state: AppState, ids: list[int]) -> tuple[list[int], list[dict[str, Any]]]:
    """The ids the acting user can see, in order, and a "not found" row for each other one
    (missing, or another user's: the scope hides those), which is never acted on."""
    with state.context() as c:
        found = recordings.existing_ids(c, ids)
    return [i for i in ids if i in found], [_not_found(i) for i in ids if i not in found]


def _in_order(ids: list[int], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    order = {rid: n for n, rid in enumerate(ids)}
    return sorted(rows, key=lambda r: order.get(r["recording_id"], len(order)))


def _audit_bulk(state: AppState, verb: str, ids: list[int], rows: list[dict[str, Any]]) -> None:
    """One audit entry for a command over more than one recording (its own unit of work:
    the runs it started are already committed, each on its own)."""
    if len(ids) <= 1:
        return
    done = sum(1 for r in rows if r["run_id"] is not None)
    with state.context() as c:
        audit.record_bulk(
            c,
            verb=verb,
            selection=Sel.summary(ids),
            selected=len(ids),
            done=done,
            refused=len(rows) - done,
        )


def _nothing(state: AppState, what: str) -> None:
    """An empty selection is not an error: there is nothing to do (exit 0), said once."""
    state.output.warning(f"no recordings {what}; nothing to do")


Now = Annotated[bool, typer.Option("--now", help="Run here, in the foreground.")]
Wait = Annotated[bool, typer.Option("--wait", help="Queue, then follow until done.")]
Force = Annotated[bool, typer.Option("--force", help="Blank/unmapped too; redo outputs.")]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Show what would be done to each; change nothing.")
]


@F.with_filters
def process(
    ctx: typer.Context,
    ids: Sel.Ids = None,
    ids_from: Sel.IdsFrom = None,
    now: Now = False,
    wait: Wait = False,
    force: Force = False,
    stages: Annotated[str | None, typer.Option("--stages", help="e.g. trim,transcribe")] = None,
    dry_run: DryRun = False,
    *,
    filters: RecordingFilter,
    filtered: bool,
) -> None:
    """Process recordings: queue a pipeline run for each (returns at once) or run it --now."""
    chosen = parse_stages(stages) if stages is not None else None  # "" is an error, not "all"
    start_runs(
        state_of(ctx),
        "process",
        Sel.choose(ids, ids_from, filtered=filtered),
        filters,
        filtered=filtered,
        stages=chosen,
        now=now,
        wait=wait,
        force=force,
        dry_run=dry_run,
    )


def _stage_verb(stage: Stage) -> Any:
    """`leap trim SELECTION`: `leap process SELECTION --stages trim`, as a verb."""

    @F.with_filters
    def verb(
        ctx: typer.Context,
        ids: Sel.Ids = None,
        ids_from: Sel.IdsFrom = None,
        now: Now = False,
        wait: Wait = False,
        force: Force = False,
        dry_run: DryRun = False,
        *,
        filters: RecordingFilter,
        filtered: bool,
    ) -> None:
        start_runs(
            state_of(ctx),
            stage.value,
            Sel.choose(ids, ids_from, filtered=filtered),
            filters,
            filtered=filtered,
            stages=[stage.value],
            now=now,
            wait=wait,
            force=force,
            dry_run=dry_run,
        )

    verb.__name__ = stage.value
    verb.__doc__ = STAGE_HELP[stage]
    return verb


# Each verb's one line of help (also `leap --help`'s, in cli/app.py).
STAGE_HELP = {
    Stage.DOWNLOAD: "Download recordings from their source (the pipeline's first stage).",
    Stage.TRIM: "Trim recordings: cut silence at the start and end (needs the download).",
    Stage.TRANSCRIBE: "Transcribe recordings (needs the download, and the trim if configured).",
    Stage.TOPICS: "Find themes, topics and chapters in transcripts.",
    Stage.SUBTITLES: "Write SRT and WebVTT subtitles from transcripts.",
    Stage.UPLOAD: "Publish recordings to their template's presets (YouTube, VK, a folder).",
}
download = _stage_verb(Stage.DOWNLOAD)
trim = _stage_verb(Stage.TRIM)
transcribe = _stage_verb(Stage.TRANSCRIBE)
topics = _stage_verb(Stage.TOPICS)
subtitles = _stage_verb(Stage.SUBTITLES)
upload = _stage_verb(Stage.UPLOAD)


def start_runs(
    state: AppState,
    verb: str,
    given: list[int] | None,
    filters: RecordingFilter,
    *,
    filtered: bool,
    stages: list[str] | None,
    now: bool,
    wait: bool,
    force: bool,
    dry_run: bool,
) -> None:
    """Start a run per selected recording (or, with `dry_run`, say what starting would do),
    a page at a time (services/bulk_start.py)."""
    if now and wait:
        raise UsageError("--now and --wait exclude each other")
    if dry_run and (now or wait):
        raise UsageError("--dry-run shows what would be queued; it takes neither --now nor --wait")
    if given is None and not filtered:
        raise UsageError("give recording ids or at least one filter (e.g. --unmapped, --from 7d)")
    with state.context() as c:
        # Unknown template or source names in FILTERS fail here, before anything is done.
        total = len(given) if given is not None else bulk_start.count(c, filters)
        planner = bulk_start.Planner(c, stages=stages, force=force)
    if not total:
        _nothing(state, "selected" if given is not None else "match the filters")
        if state.as_json:
            state.output.json([])
        return
    bar = _Bulk.PagesBar(_bar(state, transient=True), f"{verb}: {total:,} recording(s)", total)
    if dry_run:
        printer = _Bulk.PlanPrinter(state, verb)
        try:
            with bar.context():
                for decisions, _ in _Bulk.walk(
                    state, given, filters, lambda c, recs: (planner.judge(c, recs), None)
                ):
                    printer.add(decisions)
                    bar.advance(len(decisions))
        finally:
            printer.close()
        return
    runtime = state.runtime()
    sender = None
    if now:
        runtime.enqueue = lambda *_: None  # stages run below, not through the daemon
    else:
        sender = _Sender(None).install(runtime)
    followed = now or wait
    tally = _Tally(state, total, keep=followed, sender=sender)
    first_stages: list[int] = []

    def work(c: Context, recs: list[Any]) -> tuple[list[Decision], bulk_start.Started]:
        started = planner.start(c, recs)
        return started.decisions, started

    try:
        with bar.context():
            for decisions, started in _Bulk.walk(state, given, filters, work):
                for d in decisions:
                    if d.recording_id in started.run_of:
                        tally.add(
                            {
                                "recording_id": d.recording_id,
                                "run_id": started.run_of[d.recording_id],
                                "stages": started.stages_of[d.recording_id],
                                "error": None,
                            }
                        )
                    elif now and d.exit_code == CONFLICT:
                        row, queued = _resumed(state, d.recording_id)
                        tally.add(row)
                        first_stages.extend(queued)
                    else:
                        tally.add(_refusal(d))
                if now:  # the stages this process runs; leapd's are in the queue
                    first_stages.extend(started.first_stage_of.values())
                bar.advance(len(decisions))
    finally:
        tally.close()
    selection = Sel.summary(given) if given is not None else _Bulk.describe(filters)
    if total > 1:
        with state.context() as c:
            audit.record_bulk(
                c,
                verb=verb,
                selection=selection,
                selected=total,
                done=tally.acted,
                refused=tally.refused,
            )
    if now and first_stages:
        _follow_now(state, runtime, first_stages)
    elif not now and _warn_without_daemon(state, tally.queued_preview, tally.acted, verb):
        wait = False  # nothing would run them: waiting would never end
    elif wait and tally.acted and (sender is None or sender.failure is None):
        _follow_wait(state, [r["run_id"] for r in tally.rows if r["run_id"]])
    if followed:
        _report(state, tally.rows, followed=True, sender=sender)
    else:
        tally.finish()


def _refusal(d: Decision) -> dict[str, Any]:
    """A recording no run was started for: an error row, or (exit code 0, e.g. already
    done) a skipped one, which is no failure."""
    if d.exit_code == 0:
        return {
            "recording_id": d.recording_id,
            "run_id": None,
            "stages": [],
            "error": None,
            "skipped": d.reason,
        }
    return {
        "recording_id": d.recording_id,
        "run_id": None,
        "stages": [],
        "error": f"recording {d.recording_id} not found" if d.exit_code == 3 else d.reason,
        "exit_code": d.exit_code,
    }


class _Tally:
    """The rows of a start over a selection of any size, counted as they come: streamed
    (JSON element by element; on a terminal a line each while few), or kept when the
    command goes on to follow the runs (--now, --wait) and reports at the end."""

    def __init__(self, state: AppState, total: int, *, keep: bool, sender: _Sender | None):
        self.state, self.total, self.keep, self.sender = state, total, keep, sender
        self.rows: list[dict[str, Any]] = []
        self.array = _Bulk.JsonArray() if state.as_json and not keep else None
        self.acted = self.refused = self.skipped = 0
        self.first_refusal: dict[str, Any] | None = None
        self.queued_preview: list[int] = []
        self.unsent: list[dict[str, Any]] = []
        self.unsent_count = 0
        self.said = 0

    def add(self, row: dict[str, Any]) -> None:
        if row["run_id"] is not None:
            self.acted += 1
            if self.sender is not None and self.sender.failure is not None:
                row["sent"] = False
                self.unsent_count += 1
                if len(self.unsent) < 10:
                    self.unsent.append(row)
            elif len(self.queued_preview) < 5:
                self.queued_preview.append(row["recording_id"])
        elif row.get("skipped"):
            self.skipped += 1
        else:
            self.refused += 1
            self.first_refusal = self.first_refusal or row
        if self.keep:
            self.rows.append(row)
        elif self.array is not None:
            self.array.add(row)
        else:
            self._say(row)

    def _say(self, row: dict[str, Any]) -> None:
        out = self.state.output
        rid = row["recording_id"]
        if row["run_id"] is None and not row.get("skipped"):
            if self.total > 1 and self.said < _Bulk.LINES:
                out.warning(_one_error(row, 1))
                self.said += 1
        elif row.get("skipped"):
            if self.total <= _Bulk.LINES:
                out.message(f"recording {rid}: skipped, {row['skipped']}")
        elif row.get("sent") is not False and self.total <= _Bulk.LINES:
            out.message(f"recording {rid}: run {row['run_id']} queued")

    def close(self) -> None:
        if self.array is not None:
            self.array.close()
            self.array = None

    def finish(self) -> None:
        """Counts, then the exit: the queue's refusal, all refused (that refusal's own code),
        or some (8)."""
        out = self.state.output
        if self.total > _Bulk.LINES and not self.state.as_json:
            more = self.refused - self.said
            if more > 0:
                out.warning(f"... and {more:,} more not started (--json lists every one)")
            out.message(
                f"{self.acted:,} run(s) queued; {self.skipped:,} skipped; "
                f"{self.refused:,} not started"
            )
        if self.sender is not None and self.sender.failure is not None and self.unsent_count:
            shown = ", ".join(str(r["recording_id"]) for r in self.unsent)
            if self.unsent_count > len(self.unsent):
                shown += f" and {self.unsent_count - len(self.unsent):,} more"
            saved = (
                f"run {self.unsent[0]['run_id']} of recording {self.unsent[0]['recording_id']} is"
                if self.unsent_count == 1
                else f"the runs of recordings {shown} are"
            )
            # True either way: the stages wait as queued rows, which leapd's reconciler
            # re-sends.
            raise QueueUnavailable(
                f"{self.sender.failure.message.rstrip('.')}. {saved.capitalize()} saved and will "
                "start once leapd reaches the queue"
            )
        if not self.refused:
            return
        if self.refused == self.total and self.first_refusal is not None:
            err = LeapError(_one_error(self.first_refusal, self.total))
            err.exit_code = self.first_refusal.get("exit_code", 1)
            raise err
        raise PartialFailure(f"{self.refused:,} of {self.total:,} recording(s) were not started")


def _one_error(row: dict[str, Any], total: int) -> str:
    """The error line of a command whose every recording was refused."""
    rid = row["recording_id"]
    text = str(row["error"] or "failed")
    if text.startswith(f"recording {rid} "):
        return text
    if row.get("exit_code") == CONFLICT and total == 1:
        text += runs.FOLLOW.format(rid=rid)
    return f"recording {rid}: {text}" if total == 1 else text


def _follow_now(state: AppState, runtime: Runtime, first_stages: list[int]) -> None:
    bar = _bar(state)
    live: dict[int, tuple[Any, StageProgress]] = {}
    stop = threading.Event()

    def on_stage(stage_id: int, p: StageProgress) -> None:
        with state.context() as c:
            st = c.repos.stages.require(stage_id)
            label = f"recording {st.recording_id}: {st.name}"
        if bar is None:
            state.output.message(label)
            return
        for tid, prev in live.values():
            _settle(bar, tid, prev)
        live[stage_id] = (bar.add_task(label, total=1.0), p)

    if bar is None:
        run_now(runtime, first_stages, on_stage=on_stage)
        return
    shown = bar

    def refresh() -> None:
        while not stop.wait(0.2):
            for tid, p in list(live.values()):
                shown.update(tid, completed=p.fraction)

    with bar:
        watcher = threading.Thread(target=refresh, daemon=True)
        watcher.start()
        try:
            run_now(runtime, first_stages, on_stage=on_stage)
        finally:
            stop.set()
            watcher.join()
            for tid, p in live.values():
                _settle(bar, tid, p)


def _settle(bar: Progress, task_id: Any, p: StageProgress) -> None:
    """A stage's bar as it ended: full when done, where it stopped and marked when not."""
    if p.done is False:
        label = next(str(t.description) for t in bar.tasks if t.id == task_id)
        if not label.endswith("[failed]"):
            bar.update(task_id, description=f"{label} [failed]")
    bar.update(task_id, completed=p.fraction)


def _follow_wait(state: AppState, run_ids: list[int]) -> None:
    """Wait until every run has ended. On a terminal a bar per run shows its stage and
    progress and is gone afterwards (the report's lines stand alone: no "done0 %" left
    where a half-overwritten line was); without one, nothing is printed."""
    bar = _bar(state, transient=True)
    tasks: dict[int, TaskID] = {}
    with bar if bar is not None else nullcontext():
        while True:
            with state.context() as c:
                shown = [_wait_line(c, rid) for rid in run_ids]
            if bar is not None:
                for rid, (label, pct, _) in zip(run_ids, shown, strict=True):
                    if rid not in tasks:
                        tasks[rid] = bar.add_task(label, total=100)
                    bar.update(tasks[rid], description=label, completed=pct)
            if not any(active for _, _, active in shown):
                return
            time.sleep(POLL_SECONDS)


def _wait_line(c: Context, run_id: int) -> tuple[str, int, bool]:
    """(label, percent, still active) of one run, as its recording's progress says."""
    run = c.repos.runs.require(run_id)
    rec = c.repos.recordings.require(run.recording_id)
    running = [
        s.name for s in c.repos.stages.list(run_id=run.id) if s.status == StageStatus.RUNNING.value
    ]
    doing = running[0] if running else run.status
    return f"recording {rec.id}: {doing}", rec.progress, run.status == RunStatus.ACTIVE.value


def _bar(state: AppState, *, transient: bool = False) -> Progress | None:
    """A progress bar on a terminal; nothing (and parseable output) without one. A
    `transient` one is gone once done (--wait's report lines then stand alone)."""
    if state.output.err.is_terminal and not state.quiet and not state.as_json:
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=state.output.err,
            transient=transient,
        )
    return None


def _report(
    state: AppState,
    rows: list[dict[str, Any]],
    *,
    followed: bool,
    sender: _Sender | None = None,
) -> None:
    if followed and (sender is None or sender.failure is None):
        with state.context() as c:
            for row in rows:
                if row["run_id"]:
                    view = runs.run_view(c, c.repos.runs.require(row["run_id"]))
                    row["status"], row["error"] = view["status"], view["error"]
                    if view["exit_code"] is not None:
                        row["exit_code"] = view["exit_code"]
                    row["stages"] = view["stages"]
                    # Left waiting (a quota's reset, a batch job): leapd goes on with it.
                    row["waiting"] = next(
                        (f"{s['name']}: {s['waiting']}" for s in view["stages"] if s["waiting"]),
                        None,
                    )

    def failure(r: dict[str, Any]) -> bool:
        if r["run_id"] is None:
            return not r.get("skipped")  # a skip (already done) is no failure
        return r.get("status") == RunStatus.FAILED.value

    all_failed = all(failure(r) for r in rows)
    if state.as_json:
        state.output.json(rows)
    elif not (all_failed and len(rows) == 1):  # a lone failure is said once, as the error
        for row in rows:
            if row.get("skipped"):
                state.output.message(f"recording {row['recording_id']}: skipped, {row['skipped']}")
            elif row["run_id"] is None:
                state.output.warning(f"recording {row['recording_id']}: {row['error']}")
            elif row.get("sent") is False:
                continue  # said once, in the error below
            elif row.get("waiting"):
                if len(rows) == 1 and _over_quota(row):
                    continue  # said once, as the error below
                state.output.warning(
                    f"recording {row['recording_id']}: run {row['run_id']} waits, "
                    f"{row['waiting']}; leapd goes on with it then"
                )
            else:
                verb = row.get("status", "queued")
                state.output.message(
                    f"recording {row['recording_id']}: run {row['run_id']} "
                    f"{verb}" + (f" ({row['error']})" if row.get("error") else "")
                )
    unsent = [r for r in rows if r.get("sent") is False]
    if sender is not None and sender.failure is not None and unsent:
        if len(unsent) == 1:
            saved = f"run {unsent[0]['run_id']} of recording {unsent[0]['recording_id']} is"
        else:
            saved = (
                "the runs of recordings "
                + ", ".join(str(r["recording_id"]) for r in unsent)
                + " are"
            )
        # True either way: the stages wait as queued rows, which leapd's reconciler re-sends.
        raise QueueUnavailable(
            f"{sender.failure.message.rstrip('.')}. {saved.capitalize()} saved and will start "
            "once leapd reaches the queue"
        )
    failed = [r for r in rows if failure(r)]
    over = [r for r in rows if _over_quota(r)]
    if over and not failed:
        # Run here with --now and stopped by a quota (docs/quotas.md): exit 4, naming it.
        raise QuotaExceeded(
            over[0]["waiting"]
            if len(over) == 1
            else f"{len(over)} run(s) wait for a quota's reset: {over[0]['waiting']}"
        )
    if not failed:
        return
    if len(failed) == len(rows):
        first = failed[0]
        err = LeapError(_one_error(first, len(rows)) if first["run_id"] is None else first["error"])
        err.exit_code = first.get("exit_code", 1)
        raise err
    raise PartialFailure(f"{len(failed)} of {len(rows)} recording(s) did not process")


def _over_quota(row: dict[str, Any]) -> bool:
    """A run left waiting for a quota's reset (services/metering.py's refusal)."""
    return str(row.get("waiting") or "").split(": ", 1)[-1].startswith("quota ")


def retry(
    ctx: typer.Context,
    ids: Sel.Ids = None,
    ids_from: Sel.IdsFrom = None,
    stage: Annotated[
        str | None, typer.Option("--stage", help="Start again from this stage.")
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Every failed recording.")] = False,
    since: Annotated[str | None, typer.Option("--since", help="With --failed: e.g. 7d.")] = None,
    now: Annotated[bool, typer.Option("--now", help="Run here, in the foreground.")] = False,
) -> None:
    """Run a failed recording again from its failed stage (or --stage S), keeping the rest."""
    state = state_of(ctx)
    given = Sel.choose(ids, ids_from)
    if given is not None and failed:
        raise UsageError("give recording ids or --failed, not both")
    if given is None and not failed:
        raise UsageError("give a recording id, or --failed")
    missing: list[dict[str, Any]] = []
    if given is not None:
        targets, missing = _split(state, given)
    else:
        start = F.day_start(F.parse_date(since, option="--since")) if since else None
        with state.context() as c:
            targets = [r.id for r in runs.failed_since(c, start)]
    everything = given if given is not None else targets
    if not everything:
        _nothing(state, "selected" if given is not None else "failed")
        return
    runtime = state.runtime()
    sender: _Sender | None = None
    if now:
        runtime.enqueue = lambda *_: None  # stages run below, not through the daemon
    else:
        sender = _Sender(None).install(runtime)
    rows: list[dict[str, Any]] = []
    first_stages: list[int] = []
    for rid in targets:
        try:
            with state.context() as c:
                run = runs.retry(c, rid, stage)
                first = c.repos.stages.next_queued(run.id)
                row = {"recording_id": rid, "run_id": run.id, "error": None}
            rows.append(row)
            if first is not None:
                first_stages.append(first.id)
            if sender is not None and sender.failure is not None:
                row["sent"] = False
        except LeapError as exc:
            rows.append(
                {
                    "recording_id": rid,
                    "run_id": None,
                    "error": exc.message,
                    "exit_code": exc.exit_code,
                }
            )
    rows = _in_order(
        everything, rows + [{k: v for k, v in m.items() if k != "stages"} for m in missing]
    )
    _audit_bulk(state, "retry", everything, rows)
    if now and first_stages:
        _follow_now(state, runtime, first_stages)
    elif not now:
        queued = [r["recording_id"] for r in rows if r["run_id"] and r.get("sent") is not False]
        _warn_without_daemon(state, queued, len(queued), "retry")
    _report(state, rows, followed=now, sender=sender)


def cancel(ctx: typer.Context, ids: Sel.Ids = None, ids_from: Sel.IdsFrom = None) -> None:
    """Stop a recording's run; a running stage stops at its next heartbeat."""
    state = state_of(ctx)
    given = Sel.choose(ids, ids_from)
    if given is None:
        raise UsageError("give recording ids (or --ids-from FILE)")
    if not given:
        _nothing(state, "selected")
        return
    targets, missing = _split(state, given)
    rows: list[dict[str, Any]] = []
    for rid in targets:
        try:
            with state.context() as c:
                run = runs.cancel(c, rid)
            rows.append(
                {"recording_id": rid, "run_id": run.id, "status": "cancelled", "error": None}
            )
        except LeapError as exc:
            rows.append(
                {
                    "recording_id": rid,
                    "run_id": None,
                    "error": exc.message,
                    "exit_code": exc.exit_code,
                }
            )
    rows = _in_order(given, rows + [{k: v for k, v in m.items() if k != "stages"} for m in missing])
    if len(given) == 1:  # one recording: one line, or its own error and exit code
        row = rows[0]
        if row["run_id"] is None:
            err = LeapError(row["error"])
            err.exit_code = row["exit_code"]
            raise err
        state.output.done(
            {"recording_id": row["recording_id"], "run_id": row["run_id"], "status": "cancelled"},
            f"recording {row['recording_id']}: run {row['run_id']} cancelled",
        )
        return
    _audit_bulk(state, "cancel", given, rows)
    _report(state, rows, followed=False)


def status(
    ctx: typer.Context,
    recording_id: Annotated[
        int | None, typer.Argument(parser=F.parse_recording_id, help="One recording.")
    ] = None,
    daemon: Annotated[
        bool, typer.Option("--daemon", help="Is leapd alive? Every leapd on every host.")
    ] = False,
) -> None:
    """Runs, stages and progress (of one recording, or everything in progress)."""
    state = state_of(ctx)
    if daemon:
        with state.context(system=True) as c:
            beat = system.heartbeat(c)
            daemons = system.daemons(c, state.settings.worker.heartbeat_seconds)
        shown: dict[str, Any] = beat or {"heartbeat": None}
        metrics = state.settings.metrics
        if not metrics.enabled:
            if state.as_json:
                state.output.json({**shown, "daemons": daemons})
                return
            state.output.record(shown, title="leapd (the queue's heartbeat)")
            _print_daemons(state, daemons)
            return
        # leapd serves /healthz too: ask it whether its database and queue answer.
        from leap.services.status_report import probe_health

        probe = probe_health(metrics.host, metrics.port)
        if state.as_json:
            state.output.json({**shown, "daemons": daemons, "healthz": probe.health})
        else:
            state.output.record(shown, title="leapd (the queue's heartbeat)")
            _print_daemons(state, daemons)
            if probe.health is not None:
                state.output.record(probe.health, title=probe.url)
        if probe.problem:
            raise LeapError(probe.problem)
        return
    with state.context() as c:
        if recording_id is not None:
            rec = c.repos.recordings.require(recording_id)
            data = {
                "recording_id": rec.id,
                "status": rec.status,
                "progress": rec.progress,
                "error": rec.error,
                "runs": [runs.run_view(c, r) for r in c.repos.runs.list(recording_id=rec.id)],
            }
            state.output.json(data) if state.as_json else _print_runs(state, data)
            return
        active = [runs.run_view(c, r) for r in c.repos.runs.list(status=RunStatus.ACTIVE.value)]
    if state.as_json:
        state.output.json(active)
        return
    rows = [
        {
            "run": r["run_id"],
            "recording": r["recording_id"],
            "stages": " ".join(f"{s['name']}:{s['status']}" for s in r["stages"]),
        }
        for r in active
    ]
    state.output.table(rows, ["run", "recording", "stages"], title=f"{len(rows)} active run(s)")


def _print_daemons(state: AppState, daemons: list[dict[str, Any]]) -> None:
    rows = [
        {
            "host": d.get("host"),
            "pid": d.get("pid"),
            "state": "alive" if d["alive"] else f"silent {d['seconds_since_beat']:.0f}s",
            "role": d.get("role"),
            "queues": ",".join(d.get("queues") or []) or "-",
            "workers": d.get("workers"),
            "scheduler": "yes" if d.get("scheduler") else "",
        }
        for d in daemons
    ]
    alive = sum(1 for d in daemons if d["alive"])
    state.output.table(
        rows,
        ["host", "pid", "state", "role", "queues", "workers", "scheduler"],
        title=f"{alive} leapd alive",
    )


# Six columns in 80 cells: the error, which may be a provider's long answer, goes under the
# table; times to the minute (UTC), and how long the stage took rather than when it ended.
STAGE_COLUMNS = ["name", "status", "progress", "tries", "started", "took"]


def _print_runs(state: AppState, data: dict[str, Any]) -> None:
    """A table per run, and under it each stage's error as a wrapped paragraph: in a cell,
    a provider's long answer made the table fifty rows high."""
    state.output.message(f"recording {data['recording_id']}: {data['status']} {data['progress']} %")
    shown = 0
    for run in data["runs"]:
        rows = [_stage_row(s) for s in run["stages"]]
        state.output.table(rows, STAGE_COLUMNS, title=f"run {run['run_id']} ({run['status']})")
        for stage in run["stages"]:
            if stage["error"]:
                state.output.paragraph(f"{stage['name']}:", stage["error"])
                shown += 1
            if stage.get("waiting"):
                state.output.paragraph(f"{stage['name']} waits:", stage["waiting"])
    if data["error"] and not shown:  # e.g. its run was deleted; the recording keeps why
        state.output.paragraph("error:", data["error"])


def _stage_row(stage: dict[str, Any]) -> dict[str, Any]:
    # A stage that ended without finishing says so instead of a percentage (views.stage_view).
    pct = stage["progress"]
    started, ended = stage["started_at"], stage["finished_at"]
    return {
        "name": stage["name"],
        "status": stage["status"],
        "progress": stage["status"] if pct is None else f"{pct} %",
        "tries": stage["attempts"],
        "started": started[:16].replace("T", " ") if started else None,
        "took": _took(started, ended) if started and ended else None,
    }


def _took(started: str, ended: str) -> str:
    seconds = max(0, round((_instant(ended) - _instant(started)).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} m {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} m"


def _instant(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))
