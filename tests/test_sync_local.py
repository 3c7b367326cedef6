"""`leap sync` of a local folder, templates and recordings, through the CLI on real files."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests import media

TEMPLATE_TS = """
name = "time-series"
order = 10
[match]
keywords = ["анализ временных рядов"]
"""

TEMPLATE_ML = """
name = "ml"
order = 20
[match]
keywords = ["machine learning", "ml"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "inbox"
    (root / "2026" / "march").mkdir(parents=True)
    media.make_video(root / "2026" / "march" / "Анализ временных рядов 2026-03-05 18-30.mp4", 2)
    media.make_video(root / "Machine Learning seminar.mp4", 2)
    media.make_audio(root / "voice memo.m4a", 2)
    (root / "notes.txt").write_text("not media")
    return root


@pytest.fixture
def ready(leap_env: dict[str, str], cli: Any, folder: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("LEAP_SYNC__LOCAL_SETTLE_SECONDS", "0.2")
    assert cli("init", "--yes").code == 0
    res = cli("source", "add", "local", "inbox", str(folder))
    assert res.code == 0, res.stderr
    return cli


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def by_title(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["title"]: r for r in rows}


def test_sync_matches_flags_and_is_idempotent(ready: Any, tmp_path: Path, folder: Path) -> None:
    cli = ready
    assert cli("template", "add", "--file", str(write(tmp_path, "ts.toml", TEMPLATE_TS))).code == 0
    assert cli("template", "add", "--file", str(write(tmp_path, "ml.toml", TEMPLATE_ML))).code == 0
    res = cli("--json", "sync")
    assert res.code == 0, res.stderr
    [summary] = res.json()
    assert (summary["new"], summary["matched"], summary["unmatched"]) == (3, 2, 1)
    assert summary["blank"] == 2  # 2-second clips; "ml" sets its own thresholds to zero

    rows = by_title(cli("--json", "recordings", "list").json())
    assert set(rows) == {"Анализ временных рядов", "Machine Learning seminar", "voice memo"}
    ts = rows["Анализ временных рядов"]
    assert ts["template"] == "time-series"
    assert 'keyword "анализ временных рядов"' in ts["match_reason"]
    assert ts["external_id"] == "2026/march/Анализ временных рядов 2026-03-05 18-30.mp4"
    assert ts["start_time"] == "2026-03-05T18:30:00Z"  # date in the name, owner's tz (UTC)
    assert ts["blank_record"] is True and ts["status"] == "skipped"
    assert "duration" in ts["blank_reason"]
    assert 1.5 < ts["duration_s"] < 2.5
    ml = rows["Machine Learning seminar"]
    assert ml["template"] == "ml" and ml["blank_record"] is False and ml["status"] == "initialized"
    assert rows["voice memo"]["template"] is None
    for key in (
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
    ):
        assert key in ts

    again = cli("--json", "sync").json()[0]
    assert (again["new"], again["updated"], again["unchanged"]) == (0, 0, 3)
    assert len(cli("--json", "recordings", "list").json()) == 3

    # A changed file is updated in place, never duplicated, and keeps its identity.
    memo = folder / "voice memo.m4a"
    media.make_audio(memo, 3)
    os.utime(memo, ns=(time.time_ns(), time.time_ns() + 10**9))
    third = cli("--json", "sync").json()[0]
    assert (third["new"], third["updated"], third["unchanged"]) == (0, 1, 2)
    memo_row = by_title(cli("--json", "recordings", "list").json())["voice memo"]
    assert memo_row["id"] == rows["voice memo"]["id"]
    assert memo_row["duration_s"] > 2.5


def test_file_still_being_written_is_skipped(ready: Any, folder: Path) -> None:
    cli = ready
    growing = folder / "growing.mp4"
    stop = threading.Event()

    def writer() -> None:
        with growing.open("ab") as fh:
            while not stop.is_set():
                fh.write(b"\0" * 4096)
                fh.flush()
                time.sleep(0.02)

    t = threading.Thread(target=writer)
    t.start()
    try:
        time.sleep(0.1)
        res = cli("--json", "sync")
    finally:
        stop.set()
        t.join()
    assert res.code == 0, res.stderr
    [summary] = res.json()
    assert summary["new"] == 3
    assert any("growing.mp4: still being written" in w for w in summary["warnings"])


def test_corrupt_file_is_a_warning_not_a_failure(ready: Any, folder: Path) -> None:
    cli = ready
    media.make_corrupt(folder / "broken.mp4")
    res = cli("--json", "sync")
    assert res.code == 0, res.stderr
    [summary] = res.json()
    assert summary["new"] == 3
    assert any("broken.mp4:" in w for w in summary["warnings"])


def test_dry_run_writes_nothing(ready: Any) -> None:
    cli = ready
    res = cli("--json", "sync", "--dry-run")
    assert res.code == 0 and res.json()[0]["new"] == 3
    assert cli("--json", "recordings", "list").json() == []


def test_template_lifecycle(ready: Any, tmp_path: Path) -> None:
    cli = ready
    assert cli("sync").code == 0
    assert all(r["template"] is None for r in cli("--json", "recordings", "list").json())
    # Adding a template re-matches unmapped recordings.
    res = cli("--json", "template", "add", "--file", str(write(tmp_path, "t.toml", TEMPLATE_TS)))
    assert res.code == 0 and res.json()["rematched"] == 1
    assert cli("--json", "recordings", "list", "--mapped").json()[0]["template"] == "time-series"
    # test previews without changing anything.
    other = write(tmp_path, "o.toml", 'name = "catch"\norder = 1\n[match]\nregex = [".*"]\n')
    hits = cli("--json", "template", "test", "--file", str(other)).json()
    assert len(hits) == 3
    ts_hit = next(h for h in hits if h["current"] == "time-series")
    assert ts_hit["wins"] is True and ts_hit["winner"] == "catch"
    assert len(cli("--json", "template", "list").json()) == 1
    # Export round-trips through add.
    exported = cli("template", "export", "time-series")
    assert exported.code == 0 and 'name = "time-series"' in exported.stdout
    # Removing unmaps, keeps status.
    before = {r["id"]: r["status"] for r in cli("--json", "recordings", "list").json()}
    res = cli("--json", "template", "remove", "time-series")
    assert res.code == 0 and res.json()["unmapped"] == 1
    after = cli("--json", "recordings", "list").json()
    assert all(r["template"] is None for r in after)
    assert {r["id"]: r["status"] for r in after} == before
    again = write(tmp_path, "again.toml", exported.stdout)
    assert cli("template", "add", "--file", str(again)).code == 0
    assert len(cli("--json", "recordings", "list", "--template", "time-series").json()) == 1


def test_first_match_wins_and_reorder(ready: Any, tmp_path: Path) -> None:
    cli = ready
    assert cli("sync").code == 0
    a = 'name = "a"\norder = 10\n[match]\nkeywords = ["seminar"]\n'
    b = 'name = "b"\norder = 20\n[match]\nkeywords = ["machine"]\n'
    assert cli("template", "add", "--file", str(write(tmp_path, "a.toml", a))).code == 0
    assert cli("template", "add", "--file", str(write(tmp_path, "b.toml", b))).code == 0
    row = by_title(cli("--json", "recordings", "list").json())["Machine Learning seminar"]
    assert row["template"] == "a"
    assert [t["name"] for t in cli("--json", "template", "reorder", "b").json()] == ["b", "a"]
    # Mapped recordings keep their template until an explicit rematch.
    assert cli("--json", "recordings", "rematch").json()["changed"] == 1
    row = by_title(cli("--json", "recordings", "list").json())["Machine Learning seminar"]
    assert row["template"] == "b"


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('name = "x"\n[match]\nregex = ["("]\n', "invalid pattern"),
        ('name = "x"\n[match]\nkeywordz = ["a"]\n', "keywordz"),
        ('name = "x"\n[match\n', "malformed TOML"),
        ('name = "x"\n[match]\n', "no [match] rule"),
        ('name = "x"\npresets = ["nope"]\n[match]\nkeywords = ["a"]\n', "preset 'nope' not found"),
    ],
)
def test_bad_template_files(ready: Any, tmp_path: Path, content: str, fragment: str) -> None:
    res = ready("template", "add", "--file", str(write(tmp_path, "bad.toml", content)))
    assert res.code in (2, 3), res.stderr
    assert fragment in res.stderr and "Traceback" not in res.stderr
    assert ready("--json", "template", "list").json() == []


