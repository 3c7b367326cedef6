"""Import hygiene of the stage path: `leap process --now` and leapd's workers import only what
an upload needs. Each module kept out here cost RSS in every such process (bench_upload's
peak-RSS figures); it is imported by the function that uses it instead."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Imported by the code that needs them: the PostgreSQL dialect when the database is PostgreSQL,
# template matching (and `regex`) by sync and rematch, the text stages when one runs, Rich's
# progress bar when a terminal shows one; never httpx's command-line client (click, pygments).
KEPT_OUT = (
    "sqlalchemy.dialects.postgresql",
    "leap.specs.matching",
    "regex",
    "leap.pipeline.text_stages",
    "rich.progress",
    "click",
    "pygments",
)


@pytest.mark.parametrize(
    ("module", "also"), [("leap.cli.pipeline_cmd", ()), ("leap.daemon.main", ("typer", "rich"))]
)
def test_the_stage_path_does_not_import_what_it_does_not_use(
    module: str, also: tuple[str, ...]
) -> None:
    kept_out = KEPT_OUT + also
    code = (
        f"import sys, {module}; "
        f"print(' '.join(m for m in {kept_out!r} if sys.modules.get(m) is not None))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
