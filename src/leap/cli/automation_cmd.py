"""`leap automation ...`: scheduled jobs that sync and process without a person
(docs/automation.md). leapd fires them; `run NAME` fires one here and now."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from leap.cli import _files
from leap.cli._run import state_of
from leap.errors import LeapError, PartialFailure
from leap.services import automation
from leap.specs.automation import JobSpec, parse_job

app = typer.Typer(
    help="Scheduled jobs: sync and process on a schedule.",
    no_args_is_help=True,
)
COLUMNS = ["name", "enabled", "schedule", "dry_run", "next_run_at", "last_run_at"]
HISTORY = ["id", "job", "planned_at", "trigger", "status", "dry_run", "finished_at", "error"]
FileOpt = Annotated[Path, typer.Option("--file", "-f", help="Job TOML file.")]


def read_spec(path: Path) -> JobSpec:
    data = _files.read_document(path, fmt="toml")
    with _files.one_line_errors():
        try:
            return parse_job(data)
        except LeapError as exc:
            exc.message = f"{path.name}: {exc.message}"
            exc.args = (exc.message,)
            raise


@app.command("add")
def add(ctx: typer.Context, file: FileOpt) -> None:
    """Add a job from a TOML file (schedule, action, dry_run)."""
    state = state_of(ctx)
    spec = read_spec(file)
    with state.context() as c:
        view = automation.job_view(automation.add(c, spec))
    state.output.done(view, f"added automation job '{spec.name}' (next: {view['next_run_at']})")


@app.command("edit")
def edit(ctx: typer.Context, name: str, file: FileOpt) -> None:
    """Replace a job with the file's version."""
    state = state_of(ctx)
    spec = read_spec(file)
    with state.context() as c:
        view = automation.job_view(automation.edit(c, name, spec))
    state.output.done(view, f"updated automation job '{name}' (next: {view['next_run_at']})")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Jobs with their schedule and next firing."""
    state = state_of(ctx)
    with state.context() as c:
        rows = [automation.job_view(j) for j in c.repos.automations.list()]
    state.output.table(rows, COLUMNS, title="Automation jobs")


@app.command("show")
def show(ctx: typer.Context, name: str) -> None:
    """One job."""
    state = state_of(ctx)
    with state.context() as c:
        view = automation.job_view(c.repos.automations.require_name(name))
    state.output.record(view)


@app.command("remove")
def remove(ctx: typer.Context, name: str) -> None:
    """Delete a job (and its history)."""
    state = state_of(ctx)
    with state.context() as c:
        automation.remove(c, name)
    state.output.done({"removed": name}, f"removed automation job '{name}'")


@app.command("enable")
def enable(ctx: typer.Context, name: str) -> None:
    """Fire it on schedule again (from now on: no catch-up of the paused time)."""
    _set(ctx, name, True)


@app.command("disable")
def disable(ctx: typer.Context, name: str) -> None:
    """Stop firing it; its history stays."""
    _set(ctx, name, False)


def _set(ctx: typer.Context, name: str, enabled: bool) -> None:
    state = state_of(ctx)
    with state.context() as c:
        view = automation.job_view(automation.set_enabled(c, name, enabled))
    verb = "enabled" if enabled else "disabled"
    state.output.done(view, f"{verb} automation job '{name}'")


@app.command("run")
def run(
    ctx: typer.Context,
    name: str,
    dry_run: Annotated[
        bool | None,
        typer.Option("--dry-run/--no-dry-run", help="Record what it would do; change nothing."),
    ] = None,
) -> None:
    """Fire the job here and now; recorded in its history like a scheduled firing."""
    state = state_of(ctx)
    result = automation.run_now(state.runtime(), state.scope(), name, dry_run=dry_run)
    if state.as_json:
        state.output.json(result)
    else:
        _say(state, result)
    if result.get("error"):
        raise PartialFailure(f"automation job '{name}': {result['error']}")


def _say(state: Any, result: dict[str, Any]) -> None:
    synced = result.get("synced") or []
    new = sum(int(s.get("new", 0)) for s in synced)
    if "would_process" in result:
        ids = result["would_process"]
        what = f"would process {len(ids)} recording(s) {ids}" if ids else "would process none"
    else:
        ids = result.get("processed") or []
        what = f"queued {len(ids)} recording(s) {ids}" if ids else "queued none"
    state.output.message(
        f"job '{result['job']}' (firing {result['run_id']}): synced {len(synced)} source(s), "
        f"{new} new; {what}"
    )
    for rid, why in (result.get("refused") or {}).items():
        state.output.warning(f"recording {rid}: {why}")


@app.command("history")
def history(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this job.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="How many firings.")] = 50,
) -> None:
    """Firings, newest first: planned time, what they did, errors."""
    state = state_of(ctx)
    with state.context() as c:
        rows = [automation.run_view(j, r) for j, r in automation.history(c, name, limit)]
    state.output.table(rows, HISTORY, title="Automation history", shorten="error")
