"""The pipeline engine in one process: runs, locks, claims, retries, cancel, the reconciler,
and download + trim on real generated media."""

from __future__ import annotations

import socket
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from leap.context import Runtime, open_context
from leap.db.base import utcnow
from leap.db.models import PipelineRun, StageResult
from leap.db.scope import Scope
from leap.domain import RecordingStatus, RunStatus, StageStatus
from leap.errors import Conflict
from leap.media.ffmpeg import locate, probe
from leap.services import reconciler, runs
from tests import media

TEMPLATE = """
name = "lectures"
[match]
keywords = ["lecture"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
stages = ["download", "trim", "upload"]
[processing.trim]
min_keep_s = 5
"""


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    root = tmp_path / "inbox"
    root.mkdir()
    media.make_silence_tone_silence(root / "lecture one.mp4", lead=8, tone=6, tail=8)
    media.make_video(root / "short clip.mp4", 2)  # matches nothing, blank by default
    return root


@pytest.fixture
def installed(
    leap_env: dict[str, str], cli: Any, inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, int]:
    monkeypatch.setenv("LEAP_SYNC__LOCAL_SETTLE_SECONDS", "0")
    assert cli("init", "--yes").code == 0
    assert cli("source", "add", "local", "inbox", str(inbox)).code == 0
    (tmp_path / "t.toml").write_text(TEMPLATE)
    assert cli("template", "add", "--file", str(tmp_path / "t.toml")).code == 0
    assert cli("sync").code == 0
    rows = cli("--json", "recordings", "list").json()
    return {r["title"]: r["id"] for r in rows}


def show(cli: Any, rid: int) -> dict[str, Any]:
    res = cli("--json", "recordings", "show", str(rid))
    assert res.code == 0, res.stderr
    return dict(res.json())


def test_process_now_downloads_trims_and_extracts_audio(
    installed: dict[str, int], cli: Any
) -> None:
    rid = installed["lecture one"]
    res = cli("--json", "process", str(rid), "--now")
    assert res.code == 0, res.stderr
    [row] = res.json()
    assert row["status"] == "done"
    rec = show(cli, rid)
    assert rec["status"] == "processed" and rec["progress"] == 100
    for key in ("files", "config", "stages", "artifacts", "trim", "targets"):
        assert key in rec, key  # `recordings show --json` keys (docs/cli.md, "JSON output")
    assert rec["config"]["trim"]["min_keep_s"] == 5  # the template's value, read live
    stages = {s["name"]: s for s in rec["stages"]}
    assert stages["download"]["status"] == "done" and stages["trim"]["status"] == "done"
    assert set(stages) == {"download", "trim", "upload"}
    assert stages["upload"]["status"] == "skipped"  # not in this release yet
    trim = rec["trim"]
    assert trim["cut"] is True, trim
    assert trim["start_s"] == pytest.approx(8 - 1.5, abs=0.3)  # lead silence minus the pad
    assert trim["end_s"] == pytest.approx(14 + 1.5, abs=0.3)
    art = rec["artifacts"]
    assert set(art) >= {"source", "trimmed", "audio"}
    ws = Path(art["source"]).parent
    assert ws.name == str(rid) and ws.parent.name == "recordings"
    assert ws.parent.parent.name.startswith("user_")
    tools = locate()
    audio = probe(tools, Path(art["audio"]))
    assert audio.audio_channels == 1
    # Opus always decodes at 48 kHz (the 16 kHz input rate is only a header note).
    assert audio.audio_sample_rate == (48000 if audio.audio_codec == "opus" else 16000)
    assert not audio.has_video
    trimmed = probe(tools, Path(art["trimmed"]))
    assert trimmed.has_video and trimmed.has_audio
    assert trimmed.duration_s < 22 - 5  # dead air is gone (copy cuts start at a keyframe)
    assert not list(ws.glob(".tmp-*")) and not list(ws.glob("*.part"))


def test_accurate_trim_cuts_exactly(installed: dict[str, int], cli: Any) -> None:
    rid = installed["lecture one"]
    res = cli("recordings", "config", str(rid), "--set", "trim.accurate=true")
    assert res.code == 0, res.stderr
    cfg = cli("--json", "recordings", "config", str(rid)).json()
    assert cfg["config"]["trim"]["accurate"] is True
    assert cfg["origins"]["trim.accurate"] == "recording"
    assert cfg["origins"]["trim.enabled"] == "default"
    assert cli("process", str(rid), "--now").code == 0
    rec = show(cli, rid)
    out = probe(locate(), Path(rec["artifacts"]["trimmed"]))
    assert out.duration_s == pytest.approx(rec["trim"]["end_s"] - rec["trim"]["start_s"], abs=0.15)
    assert cli("recordings", "config", str(rid), "--reset").code == 0
    assert (
        cli("--json", "recordings", "config", str(rid)).json()["origins"]["trim.accurate"]
        == "default"
    )


