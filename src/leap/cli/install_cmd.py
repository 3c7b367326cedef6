"""`leap init`, `leap doctor` and `leap whoami`: the install and who acts on it."""

from __future__ import annotations

from typing import Annotated

import typer

from leap.cli._run import state_of
from leap.errors import CredentialDead, LeapError
from leap.services import install, users
from leap.services.doctor import run_checks
from leap.views import user_view


def init(
    ctx: typer.Context,
    admin: Annotated[str, typer.Option(help="Name of the first admin user.")] = "admin",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask anything.")] = False,
) -> None:
    """Write a commented config (if none), create the data dir, database and first admin."""
    state = state_of(ctx)
    result = install.init_install(state.settings, state.config_path(), admin)
    out = state.output
    if out.as_json:
        out.json(
            {
                "config": str(result.config_path),
                "config_written": result.config_written,
                "data_dir": str(result.data_dir),
                "revision": result.revision,
                "admin": result.admin,
                "key": result.key_origin,
            }
        )
        return
    if result.config_written:
        out.message(f"wrote {result.config_path}")
    out.message(f"data in {result.data_dir}; database at revision {result.revision}")
    if result.admin:
        out.message(f"created admin user '{result.admin}'")
    else:
        out.message("users already exist; none created")


def doctor(
    ctx: typer.Context,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep",
            help="Also run the tools (slower) and check the database against the disk, the "
            "queue and itself (docs/operations.md).",
        ),
    ] = False,
) -> None:
    """Check the install: config, database, key, queue, leapd, ffmpeg, local transcription.

    With --deep, also its consistency (artifacts, temporary files, uploads, leases, queued
    stages, runs; exit 1 when one fails). Then each credential of the acting user, one cheap
    call each (exit 5: one is dead)."""
    state = state_of(ctx)
    checks = run_checks(state.settings, deep=deep, user=state.user)
    rows: list[dict[str, object]] = []
    for c in checks:
        row: dict[str, object] = {"check": c.name, "ok": c.ok, "detail": c.detail}
        if c.state is not None:
            row.update(state=c.state, days_left=c.days_left)
        rows.append(row)
    state.output.table(rows, ["check", "ok", "detail"], title="leap doctor")
    creds = [c for c in checks if c.state is not None]
    # leapd not running and no local whisper are facts, not a broken install.
    essential = [
        c for c in checks if c.state is None and c.name not in ("leapd", "local transcription")
    ]
    dead = [c.name.removeprefix("credential ") for c in creds if c.state == "dead"]
    if dead:
        # 5 before the rest: the one failure a script can act on by re-authenticating.
        raise CredentialDead(f"credentials to re-authenticate: {', '.join(dead)}")
    if not all(c.ok for c in essential):
        raise LeapError("some checks failed")
    attention = [c.name.removeprefix("credential ") for c in creds if not c.ok]
    if attention:
        raise LeapError(f"credentials needing attention: {', '.join(attention)}")


def whoami(ctx: typer.Context) -> None:
    """Show the user LEAP acts as."""
    state = state_of(ctx)
    with state.context() as c:
        me = users.current_user(c)
        view = user_view(me)
    state.output.record(view)
