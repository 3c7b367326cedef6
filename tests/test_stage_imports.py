"""Import hygiene of the stage path: `leap process --now` and leapd's workers import only what
an upload needs. Each module kept out here cost RSS in every such process (bench_upload's
peak-RSS figures); it is imported by the function that uses it instead."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Imported by the code that needs them: the PostgreSQL dialect when the database is PostgreSQL,
# template matching (and `regex`) by sync and rematch, the text stages when one runs.
KEPT_OUT = (
    "sqlalchemy.dialects.postgresql",
    "leap.matching",
    "regex",
    "leap.pipeline.text_stages",
)


@pytest.mark.parametrize("module", ["leap.cli.pipeline_cmd", "leap.daemon.main"])
def test_the_stage_path_does_not_import_what_it_does_not_use(module: str) -> None:
    code = f"import sys, {module}; print(' '.join(m for m in {KEPT_OUT!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
