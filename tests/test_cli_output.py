"""What people and scripts read: `recordings list` fits the terminal (and --wide shows all),
`status` shows a stage's error under its table, JSON floats are rounded, `sync` with no
source says so, and an error is said once."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len

from leap.cli._output import json_text
from leap.cli.app import SaidByTheCommand
from leap.cli.recordings_cmd import COLUMNS, TABLE_PAGE
from leap.context import Runtime, open_context
from leap.db import models as m
from leap.db.scope import Scope
from leap.services import runs, users

LONG_TITLE = "Analysis of time series, lecture 12: ARIMA, seasonal models and forecasting " * 2
# `recordings list --json` keys (docs/cli.md, "JSON output").
LIST_KEYS = {
    "id",
    "external_id",
    "source",
    "title",
    "host",
    "start_time",
    "duration_s",
    "size_bytes",
    "status",
    "blank_record",
    "blank_reason",
    "template",
    "match_reason",
    "progress",
    "error",
}


@pytest.fixture
def scope(leap_env: dict[str, str], cli: Any, runtime: Runtime) -> Scope:
    assert cli("init", "--yes").code == 0
    return users.resolve_identity(runtime, None)


def seed(runtime: Runtime, scope: Scope, count: int = 3) -> list[int]:
    """Recordings with everything long that a real install has: titles, source, template."""
    with open_context(runtime, scope) as ctx:
        src = ctx.repos.sources.add(m.InputSource(name="lecture-hall-recordings", kind="local"))
        tpl = ctx.repos.templates.add(m.Template(name="time-series-analysis-autumn", position=1))
        ids = []
        for n in range(count):
            rec = ctx.repos.recordings.add(
                m.Recording(
                    source_id=src.id,
                    external_id=f"ext-{n}",
                    title=f"{n} {LONG_TITLE}",
                    start_time=datetime(2026, 3, 1, 10, 30, 15, tzinfo=UTC) + timedelta(days=n),
                    duration_s=116.74000000000001,
                    size_bytes=123_456_789,
                    template_id=tpl.id,
                    status="processed",
                )
            )
            ids.append(rec.id)
        return ids


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def header(stdout: str) -> list[str]:
    row = next(ln for ln in stdout.splitlines() if "┃" in ln and "id" in ln)
    return [cell.strip() for cell in row.strip("┃ ").split("┃")]


# --------------------------------------------------------------------------- recordings list


def test_recordings_list_fits_80_columns(
    runtime: Runtime, scope: Scope, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    ids = seed(runtime, scope)
    res = cli("recordings", "list")
    assert res.code == 0, res.stderr
    assert all(cell_len(ln) <= 80 for ln in res.stdout.splitlines()), res.stdout
    cols = header(res.stdout)
    assert cols[:3] == ["id", "start_time", "title"] and "status" in cols, cols
    assert "blank_record" not in cols and "duration_s" not in cols
    rows = [ln for ln in res.stdout.splitlines() if "│" in ln]
    assert len(rows) == len(ids)  # one line per recording, nothing wrapped
    for rid, row in zip(sorted(ids, reverse=True), rows, strict=True):  # newest first
        cells = [c.strip() for c in row.strip("│ ").split("│")]
        assert cells[0] == str(rid)
        assert cells[1].startswith("2026-03-0") and cells[1].endswith("10:30")
        assert cells[2].endswith("…") and f"{ids.index(rid)} {LONG_TITLE}".startswith(cells[2][:-1])
        assert "processed" in cells


def test_a_table_shows_one_page_and_says_how_to_see_more(
    runtime: Runtime, scope: Scope, cli: Any
) -> None:
    ids = seed(runtime, scope, TABLE_PAGE + 5)
    res = cli("recordings", "list")
    assert res.code == 0, res.stderr
    shown = [ln for ln in res.stdout.splitlines() if "│" in ln]
    assert len(shown) == TABLE_PAGE
    assert shown[0].strip("│ ").split("│")[0].strip() == str(max(ids))  # the newest first
    assert f"more with --offset {TABLE_PAGE}" in res.stderr
    rest = cli("recordings", "list", "--offset", str(TABLE_PAGE))
    assert len([ln for ln in rest.stdout.splitlines() if "│" in ln]) == 5
    assert "more with" not in rest.stderr
    everything = cli("recordings", "list", "--limit", str(TABLE_PAGE + 5))
    assert len([ln for ln in everything.stdout.splitlines() if "│" in ln]) == TABLE_PAGE + 5
    assert "more with" not in everything.stderr
    assert len(cli("--json", "recordings", "list").json()) == TABLE_PAGE + 5  # scripts: all


def test_recordings_list_wide_shows_every_column_whole(
    runtime: Runtime, scope: Scope, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    seed(runtime, scope, count=1)
    res = cli("recordings", "list", "--wide")
    assert res.code == 0, res.stderr
    assert header(res.stdout) == COLUMNS
    assert f"0 {LONG_TITLE}".strip() in res.stdout
    assert "lecture-hall-recordings" in res.stdout and "116.74 " in res.stdout


def test_a_wide_terminal_gets_every_column(
    runtime: Runtime, scope: Scope, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    seed(runtime, scope, count=1)
    res = cli("recordings", "list")
    assert header(res.stdout) == COLUMNS
    assert "…" not in res.stdout


def test_recordings_list_json_is_unchanged_but_rounded(
    runtime: Runtime, scope: Scope, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    seed(runtime, scope, count=1)
    res = cli("--json", "recordings", "list")
    assert res.code == 0, res.stderr
    [row] = res.json()
    assert set(row) >= LIST_KEYS
    assert row["title"] == f"0 {LONG_TITLE}" and row["start_time"] == "2026-03-01T10:30:15Z"
    assert '"duration_s": 116.74,' in res.stdout and "116.7400000" not in res.stdout


def test_json_floats_are_rounded_everywhere_in_the_document() -> None:
    data = {"a": 116.74000000000001, "b": [0.1 + 0.2, {"c": (1 / 3,)}], "n": 7, "t": True}
    assert json.loads(json_text(data)) == {
        "a": 116.74,
        "b": [0.3, {"c": [0.333]}],
        "n": 7,
        "t": True,
    }


# --------------------------------------------------------------------------- status


def test_status_shows_the_error_under_the_table(
    runtime: Runtime, scope: Scope, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    [rid] = seed(runtime, scope, count=1)
    error = "upload refused: " + " ".join(f"reason{n}" for n in range(120))
    runtime.enqueue = lambda *_: None
    with open_context(runtime, Scope.system_scope()) as ctx:
        run = runs.start_run(ctx, rid, stages=["download", "trim"])
        first = ctx.repos.stages.next_queued(run.id)
        assert first is not None
        stage_id = first.id
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert runs.claim(ctx, stage_id, "w")
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert runs.fail_stage(ctx, stage_id, "w", error, retryable=False)

    res = cli("status", str(rid))
    assert res.code == 0, res.stderr
    out = res.stdout.splitlines()
    assert all(cell_len(ln) <= 80 for ln in out), res.stdout
    table = [ln for ln in out if ln[:1] in "┏┃┡│└"]
    assert len(table) == 6, res.stdout  # rules, header and two stage rows: one line each
    assert "reason" not in "".join(table)
    bottom = max(i for i, ln in enumerate(out) if ln.startswith("└"))
    below = " ".join(ln.strip() for ln in out[bottom + 1 :])
    assert below == f"download: {error}", res.stdout
    assert error not in res.stderr  # the header line no longer repeats it


# --------------------------------------------------------------------------- sync


def test_sync_without_a_source_says_how_to_add_one(scope: Scope, cli: Any) -> None:
    res = cli("sync")
    assert (res.code, res.stdout) == (0, "")
    assert "no sources: add one with `leap source add" in res.stderr
    res = cli("--json", "sync")
    assert res.code == 0 and res.json() == []
    assert "no sources" in res.stderr


def test_sync_with_every_source_disabled_says_so(scope: Scope, cli: Any, tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    assert cli("source", "add", "local", "inbox", str(tmp_path / "inbox")).code == 0
    assert cli("source", "disable", "inbox").code == 0
    res = cli("sync")
    assert (res.code, res.stdout) == (0, "")
    assert "no enabled sources (1 disabled)" in res.stderr


def test_a_failed_sync_is_said_once(scope: Scope, cli: Any, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    assert cli("source", "add", "local", "inbox", str(inbox)).code == 0
    inbox.rmdir()
    res = cli("sync")
    assert res.code == 2, res.stderr
    said = [ln for ln in lines(res.stderr) if str(inbox) in ln]
    assert len(said) == 1 and said[0].startswith("error: sync failed: inbox:"), res.stderr
    assert "WARNING" not in res.stderr
    assert "│ inbox" in res.stdout and "failed" in res.stdout and str(inbox) not in res.stdout


@pytest.mark.parametrize(
    ("logger", "level", "shown"),
    [
        ("leap.services.sync", logging.WARNING, False),  # in the sync result
        ("leap.providers.zoom", logging.WARNING, False),  # a skipped meeting: in the result
        ("leap.pipeline.publish", logging.ERROR, False),  # a target's failure: the stage error
        ("leap.pipeline.publish", logging.WARNING, True),  # a thumbnail left out: only here
        ("leap.providers.download", logging.WARNING, True),
    ],
)
def test_the_cli_drops_only_records_its_output_already_says(
    logger: str, level: int, shown: bool
) -> None:
    record = logging.LogRecord(logger, level, __file__, 1, "message", None, None)
    assert SaidByTheCommand().filter(record) is shown