def test_refusals_and_force(installed: dict[str, int], cli: Any) -> None:
    short = installed["short clip"]
    res = cli("process", str(short))
    assert (
        res.code == 2
        and f"recording {short}: blank record" in res.stderr
        and "--force" in res.stderr
    )
    assert res.stderr.count("blank record") == 1  # one clear line
    res = cli("--json", "process", str(short), "--now", "--force", "--stages", "download")
    assert res.code == 0, res.stderr
    assert show(cli, short)["status"] == "downloaded" or show(cli, short)["status"] == "processed"
    res = cli("process")
    assert res.code == 2 and "ids or at least one filter" in res.stderr
    res = cli("process", "--now", "--wait", str(short))
    assert res.code == 2
    res = cli("process", str(short), "--stages", "download,fly")
    assert res.code == 2 and "unknown stage 'fly'" in res.stderr


def test_bad_media_fails_the_stage_with_a_reason(
    installed: dict[str, int], cli: Any, inbox: Path
) -> None:
    rid = installed["lecture one"]
    media.make_corrupt(inbox / "lecture one.mp4", size=300_000)
    res = cli("process", str(rid), "--now")
    assert res.code == 1 and "Traceback" not in res.stderr
    rec = show(cli, rid)
    assert rec["status"] == "failed"
    assert rec["error"].startswith("trim:")
    assert "moov atom not found" in rec["error"] or "not a recognised" in rec["error"]
    # Fix the file: retry resumes from the failed stage and finishes.
    media.make_silence_tone_silence(inbox / "lecture one.mp4", lead=8, tone=6, tail=8)
    Path(rec["artifacts"]["source"]).unlink()  # the copy of the corrupt file
    res = cli("retry", str(rid), "--stage", "download")
    assert res.code == 0, res.stderr


def test_lock_claim_cancel_retry(runtime: Runtime, installed: dict[str, int]) -> None:
    rid = installed["lecture one"]
    sent: list[tuple[str, dict[str, Any], float | None]] = []
    runtime.enqueue = lambda n, k, d: sent.append((n, k, d))
    with open_context(runtime, Scope.system_scope()) as ctx:
        run = runs.start_run(ctx, rid)
    assert sent == [("leap.stage", {"stage_id": sent[0][1]["stage_id"]}, None)]
    with (
        pytest.raises(Conflict, match="already being processed"),
        open_context(runtime, Scope.system_scope()) as ctx,
    ):
        runs.start_run(ctx, rid)
    first = int(sent[0][1]["stage_id"])
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert runs.claim(ctx, first, "w1") is True
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert runs.claim(ctx, first, "w2") is False  # once claimed, nobody else gets it
        # A retryable failure goes back to the queue with a back-off delay...
        failed = runs.fail_stage(ctx, first, "w1", "503 from Zoom", retryable=True)
        assert failed is not None
        st, delay = failed
        assert st.status == "queued" and delay == pytest.approx(5.0)
        assert st.not_before is not None
    assert sent[-1][2] == pytest.approx(5.0)
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert runs.claim(ctx, first, "w1") is False  # not before its delay
        runs.cancel(ctx, rid)
    with open_context(runtime, Scope.system_scope()) as ctx:
        rec = ctx.repos.recordings.require(rid)
        assert rec.status == "cancelled" and rec.active_run_id is None
        assert ctx.repos.runs.require(run.id).status == RunStatus.CANCELLED.value
        retried = runs.retry(ctx, rid)
        assert retried.id == run.id
    with open_context(runtime, Scope.system_scope()) as ctx:
        st = ctx.repos.stages.require(first)
        assert st.status == "queued" and st.attempts == 0
        assert ctx.repos.recordings.require(rid).active_run_id == run.id


