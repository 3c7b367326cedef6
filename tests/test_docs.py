"""The docs are part of the product: every command has help and is in the README."""

from __future__ import annotations

import re
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


# A citation in code or tests: docs/NAME.md, optionally followed by the section's title in
# quotes ("Zoom: downloads"), or by `the "X:" sections` for a family of sections.
CITATION = re.compile(r'docs/([\w-]+\.md)(?:, (?:the )?"([^"]+)")?')
OUTSIDE = re.compile(r"API_CONTRACTS|ENGINEERING_NOTES|\bCLI\.md|STYLE\.md|PRODUCT\.md")


def _sources() -> list[Path]:
    return [
        p
        for folder in ("src", "tests", "benchmarks", "migrations", "scripts")
        for p in (ROOT / folder).rglob("*")
        if p.is_file()
        and p.suffix in (".py", "")
        and "__pycache__" not in p.parts
        and p != Path(__file__).resolve()  # this file names the patterns it looks for
    ]


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ""


def test_the_code_cites_only_documents_in_the_repository() -> None:
    outside = [str(p.relative_to(ROOT)) for p in _sources() if OUTSIDE.search(_text(p))]
    assert not outside, f"cite a document outside the repository: {outside}"


def test_every_cited_document_and_section_exists() -> None:
    missing = []
    for path in _sources():
        text = " ".join(_text(path).split())  # a citation may wrap across comment lines
        text = text.replace(" # ", " ")
        for doc, section in CITATION.findall(text):
            target = ROOT / "docs" / doc
            if not target.is_file():
                missing.append(f"{path.relative_to(ROOT)}: docs/{doc}")
                continue
            if not section:
                continue
            headings = [
                ln.lstrip("#").strip() for ln in _text(target).splitlines() if ln.startswith("#")
            ]
            if section.endswith(":"):
                found = any(h.startswith(section) for h in headings)
            else:
                found = section in headings
            if not found:
                missing.append(f'{path.relative_to(ROOT)}: docs/{doc}, "{section}"')
    assert not missing, missing
