"""`leap secrets rotate`: re-encrypt every credential with a new master key."""

from __future__ import annotations

import typer

from leap.cli._run import state_of
from leap.services import rotation

app = typer.Typer(help="The master key that encrypts credentials.", no_args_is_help=True)


@app.command("rotate")
def rotate(ctx: typer.Context) -> None:
    """Re-encrypt all credentials with a new key (admin only)."""
    state = state_of(ctx)
    state.scope()  # identity first: only an admin may rotate
    count, origin = rotation.rotate_master_key(state.runtime(), state.scope())
    if state.as_json:
        state.output.json({"rotated": count, "key": origin})
    else:
        state.output.message(f"re-encrypted {count} credential(s); key in {origin}")
