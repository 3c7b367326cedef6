"""`leap template ...`: what recordings are. Files in TOML; first match wins, in order."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leap.cli import _files
from leap.cli._filters import parse_days
from leap.cli._run import state_of
from leap.context import Context
from leap.db.models import Template, TemplatePreset
from leap.errors import UsageError
from leap.services import templates
from leap.specs.template import TemplateSpec, parse_template, to_toml
from leap.views import iso, template_view

app = typer.Typer(help="Templates: matching rules, processing and metadata.", no_args_is_help=True)

COLUMNS = ["order", "name", "enabled", "match", "presets", "recordings"]
FileOpt = Annotated[Path, typer.Option("--file", "-f", help="Template TOML file.")]


def read_spec(path: Path) -> TemplateSpec:
    text = _files.read_text(path)
    with _files.one_line_errors():
        return parse_template(text, origin=path.name)


def _view(c: Context, tpl: Template) -> dict[str, object]:
    links = c.repos.template_presets.list(template_id=tpl.id, order_by=(TemplatePreset.position,))
    names = {p.id: p.name for p in c.repos.presets.list()}
    return template_view(
        tpl, [names[x.preset_id] for x in links], c.repos.recordings.count(template_id=tpl.id)
    )


@app.command("add")
def add(ctx: typer.Context, file: FileOpt) -> None:
    """Add a template from a TOML file; unmapped recordings are matched again."""
    state = state_of(ctx)
    spec = read_spec(file)
    with state.context() as c:
        tpl, summary = templates.add(c, spec)
        view = _view(c, tpl)
    if state.as_json:
        state.output.json(view | {"rematched": summary.mapped})
    else:
        state.output.message(
            f"added template '{spec.name}'; {summary.mapped} of "
            f"{summary.examined} unmapped recording(s) now mapped"
        )


@app.command("edit")
def edit(ctx: typer.Context, name: str, file: FileOpt) -> None:
    """Replace a template with the file's content (it may rename it)."""
    state = state_of(ctx)
    spec = read_spec(file)
    with state.context() as c:
        tpl, summary = templates.edit(c, name, spec)
        view = _view(c, tpl)
    if state.as_json:
        state.output.json(view | {"rematched": summary.mapped})
    else:
        state.output.message(
            f"updated template '{spec.name}'; {summary.mapped} unmapped recording(s) now mapped"
        )


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List templates in evaluation order."""
    state = state_of(ctx)
    with state.context() as c:
        rows = [_view(c, t) for t in templates.list_templates(c)]
    state.output.table(rows, COLUMNS, title="Templates (first match wins)")


@app.command("show")
def show(ctx: typer.Context, name: str) -> None:
    """Show a template."""
    state = state_of(ctx)
    with state.context() as c:
        view = _view(c, templates.get(c, name))
    state.output.record(view)


@app.command("remove")
def remove(ctx: typer.Context, name: str) -> None:
    """Delete a template; its recordings become unmapped and keep their status."""
    state = state_of(ctx)
    with state.context() as c:
        count = templates.remove(c, name)
    state.output.done(
        {"removed": name, "unmapped": count},
        f"removed template '{name}'; {count} recording(s) unmapped",
    )


@app.command("export")
def export(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="One template (default: all).")] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Write NAME.toml files here instead of stdout.")
    ] = None,
) -> None:
    """Print templates as TOML (the same format `add --file` reads)."""
    state = state_of(ctx)
    with state.context() as c:
        rows = [templates.get(c, name)] if name else templates.list_templates(c)
        specs = [templates.to_spec(c, t) for t in rows]
    if directory:
        directory.mkdir(parents=True, exist_ok=True)
        for spec in specs:
            (directory / f"{spec.name}.toml").write_text(to_toml(spec), encoding="utf-8")
        state.output.message(f"wrote {len(specs)} template(s) to {directory}")
        return
    if state.as_json:
        state.output.json([s.model_dump() for s in specs])
        return
    typer.echo("\n# ---\n\n".join(to_toml(s) for s in specs), nl=False)


@app.command("reorder")
def reorder(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Templates in their new order (first wins).")],
) -> None:
    """Put the named templates first, in this order; the others follow as they were."""
    state = state_of(ctx)
    with state.context() as c:
        rows = [_view(c, t) for t in templates.reorder(c, names)]
    state.output.table(rows, COLUMNS, title="Templates (first match wins)")


@app.command("test")
def test(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="A saved template.")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="An unsaved template file.")
    ] = None,
    last: Annotated[
        str | None, typer.Option("--last", help="Only recordings of the last N days (90d).")
    ] = None,
) -> None:
    """Preview which existing recordings a template matches and why; changes nothing."""
    state = state_of(ctx)
    if (name is None) == (file is None):
        raise UsageError("give a template NAME or --file, not both")
    days = parse_days(last, option="--last") if last is not None else None
    with state.context() as c:
        spec = read_spec(file) if file else templates.to_spec(c, templates.get(c, name or ""))
        hits = templates.test(c, spec, days)
        rows = [
            {
                "id": h.recording.id,
                "start_time": iso(h.recording.start_time),
                "title": h.recording.title,
                "reason": h.reason,
                "wins": h.wins,
                "current": h.current,
                "winner": h.winner,
            }
            for h in hits
        ]
    state.output.table(
        rows,
        ["id", "start_time", "title", "reason", "wins", "current", "winner"],
        title=f"'{spec.name}' matches {len(rows)} recording(s)",
    )
