"""`leap source ...`: Zoom accounts and local folders that recordings come from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from leap.cli._run import state_of
from leap.context import Context
from leap.db.models import InputSource
from leap.services import sources
from leap.views import source_view

app = typer.Typer(help="Input sources (Zoom, local folders).", no_args_is_help=True)
add_app = typer.Typer(help="Add a source.", no_args_is_help=True)
app.add_typer(add_app, name="add")

COLUMNS = [
    "name",
    "kind",
    "enabled",
    "credential",
    "zoom_user",
    "path",
    "recordings",
    "last_synced_at",
    "last_sync_error",
]


def _view(c: Context, src: InputSource) -> dict[str, object]:
    cred = c.repos.credentials.get(src.credential_id) if src.credential_id else None
    return source_view(src, cred.name if cred else None, c.repos.recordings.count(source_id=src.id))


@add_app.command("zoom")
def add_zoom(
    ctx: typer.Context,
    name: str,
    credential: Annotated[
        str, typer.Option("--credential", help="A zoom-s2s or zoom-oauth credential.")
    ],
    zoom_user: Annotated[
        str, typer.Option("--zoom-user", help="'me' or the Zoom user's e-mail.")
    ] = "me",
) -> None:
    """Add a Zoom cloud-recordings source."""
    state = state_of(ctx)
    with state.context() as c:
        view = _view(c, sources.add_zoom(c, name, credential, zoom_user))
    state.output.done(view, f"added zoom source '{name}'")


@add_app.command("local")
def add_local(ctx: typer.Context, name: str, path: str) -> None:
    """Add a local folder of video/audio files (searched recursively)."""
    state = state_of(ctx)
    # A relative path means the shell's working directory, where the user typed it; leapd
    # reads it later from elsewhere, so it is stored absolute.
    given = str(Path(path).expanduser().absolute()) if path.strip() else path
    with state.context() as c:
        view = _view(c, sources.add_local(c, name, given))
    state.output.done(view, f"added local source '{name}'")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """List sources."""
    state = state_of(ctx)
    with state.context() as c:
        rows = [_view(c, s) for s in sources.list_sources(c)]
    state.output.table(rows, COLUMNS, title="Sources")


@app.command("show")
def show(ctx: typer.Context, name: str) -> None:
    """Show a source and its sync state."""
    state = state_of(ctx)
    with state.context() as c:
        view = _view(c, sources.get(c, name))
    state.output.record(view)


@app.command("enable")
def enable(ctx: typer.Context, name: str) -> None:
    """Include a source in `leap sync`."""
    _enabled(ctx, name, True)


@app.command("disable")
def disable(ctx: typer.Context, name: str) -> None:
    """Leave a source out of `leap sync` (its recordings stay)."""
    _enabled(ctx, name, False)


def _enabled(ctx: typer.Context, name: str, enabled: bool) -> None:
    state = state_of(ctx)
    with state.context() as c:
        view = _view(c, sources.set_enabled(c, name, enabled))
    state.output.done(view, f"source '{name}' {'enabled' if enabled else 'disabled'}")


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Also delete its recordings.")] = False,
) -> None:
    """Remove a source (with its recordings: needs --yes when there are any)."""
    state = state_of(ctx)
    with state.context() as c:
        count = sources.remove(c, name, force=yes)
    state.output.done(
        {"removed": name, "recordings_deleted": count},
        f"removed source '{name}' and {count} recording(s)",
    )