def test_permanent_failure_and_exhausted_attempts(
    runtime: Runtime, installed: dict[str, int]
) -> None:
    rid = installed["lecture one"]
    runtime.enqueue = lambda *_: None
    with open_context(runtime, Scope.system_scope()) as ctx:
        run = runs.start_run(ctx, rid)
        first = ctx.repos.stages.next_queued(run.id)
        assert first is not None
        sid = first.id
    for attempt in range(1, 5):
        with open_context(runtime, Scope.system_scope()) as ctx:
            ctx.repos.stages.update_where({"not_before": None}, id=sid)
            assert runs.claim(ctx, sid, "w")
        with open_context(runtime, Scope.system_scope()) as ctx:
            out = runs.fail_stage(ctx, sid, "w", f"timeout {attempt}", retryable=True)
            assert out is not None
            assert (out[1] is None) == (attempt == 4)  # max_attempts = 4
    with open_context(runtime, Scope.system_scope()) as ctx:
        rec = ctx.repos.recordings.require(rid)
        assert rec.status == RecordingStatus.FAILED.value
        assert rec.error == "download: timeout 4" and rec.active_run_id is None
        stages = {s.name: s.status for s in ctx.repos.stages.list(run_id=run.id)}
        assert stages["download"] == "failed" and stages["trim"] == "cancelled"
        assert len(ctx.repos.stages.require(sid).result["errors"]) == 4


def test_claims_are_exclusive_under_concurrency(
    runtime: Runtime, installed: dict[str, int]
) -> None:
    """Four threads (own connections) race for 120 queued stages: each is claimed once."""
    rid = installed["lecture one"]
    ids: list[int] = []
    with open_context(runtime, Scope.system_scope()) as ctx:
        rec = ctx.repos.recordings.require(rid)
        for _ in range(120):
            pr = ctx.repos.runs.add(
                PipelineRun(recording_id=rid, user_id=rec.user_id, stages=["download"], config={})
            )
            st = ctx.repos.stages.add(
                StageResult(
                    run_id=pr.id,
                    recording_id=rid,
                    user_id=rec.user_id,
                    name="download",
                    position=0,
                    status="queued",
                    queued_at=utcnow(),
                )
            )
            ids.append(st.id)
    wins: dict[str, list[int]] = {f"w{i}": [] for i in range(4)}
    barrier = threading.Barrier(4)

    def worker(name: str) -> None:
        barrier.wait()
        for sid in ids:
            with open_context(runtime, Scope.system_scope()) as ctx:
                if runs.claim(ctx, sid, name):
                    wins[name].append(sid)

    threads = [threading.Thread(target=worker, args=(n,)) for n in wins]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    claimed = [sid for won in wins.values() for sid in won]
    assert sorted(claimed) == sorted(ids)  # every stage once, none twice


def test_reconciler_requeues_dead_and_silent_workers(
    runtime: Runtime, installed: dict[str, int]
) -> None:
    rid = installed["lecture one"]
    sent: list[dict[str, Any]] = []
    runtime.enqueue = lambda n, k, d: sent.append(k)
    with open_context(runtime, Scope.system_scope()) as ctx:
        run = runs.start_run(ctx, rid)
        first = ctx.repos.stages.next_queued(run.id)
        assert first is not None
        sid = first.id
    dead = f"{socket.gethostname()}:999999:1"  # a pid that does not exist
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert runs.claim(ctx, sid, dead)
    sent.clear()
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert reconciler.reconcile(ctx) == 1
    assert sent == [{"stage_id": sid}]
    with open_context(runtime, Scope.system_scope()) as ctx:
        st = ctx.repos.stages.require(sid)
        assert st.status == StageStatus.QUEUED.value and st.lease_owner is None
        assert ctx.repos.recordings.require(rid).status == "queued"
        # A worker elsewhere that stopped sending heartbeats loses its lease after the lease.
        assert runs.claim(ctx, sid, "other-host:1:1")
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert reconciler.reconcile(ctx) == 0  # fresh heartbeat: leave it alone
        ctx.repos.stages.update_where({"heartbeat_at": utcnow() - timedelta(minutes=5)}, id=sid)
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert reconciler.reconcile(ctx) == 1
        # Queued too long (its message lost): nudged again, once per staleness period.
        ctx.repos.stages.update_where({"queued_at": utcnow() - timedelta(minutes=5)}, id=sid)
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert reconciler.reconcile(ctx) == 1
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert reconciler.reconcile(ctx) == 0


def test_tenancy_of_runs(runtime: Runtime, installed: dict[str, int], cli: Any) -> None:
    rid = installed["lecture one"]
    assert cli("user", "add", "eve").code == 0
    res = cli("--user", "eve", "process", str(rid))
    assert res.code == 3  # eve cannot even see it
    res = cli("--user", "eve", "cancel", str(rid))
    assert res.code == 3
