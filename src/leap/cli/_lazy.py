"""A command group whose sub-commands are imported when they run, not when `leap` starts.

Every `leap` invocation used to import the whole application (SQLAlchemy, pydantic, httpx, the
pipeline) before parsing its arguments: a second of start-up for `leap --help`. Here a command
is a name, the module and attribute that define it, and its one-line help; its module is
imported only when that command is resolved. Listing commands (the root `--help`) shows the
stored one-line help instead of importing anything; tests/test_cli_startup.py checks that the
stored line is still each command's own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any, ClassVar

import typer

# Typer 0.29 carries its own copy of click; its commands, contexts and errors are these classes
# (the `click` package's would not match in isinstance checks or except clauses).
from typer import _click as click
from typer._click.exceptions import UsageError
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class LazyCommand:
    """`attr` of `module` is a Typer sub-app (a group) or a command function."""

    module: str
    attr: str
    help: str

    def load(self, name: str) -> click.Command:
        target: Any = getattr(importlib.import_module(self.module), self.attr)
        command: click.Command
        if isinstance(target, typer.Typer):
            command = typer.main.get_group(target)
            command.name = name
        else:
            holder = typer.Typer()
            holder.command(name)(target)
            command = typer.main.get_group(holder).commands[name]
        quiet_flags(command)
        return command


def quiet_flags(command: click.Command) -> None:
    """No `<bool>` after an on/off flag in help (Typer 0.29 shows one): a flag takes no value."""
    help_option = command.get_help_option(click.Context(command))  # built once, then cached
    for param in [*command.params, help_option]:
        if param is not None and getattr(param, "is_flag", False):
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        quiet_flags(sub)


class LazyGroup(TyperGroup):
    """The root group: `LAZY_COMMANDS` (set by leap.cli.app) are loaded on first use."""

    lazy_commands: ClassVar[dict[str, LazyCommand]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._listing = False
        quiet_flags(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        own = super().list_commands(ctx)
        return own + [name for name in self.lazy_commands if name not in self.commands]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        loaded = self.commands.get(cmd_name)
        if loaded is not None:
            return loaded
        spec = self.lazy_commands.get(cmd_name)
        if spec is None:
            return None
        if self._listing:
            # Only its line in the listing is wanted: do not import the command for that.
            return TyperCommand(name=cmd_name, help=spec.help, short_help=spec.help)
        command = spec.load(cmd_name)
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return self._click_resolve_command(ctx, args)
        except UsageError as exc:
            # Typer suggests among loaded commands only; offer every command's name.
            matches = get_close_matches(args[0], self.list_commands(ctx)) if args else []
            if matches:
                exc.message = (
                    f"{exc.message.rstrip('.')}. Did you mean {', '.join(map(repr, matches))}?"
                )
            raise


def all_commands(group: TyperGroup) -> dict[str, click.Command]:
    """Every sub-command of `group`, loaded (for tests and generated docs)."""
    ctx = click.Context(group)
    found: dict[str, click.Command] = {}
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is not None:
            found[name] = command
    return found
