"""`leap` starts without importing the application: commands load when they run."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import typer

from leap.cli._lazy import LazyGroup, all_commands
from leap.cli.app import app

HEAVY = ("sqlalchemy", "pydantic", "httpx", "huey", "alembic", "leap.context", "leap.pipeline")


# `leap ARGS` in a fresh interpreter that reports, as it exits, every module it had imported.
PROBE = """
import atexit, sys
def report():
    loaded = sorted(name for name, module in sys.modules.items() if module is not None)
    sys.stderr.write("MODULES " + " ".join(loaded) + "\\n")
atexit.register(report)
from leap.cli.app import main
main(sys.argv[1:])
"""


def imported_by(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    listing = [line for line in proc.stderr.splitlines() if line.startswith("MODULES ")]
    assert listing, proc.stderr[-2000:]
    return set(listing[-1].split()[1:])


@pytest.mark.parametrize("args", [("--help",), ("--version",)])
def test_help_and_version_import_nothing_heavy(args: tuple[str, ...]) -> None:
    modules = imported_by(*args)
    assert "typer" in modules  # the parse really ran
    heavy = sorted(m for m in modules if m.startswith(HEAVY))
    assert heavy == [], heavy


def test_a_group_help_imports_only_its_own_command() -> None:
    modules = imported_by("secrets", "--help")
    assert "leap.cli.secrets_cmd" in modules
    assert "leap.cli.recordings_cmd" not in modules and "leap.pipeline.runner" not in modules


@pytest.mark.parametrize("name", sorted(LazyGroup.lazy_commands))
def test_the_listed_help_is_the_commands_own(name: str) -> None:
    spec = LazyGroup.lazy_commands[name]
    command = spec.load(name)
    assert command.get_short_help_str(limit=500) == spec.help


def test_every_command_is_listed_and_loads() -> None:
    root = typer.main.get_command(app)
    assert isinstance(root, LazyGroup)
    loaded = all_commands(root)
    assert set(loaded) == set(LazyGroup.lazy_commands)
    assert all(cmd.name == name for name, cmd in loaded.items())


def test_flags_show_no_value_type(cli: Any) -> None:
    res = cli("recordings", "list", "--help")
    assert "<bool>" not in res.stdout
    assert "--failed" in res.stdout


def test_a_mistyped_command_suggests_the_right_one() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "leap.cli", "recordz"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    assert "Did you mean 'recordings'?" in proc.stderr