def test_bad_sync_and_source_input(ready: Any, tmp_path: Path) -> None:
    cli = ready
    res = cli("sync", "--from", "2026-05-01", "--to", "2026-04-01")
    assert res.code == 2 and "after" in res.stderr
    res = cli("sync", "--from", "yesterday-ish")
    assert res.code == 2 and "not a date" in res.stderr
    res = cli("source", "add", "local", "nowhere", str(tmp_path / "missing"))
    assert res.code == 2 and "does not exist" in res.stderr
    res = cli("source", "add", "local", "inbox", str(tmp_path))
    assert res.code == 7
    res = cli("sync", "--source", "ghost")
    assert res.code == 3


def test_recordings_filters(ready: Any) -> None:
    cli = ready
    assert cli("sync").code == 0
    assert len(cli("--json", "recordings", "list", "--blank").json()) == 3
    assert cli("--json", "recordings", "list", "--no-blank").json() == []
    assert len(cli("--json", "recordings", "list", "--status", "skipped").json()) == 3
    assert len(cli("--json", "recordings", "list", "--search", "memo").json()) == 1
    assert len(cli("--json", "recordings", "list", "--limit", "2").json()) == 2
    res = cli("recordings", "list", "--status", "bogus")
    assert res.code == 2 and "unknown status" in res.stderr
    rid = cli("--json", "recordings", "list", "--search", "memo").json()[0]["id"]
    shown = cli("--json", "recordings", "show", str(rid)).json()
    assert shown["files"][0]["recording_type"] == "audio"
    assert cli("recordings", "show", "999999").code == 3
