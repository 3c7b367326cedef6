"""The `leap` command: global options, sub-apps, and the one place errors become exit codes."""

from __future__ import annotations

import logging
import sys
from types import MappingProxyType
from typing import Annotated, Final

import typer

from leap import __version__
from leap.cli._lazy import LazyCommand, LazyGroup
from leap.cli._run import AppState, state_of
from leap.errors import LeapError
from leap.logs import setup_logging

# Each command's module is imported only when that command runs (leap.cli._lazy); the line of
# help is what `leap --help` lists.
LazyGroup.lazy_commands = {
    "init": LazyCommand(
        "leap.cli.install_cmd",
        "init",
        "Write a commented config (if none), create the data dir, database and first admin.",
    ),
    "doctor": LazyCommand(
        "leap.cli.install_cmd",
        "doctor",
        "Check the install: config, database, key, queue, leapd, ffmpeg, local transcription.",
    ),
    "whoami": LazyCommand("leap.cli.install_cmd", "whoami", "Show the user LEAP acts as."),
    "sync": LazyCommand(
        "leap.cli.sync_cmd",
        "sync",
        "Sync recordings from sources: new ones are added, matched and blank-checked.",
    ),
    "process": LazyCommand(
        "leap.cli.pipeline_cmd",
        "process",
        "Process recordings: queue a pipeline run for each (returns at once) or run it --now.",
    ),
    # The stage verbs: `leap process --stages S` as one word each (help: STAGE_HELP);
    # `leap topics SELECTION` is the topics group's default command (cli/text_cmd.py).
    "download": LazyCommand(
        "leap.cli.pipeline_cmd",
        "download",
        "Download recordings from their source (the pipeline's first stage).",
    ),
    "trim": LazyCommand(
        "leap.cli.pipeline_cmd",
        "trim",
        "Trim recordings: cut silence at the start and end (needs the download).",
    ),
    "transcribe": LazyCommand(
        "leap.cli.pipeline_cmd",
        "transcribe",
        "Transcribe recordings (needs the download, and the trim if configured).",
    ),
    "subtitles": LazyCommand(
        "leap.cli.pipeline_cmd", "subtitles", "Write SRT and WebVTT subtitles from transcripts."
    ),
    "upload": LazyCommand(
        "leap.cli.pipeline_cmd",
        "upload",
        "Publish recordings to their template's presets (YouTube, VK, a folder).",
    ),
    "retry": LazyCommand(
        "leap.cli.pipeline_cmd",
        "retry",
        "Run a failed recording again from its failed stage (or --stage S), keeping the rest.",
    ),
    "cancel": LazyCommand(
        "leap.cli.pipeline_cmd",
        "cancel",
        "Stop a recording's run; a running stage stops at its next heartbeat.",
    ),
    "approve": LazyCommand(
        "leap.cli.approve_cmd",
        "approve",
        "Approve recordings held for approval: publish what awaits it on each platform.",
    ),
    "status": LazyCommand(
        "leap.cli.pipeline_cmd",
        "status",
        "Runs, stages and progress (of one recording, or everything in progress).",
    ),
    "recordings": LazyCommand("leap.cli.recordings_cmd", "app", "Recordings."),
    "transcript": LazyCommand("leap.cli.text_cmd", "transcript_app", "Transcripts."),
    "topics": LazyCommand(
        "leap.cli.text_cmd",
        "topics_app",
        "Themes, topics and chapters: find them (SELECTION), or show one recording's.",
    ),
    "source": LazyCommand("leap.cli.source_cmd", "app", "Input sources (Zoom, local folders)."),
    "template": LazyCommand(
        "leap.cli.template_cmd", "app", "Templates: matching rules, processing and metadata."
    ),
    "preset": LazyCommand(
        "leap.cli.preset_cmd", "app", "Output presets: where and how recordings are published."
    ),
    "automation": LazyCommand(
        "leap.cli.automation_cmd", "app", "Scheduled jobs: sync and process on a schedule."
    ),
    "notify": LazyCommand(
        "leap.cli.notify_cmd", "app", "Notification targets: webhooks and e-mail."
    ),
    "oauth": LazyCommand(
        "leap.cli.oauth_cmd",
        "app",
        "Connect a YouTube, VK or Zoom account through its consent page.",
    ),
    "credentials": LazyCommand(
        "leap.cli.credentials_cmd", "app", "Credentials for Zoom, YouTube, VK and API keys."
    ),
    "quota": LazyCommand("leap.cli.quota_cmd", "app", "Quotas."),
    "plan": LazyCommand("leap.cli.plan_cmd", "app", "Plans and their limits."),
    "usage": LazyCommand(
        "leap.cli.usage_cmd",
        "usage",
        "What you used in a quota period: per metered kind, per template or per day.",
    ),
    "admin": LazyCommand("leap.cli.admin_cmd", "app", "Administration: install-wide statistics."),
    "user": LazyCommand("leap.cli.user_cmd", "app", "Manage users."),
    "secrets": LazyCommand(
        "leap.cli.secrets_cmd", "app", "The master key that encrypts credentials."
    ),
    "db": LazyCommand("leap.cli.db_cmd", "app", "Database schema."),
    "audit": LazyCommand("leap.cli.audit_cmd", "app", "The audit trail: who did what, and when."),
    "zoom": LazyCommand(
        "leap.cli.zoom_cmd", "app", "Zoom cloud recordings: send published ones to Zoom's trash."
    ),
}

app = typer.Typer(
    name="leap",
    cls=LazyGroup,
    help="LEAP: turn meeting and lecture recordings into published videos.",
    no_args_is_help=True,
    # Tokens sit in locals; a pretty traceback would print them.
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


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
    if not debug:
        for handler in logging.getLogger().handlers:
            handler.addFilter(SaidByTheCommand())


# Logger -> the level from which its records are already the command's own output.
_SAID: Final = MappingProxyType(
    {
        "leap.services.sync": logging.WARNING,
        "leap.providers.zoom": logging.WARNING,
        "leap.pipeline.publish": logging.ERROR,
        "leap.services.zoom_trash": logging.WARNING,
    }
)


class SaidByTheCommand(logging.Filter):
    """Drops the log records a command's own output already says, so an error or a warning
    reaches the terminal once, as the command's `error:` or `warning:` line (or a row).

    The records keep their level: leapd's log has no other place to say them. Only `leap`
    drops them, and only without --debug. Sync puts every failure and skip of a source in
    its result (and Zoom's skipped meetings reach it), a publish target's failure is the
    stage's error, and `zoom trash` prints each refusal as its warning line."""

    def filter(self, record: logging.LogRecord) -> bool:
        level = _SAID.get(record.name)
        return level is None or record.levelno < level


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
