"""The docs are part of the product: every command has help and is in the README."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from leap.cli._lazy import all_commands
from leap.cli.app import app

ROOT = Path(__file__).resolve().parent.parent


def command_paths() -> list[tuple[str, Any]]:
    root = typer.main.get_command(app)
    found: list[tuple[str, Any]] = []

    def walk(cmd: Any, path: str) -> None:
        if hasattr(cmd, "list_commands"):
            for name, sub in all_commands(cmd).items():
                walk(sub, f"{path} {name}")
        else:
            found.append((path, cmd))

    walk(root, "leap")
    return found


def test_there_are_commands() -> None:
    assert len(command_paths()) >= 10


def test_every_command_has_help() -> None:
    missing = [p for p, cmd in command_paths() if not (cmd.help or "").strip()]
    assert not missing, f"commands without help: {missing}"


def test_every_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [p for p, _ in command_paths() if f"`{p}" not in readme]
    assert not missing, f"commands missing from README.md: {missing}"
    assert "`leapd" in readme


def test_readme_documents_every_exit_code() -> None:
    from leap import errors

    readme = (ROOT / "README.md").read_text()
    codes = {
        cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.LeapError)
    }
    for code in codes:
        assert f"| {code} |" in readme, f"exit code {code} is not in README's table"
