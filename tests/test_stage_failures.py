"""Stage failures are said once, as one line, with the exit code docs/cli.md documents: a source
gone, swapped or garbage, an unreadable or damaged artifact, an unusable media folder, a bad
processing setting, and a queue that does not answer. Never a traceback, never "internal
error", and always the reason on the stage row."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.pipeline import runner
from tests import media
from tests.conftest import CliResult, leap_process

TEMPLATE = """
name = "lectures"
[match]
keywords = ["lecture"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
stages = ["download", "trim"]
[processing.trim]
min_keep_s = 1
"""

# A valid transcript in LEAP's storage form, for stages after transcribe.
TRANSCRIPT = (
    '{"language": "en", "duration_s": 7, "meta": {}, '
    '"segments": [{"start": 0, "end": 3, "text": "hello there", "words": []}]}'
)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    root = tmp_path / "inbox"
    root.mkdir()
    media.make_silence_tone_silence(root / "lecture one.mp4", lead=2, tone=3, tail=2)
    return root


@pytest.fixture
def rid(
    leap_env: dict[str, str], cli: Any, inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> int:
    """One synced recording of a local source, mapped to a template."""
    monkeypatch.setenv("LEAP_SYNC__LOCAL_SETTLE_SECONDS", "0")
    assert cli("init", "--yes").code == 0
    assert cli("source", "add", "local", "inbox", str(inbox)).code == 0
    (tmp_path / "t.toml").write_text(TEMPLATE)
    assert cli("template", "add", "--file", str(tmp_path / "t.toml")).code == 0
    assert cli("sync").code == 0
    [row] = cli("--json", "recordings", "list").json()
    return int(row["id"])


def show(cli: Any, rid: int) -> dict[str, Any]:
    res = cli("--json", "recordings", "show", str(rid))
    assert res.code == 0, res.stderr
    return dict(res.json())


def workspace(leap_env: dict[str, str], rid: int) -> Path:
    return Path(leap_env["LEAP_DATA_DIR"]) / "media" / "user_1" / "recordings" / str(rid)


def said_once(res: CliResult, code: int, *needles: str) -> str:
    """The failure is one `error:` line holding every needle, and nothing else repeats it."""
    assert res.code == code, (res.code, res.stderr)
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, res.stderr
    for needle in needles:
        assert needle in errors[0], res.stderr
        # No log line (nor anything else) says it a second time.
        assert sum(needle in ln for ln in res.stderr.splitlines()) == 1, res.stderr
    return errors[0]


def failed_stage(cli: Any, rid: int, name: str) -> dict[str, Any]:
    stage = {s["name"]: s for s in show(cli, rid)["stages"]}[name]
    assert stage["status"] == "failed", stage
    assert stage["error"], stage
    return stage


# --------------------------------------------------------------------------- the source


def test_source_deleted_after_sync(cli: Any, rid: int, inbox: Path) -> None:
    (inbox / "lecture one.mp4").unlink()
    res = cli("process", str(rid), "--now")
    said_once(res, 3, "lecture one.mp4", "gone")
    assert "gone" in failed_stage(cli, rid, "download")["error"]


def test_source_replaced_by_a_directory(cli: Any, rid: int, inbox: Path) -> None:
    (inbox / "lecture one.mp4").unlink()
    (inbox / "lecture one.mp4").mkdir()
    res = cli("process", str(rid), "--now")
    # Refused as not a regular file: "not found" (3) or a bad input (2), never a crash.
    assert res.code in (2, 3), res.stderr
    said_once(res, res.code, "lecture one.mp4", "not a regular file")
    assert "not a regular file" in failed_stage(cli, rid, "download")["error"]


def test_source_replaced_by_garbage(cli: Any, rid: int, inbox: Path) -> None:
    media.make_corrupt(inbox / "lecture one.mp4", size=200_000)
    res = cli("process", str(rid), "--now")
    line = said_once(res, 1, "source.mp4")
    assert "moov atom not found" in line or "not a recognised media file" in line
    error = failed_stage(cli, rid, "trim")["error"]
    assert "source.mp4" in error and ("moov" in error or "not a recognised" in error)


def test_source_in_a_container_cut_cannot_write(
    cli: Any, rid: int, inbox: Path, leap_env: dict[str, str]
) -> None:
    """.avi (also .mpg, .ts, .flac) is synced but has no muxer here: the cut goes to .mkv
    instead of a ValueError from the argv builder."""
    (inbox / "lecture one.mp4").unlink()
    media.make_silence_tone_silence(inbox / "lecture two.avi", lead=6, tone=3, tail=6)
    assert cli("sync").code == 0
    avi = next(r["id"] for r in cli("--json", "recordings", "list").json() if r["id"] != rid)
    res = cli("--json", "process", str(avi), "--now")
    assert res.code == 0, res.stderr
    rec = show(cli, avi)
    assert rec["trim"]["cut"] is True, rec["trim"]
    assert Path(rec["artifacts"]["trimmed"]).suffix == ".mkv"


# --------------------------------------------------------------------------- the workspace


def test_media_folder_unusable(cli: Any, rid: int, leap_env: dict[str, str]) -> None:
    # A file where the user's folder should be: mkdir fails with ENOTDIR. (Permission
    # denied behaves the same, but root, which runs these tests in CI, ignores permissions.)
    blocker = workspace(leap_env, rid).parent.parent
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    res = cli("process", str(rid), "--now")
    line = said_once(res, 1, "Not a directory")
    assert str(blocker) in line
    error = failed_stage(cli, rid, "download")["error"]
    assert str(blocker) in error and "Not a directory" in error


def _transcribed(cli: Any, rid: int, leap_env: dict[str, str]) -> Path:
    """A done transcribe stage whose artifact is `transcript.json` (reused, so no provider)."""
    ws = workspace(leap_env, rid)
    ws.mkdir(parents=True)
    (ws / "transcript.json").write_text(TRANSCRIPT, encoding="utf-8")
    res = cli("process", str(rid), "--now", "--stages", "transcribe")
    assert res.code == 0, res.stderr
    return ws / "transcript.json"


def test_truncated_transcript(cli: Any, rid: int, leap_env: dict[str, str]) -> None:
    path = _transcribed(cli, rid, leap_env)
    path.write_text(TRANSCRIPT[:40], encoding="utf-8")
    for stage in ("topics", "subtitles"):
        res = cli("process", str(rid), "--now", "--stages", stage)
        line = said_once(res, 1, str(path), "damaged")
        assert f"--stages transcribe,{stage}" in line
        assert str(path) in failed_stage(cli, rid, stage)["error"]


def test_transcript_deleted(cli: Any, rid: int, leap_env: dict[str, str]) -> None:
    path = _transcribed(cli, rid, leap_env)
    path.unlink()
    res = cli("process", str(rid), "--now", "--stages", "subtitles")
    said_once(res, 1, str(path), "is gone")
    assert "is gone" in failed_stage(cli, rid, "subtitles")["error"]


def test_transcript_unreadable(cli: Any, rid: int, leap_env: dict[str, str]) -> None:
    # Reading /proc/self/mem from offset 0 fails with EIO: a disk error, even for root.
    path = _transcribed(cli, rid, leap_env)
    path.unlink()
    path.symlink_to("/proc/self/mem")
    res = cli("process", str(rid), "--now", "--stages", "topics")
    said_once(res, 1, str(path), "Input/output error")
    assert "Input/output error" in failed_stage(cli, rid, "topics")["error"]


def test_damaged_transcript_is_made_again_not_reused(
    cli: Any, rid: int, leap_env: dict[str, str]
) -> None:
    # A transcript left in the workspace by a transcribe stage that never recorded its end
    # (killed after writing it): reused as it is, the damaged file would fail every later
    # stage; transcribe makes it again instead (here it needs the audio track, which this
    # recording does not have yet).
    ws = workspace(leap_env, rid)
    ws.mkdir(parents=True)
    (ws / "transcript.json").write_text("{", encoding="utf-8")
    res = cli("process", str(rid), "--now", "--stages", "transcribe")
    said_once(res, 2, "needs the audio track")


# --------------------------------------------------------------------------- settings


def test_cut_point_past_the_end(cli: Any, rid: int) -> None:
    assert cli("recordings", "config", str(rid), "--set", "trim.end=100").code == 0
    res = cli("process", str(rid), "--now")
    said_once(res, 6, "trim.end = 100", "past the end of the recording")
    assert "trim.end = 100" in failed_stage(cli, rid, "trim")["error"]


def test_stored_setting_of_the_wrong_type(cli: Any, rid: int, runtime: Runtime) -> None:
    # Edge checks refuse this today; a value stored by an older release is read as it is.
    with open_context(runtime, Scope.system_scope()) as ctx:
        ctx.repos.recordings.require(rid).overrides = {"trim": {"noise_db": "loud"}}
    res = cli("process", str(rid), "--now")
    said_once(res, 6, "trim.noise_db = 'loud'", "expected a number")
    assert "trim.noise_db" in failed_stage(cli, rid, "trim")["error"]


def test_worker_records_a_failure_without_the_secret(
    cli: Any, rid: int, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    """leapd's path (not foreground): the stage fails, the worker carries on, and neither the
    row nor the log line holds what looks like a secret."""
    secret = "api_key=sk-live-1234567890abcdef"
    with open_context(runtime, Scope.system_scope()) as ctx:
        ctx.repos.recordings.require(rid).overrides = {"trim": {"noise_db": secret}}
    assert cli("process", str(rid), "--now", "--stages", "download").code == 0
    # Queued for a worker (the message waits in the SQLite queue); this test is the worker.
    assert cli("process", str(rid), "--stages", "trim").code == 0
    with open_context(runtime, Scope.system_scope()) as ctx:
        [stage] = [s for s in ctx.repos.stages.list() if s.name == "trim"]
    sent: list[Any] = []
    # Each `cli` call set up logging afresh, dropping pytest's handler from the root logger.
    logger = logging.getLogger("leap.pipeline.runner")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level("INFO", logger="leap"):
            outcome = runner.execute(runtime, stage.id, lambda *a: sent.append(a))
    finally:
        logger.removeHandler(caplog.handler)
    assert outcome == "failed"
    error = failed_stage(cli, rid, "trim")["error"]
    assert "trim.noise_db" in error and "sk-live" not in error
    assert any("trim.noise_db" in r.getMessage() for r in caplog.records)
    assert not any("sk-live" in r.getMessage() for r in caplog.records)
    assert not any(r.exc_info for r in caplog.records)  # a known failure: no traceback


# --------------------------------------------------------------------------- the queue


def test_queue_unreachable_is_said_once_and_truly(
    rid: int, leap_env: dict[str, str], runtime: Runtime
) -> None:
    env = {
        **leap_env,
        "LEAP_QUEUE__BACKEND": "redis",
        "LEAP_QUEUE__URL": "redis://:hunter2@127.0.0.1:1/0",
    }
    res = leap_process("process", str(rid), env=env)
    line = said_once(res, 1, "cannot reach the queue")
    assert "redis://:***@127.0.0.1:1/0" in line and "hunter2" not in res.stderr
    assert f"run 1 of recording {rid} is saved" in line.lower()
    assert "queued" not in res.stderr.replace(line, "")  # no contradicting "run 1 queued"
    # The run is in the database, waiting for leapd's reconciler to send it.
    with open_context(runtime, Scope.system_scope()) as ctx:
        [stage] = [s for s in ctx.repos.stages.list() if s.status == "queued"]
        assert stage.name == "download"
    # With --json the row says it was not sent; the one error line is on stderr.
    assert leap_process("cancel", str(rid), env=env).code == 0
    res = leap_process("--json", "process", str(rid), env=env)
    said_once(res, 1, "cannot reach the queue")
    [row] = res.json()
    assert row["run_id"] == 2 and row["sent"] is False


def test_queue_unreachable_for_several_recordings(
    cli: Any, rid: int, leap_env: dict[str, str], inbox: Path
) -> None:
    media.make_video(inbox / "lecture two.mp4", 2)
    assert cli("sync").code == 0
    ids = [str(r["id"]) for r in cli("--json", "recordings", "list").json()]
    env = {**leap_env, "LEAP_QUEUE__BACKEND": "redis", "LEAP_QUEUE__URL": "redis://127.0.0.1:1/0"}
    res = leap_process("process", *ids, env=env)
    line = said_once(res, 1, "cannot reach the queue")
    assert "the runs of recordings" in line.lower() and "of 2" not in res.stderr


# --------------------------------------------------------------------------- outside stages


def test_os_error_outside_a_stage_is_one_line(
    cli: Any, leap_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError that reaches the CLI is the machine, not a bug: path and reason, exit 1."""
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv("LEAP_DATA_DIR", str(blocker / "data"))
    res = cli("init", "--yes")
    line = said_once(res, 1, "Not a directory")
    assert str(blocker / "data") in line
