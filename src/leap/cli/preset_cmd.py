"""`leap preset ...`: output presets (platform, credential, metadata defaults)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from leap.cli import _files
from leap.cli._run import state_of
from leap.context import Context
from leap.db.models import OutputPreset
from leap.services import presets
from leap.specs.preset import PresetSpec, parse_preset
from leap.views import preset_view

app = typer.Typer(
    help="Output presets: where and how recordings are published.", no_args_is_help=True
)
COLUMNS = ["name", "platform", "credential", "metadata"]
FileOpt = Annotated[Path, typer.Option("--file", "-f", help="Preset TOML file.")]


def read_spec(path: Path) -> PresetSpec:
    text = _files.read_text(path)
    with _files.one_line_errors():
        return parse_preset(text, origin=path.name)


def _view(c: Context, p: OutputPreset) -> dict[str, Any]:
    cred = c.repos.credentials.get(p.credential_id) if p.credential_id else None
    return preset_view(p, cred.name if cred else None)


@app.command("add")
def add(ctx: typer.Context, file: FileOpt) -> None:
    """Add a preset from a TOML file."""
    state = state_of(ctx)
    spec = read_spec(file)
    with state.context() as c:
        view = _view(c, presets.add(c, spec))
    state.output.done(view, f"added {spec.platform} preset '{spec.name}'")


@app.command("edit")
def edit(ctx: typer.Context, name: str, file: FileOpt) -> None:
    """Replace a preset with the file's content."""
    state = state_of(ctx)
    spec = read_spec(file)
    with state.context() as c:
        view = _view(c, presets.edit(c, name, spec))
    state.output.done(view, f"updated preset '{spec.name}'")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List presets."""
    state = state_of(ctx)
    with state.context() as c:
        rows = [_view(c, p) for p in presets.list_presets(c)]
    state.output.table(rows, COLUMNS, title="Presets")


@app.command("show")
def show(ctx: typer.Context, name: str) -> None:
    """Show a preset."""
    state = state_of(ctx)
    with state.context() as c:
        view = _view(c, presets.get(c, name))
    state.output.record(view)


@app.command("remove")
def remove(ctx: typer.Context, name: str) -> None:
    """Delete a preset (refused while a template uses it)."""
    state = state_of(ctx)
    with state.context() as c:
        presets.remove(c, name)
    state.output.done({"removed": name}, f"removed preset '{name}'")
