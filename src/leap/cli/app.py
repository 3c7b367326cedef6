"""The `leap` command: global options, sub-apps, and the one place errors become exit codes."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

from leap import __version__
from leap.cli import (
    credentials_cmd,
    db_cmd,
    pipeline_cmd,
    preset_cmd,
    quota_cmd,
    recordings_cmd,
    secrets_cmd,
    source_cmd,
    sync_cmd,
    template_cmd,
    text_cmd,
    user_cmd,
)
from leap.cli._run import AppState, state_of
from leap.errors import LeapError
from leap.logs import setup_logging
from leap.services import install, users
from leap.services.doctor import run_checks
from leap.views import user_view

app = typer.Typer(
    name="leap",
    help="LEAP: turn meeting and lecture recordings into published videos.",
    no_args_is_help=True,
    # Tokens sit in locals; a pretty traceback would print them.
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.add_typer(db_cmd.app, name="db")
app.add_typer(user_cmd.app, name="user")
app.add_typer(secrets_cmd.app, name="secrets")
app.add_typer(credentials_cmd.app, name="credentials")
app.add_typer(source_cmd.app, name="source")
app.add_typer(template_cmd.app, name="template")
app.add_typer(preset_cmd.app, name="preset")
app.add_typer(quota_cmd.app, name="quota")
app.add_typer(recordings_cmd.app, name="recordings")
app.command("sync")(sync_cmd.sync)
app.command("process")(pipeline_cmd.process)
app.command("retry")(pipeline_cmd.retry)
app.command("cancel")(pipeline_cmd.cancel)
app.command("status")(pipeline_cmd.status)
app.add_typer(text_cmd.transcript_app, name="transcript")
app.add_typer(text_cmd.topics_app, name="topics")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"leap {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        str | None, typer.Option("--config", help="Path to leap.toml (else LEAP_CONFIG).")
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", envvar="LEAP_USER", help="Act as this user (else the only one)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Tracebacks and debug logs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    state = state_of(ctx)
    state.config, state.user, state.as_json, state.debug, state.quiet = (
        config,
        user,
        as_json,
        debug,
        quiet,
    )
    state.output.as_json, state.output.quiet = as_json, quiet
    setup_logging("DEBUG" if debug else "WARNING", stderr=True)


@app.command()
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


@app.command()
def doctor(
    ctx: typer.Context,
    deep: Annotated[bool, typer.Option("--deep", help="Also run the tools (slower).")] = False,
) -> None:
    """Check the install: config, database, key, queue, leapd, ffmpeg, local transcription."""
    state = state_of(ctx)
    checks = run_checks(state.settings, deep=deep)
    rows = [{"check": c.name, "ok": c.ok, "detail": c.detail} for c in checks]
    state.output.table(rows, ["check", "ok", "detail"], title="leap doctor")
    # leapd not running and no local whisper are facts, not a broken install.
    essential = [c for c in checks if c.name not in ("leapd", "local transcription")]
    if not all(c.ok for c in essential):
        raise LeapError("some checks failed")


@app.command()
def whoami(ctx: typer.Context) -> None:
    """Show the user LEAP acts as."""
    state = state_of(ctx)
    with state.context() as c:
        me = users.current_user(c)
        view = user_view(me)
    state.output.record(view)


_GLOBAL_FLAGS = {"--json", "--debug", "--quiet", "-q"}
_GLOBAL_VALUED = {"--user", "--config"}


def hoist_globals(args: list[str]) -> list[str]:
    """Let global options stand anywhere (`leap whoami --json`), as operators type them."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0]
        if arg in _GLOBAL_FLAGS or (name in _GLOBAL_VALUED and "=" in arg):
            front.append(arg)
        elif arg in _GLOBAL_VALUED and i + 1 < len(args):
            front.extend(args[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the Typer app and map every failure to a documented exit code."""
    state = AppState()
    command = typer.main.get_command(app)
    args = hoist_globals(sys.argv[1:] if argv is None else argv)
    try:
        rc = command.main(args=args, prog_name="leap", obj=state, standalone_mode=False)
        code = rc if isinstance(rc, int) else 0
    except LeapError as exc:
        if state.debug:
            raise
        state.output.error(exc.message)
        code = exc.exit_code
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.TyperException as exc:  # Typer's own usage errors (bad option, missing arg)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            state.output.error(exc.message)
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        state.output.error("interrupted")
        code = 130
    except OSError as exc:
        # The machine, not a bug (a folder not writable, a disk full): the path and the
        # reason are what the user needs, as one line.
        if state.debug:
            raise
        where = f"{exc.filename}: " if exc.filename is not None else ""
        state.output.error(f"{where}{exc.strerror or exc}")
        code = 1
    except Exception as exc:  # a bug: one line unless --debug
        if state.debug:
            raise
        logging.getLogger("leap").debug("unexpected error", exc_info=True)
        state.output.error(f"internal error: {type(exc).__name__}: {exc} (run with --debug)")
        code = 1
    finally:
        state.close()
    sys.exit(code)
