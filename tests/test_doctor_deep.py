"""`leap doctor --deep`'s consistency checks (services/consistency.py): a clean install passes
every one; each inconsistency, built by hand in the database or on disk, is reported by its
check with the offending id, and makes `leap doctor --deep` exit 1. On both databases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from leap.context import Runtime, open_context
from leap.db import models as m
from leap.db.base import utcnow
from leap.db.scope import Scope
from leap.pipeline.workspace import Workspace
from leap.services import doctor
from leap.specs.consistency import Verdict, is_debris, published_twice, temporary_kind
from leap.tasks import STAGE, TaskQueue
from tests.conftest import make_user

PREFIX = doctor.CONSISTENCY_PREFIX


@dataclass
class World:
    runtime: Runtime
    uid: int
    rid: int
    run_id: int
    stage_ids: dict[str, int]
    preset_id: int
    target_id: int
    workspace: Path

    def ctx(self) -> Any:
        return open_context(self.runtime, Scope.system_scope())

    def checks(self) -> dict[str, doctor.Check]:
        return {c.name.removeprefix(PREFIX): c for c in doctor.consistency_checks(self.runtime)}

    def failing(self) -> dict[str, str]:
        return {name: c.detail for name, c in self.checks().items() if not c.ok}

    def new_recording(self, ctx: Any, external_id: str) -> m.Recording:
        rec = ctx.repos.recordings.require(self.rid)
        return ctx.repos.recordings.add(
            m.Recording(
                user_id=self.uid,
                source_id=rec.source_id,
                external_id=external_id,
                title=external_id,
                start_time=utcnow(),
            )
        )

    def run(
        self, ctx: Any, rid: int, stages: dict[str, str], *, status: str, forced: bool = False
    ) -> tuple[m.PipelineRun, dict[str, m.StageResult]]:
        run = ctx.repos.runs.add(
            m.PipelineRun(
                recording_id=rid,
                user_id=self.uid,
                stages=list(stages),
                status=status,
                forced=forced,
            )
        )
        rows = {}
        for pos, (name, st) in enumerate(stages.items()):
            rows[name] = ctx.repos.stages.add(
                m.StageResult(
                    run_id=run.id,
                    recording_id=rid,
                    user_id=self.uid,
                    name=name,
                    position=pos,
                    status=st,
                    finished_at=utcnow() if st == "done" else None,
                )
            )
        ctx.session.flush()
        return run, rows


@pytest.fixture
def world(runtime: Runtime) -> World:
    """alice's one recording, processed and published: a done run of download, trim and
    upload with its files on disk, and its YouTube target uploaded."""
    scope = make_user(runtime, "alice")
    assert scope.user_id is not None
    uid = scope.user_id
    runtime.enqueue = lambda *_: None
    with open_context(runtime, Scope.for_user(uid)) as ctx:
        src = ctx.repos.sources.add(m.InputSource(name="inbox", kind="local", config={}))
        rec = ctx.repos.recordings.add(
            m.Recording(source_id=src.id, external_id="r1", title="talk", start_time=utcnow())
        )
        preset = ctx.repos.presets.add(m.OutputPreset(name="yt", platform="youtube"))
        ctx.session.flush()
        rid, preset_id = rec.id, preset.id
    ws = Workspace.for_recording(runtime.settings.media_path, uid, rid).ensure()
    files = {"source": ws / "source.mp4", "trimmed": ws / "source.mp4", "audio": ws / "audio.ogg"}
    for path in files.values():
        path.write_bytes(b"media")
    w = World(runtime, uid, rid, 0, {}, preset_id, 0, ws)
    with w.ctx() as ctx:
        run, rows = w.run(
            ctx, rid, {"download": "done", "trim": "done", "upload": "done"}, status="done"
        )
        rows["download"].artifacts = {"source": str(files["source"])}
        rows["trim"].artifacts = {"trimmed": str(files["trimmed"]), "audio": str(files["audio"])}
        rows["upload"].result = {"published": ["yt"], "targets": 1}
        target = ctx.repos.targets.add(
            m.OutputTarget(
                user_id=uid,
                recording_id=rid,
                preset_id=preset_id,
                platform="youtube",
                status="uploaded",
                idempotency_key="k-1",
                remote_id="vid-1",
            )
        )
        ctx.session.flush()
        w.run_id, w.target_id = run.id, target.id
        w.stage_ids = {name: st.id for name, st in rows.items()}
    return w


def test_a_clean_install_passes_every_check(world: World) -> None:
    checks = world.checks()
    assert list(checks) == [
        "artifacts on disk",
        "temporary files",
        "uploads once",
        "leases",
        "queued stages",
        "active runs",
    ]
    assert all(c.ok for c in checks.values()), {n: c.detail for n, c in checks.items()}
    assert checks["artifacts on disk"].detail == "ok: 3 file(s) of 1 recording(s)"
    assert checks["uploads once"].detail == "ok: 1 uploaded target(s)"


def test_a_missing_or_empty_artifact_is_reported(world: World) -> None:
    (world.workspace / "audio.ogg").unlink()
    (world.workspace / "source.mp4").write_bytes(b"")
    failing = world.failing()
    assert list(failing) == ["artifacts on disk"]
    detail = failing["artifacts on disk"]
    trim = world.stage_ids["trim"]
    assert detail.startswith("3 found (3 file(s) of 1 recording(s)): ")
    assert f"stage {trim} (recording {world.rid}): audio missing: " in detail
    assert f"stage {world.stage_ids['download']} (recording {world.rid}): source is empty" in detail


def test_only_the_newest_done_stage_counts_and_a_running_recording_is_left_out(
    world: World,
) -> None:
    with world.ctx() as ctx:  # a newer trim, elsewhere: the old files no longer matter
        _, rows = world.run(ctx, world.rid, {"trim": "done"}, status="done", forced=True)
        rows["trim"].artifacts = {"audio": str(world.workspace / "audio.ogg")}
    (world.workspace / "source.mp4").unlink()
    assert "artifacts on disk" in world.failing()  # the download's file is still needed
    with world.ctx() as ctx:  # ... unless a stage of the recording runs (a forced re-run)
        _, rows = world.run(ctx, world.rid, {"download": "running"}, status="active")
        rows["download"].heartbeat_at = utcnow()
        ctx.repos.recordings.require(world.rid).active_run_id = rows["download"].run_id
    assert "artifacts on disk" not in world.failing()


def test_temporary_files_left_behind_are_reported(world: World) -> None:
    (world.workspace / ".tmp-trimmed.mp4").write_bytes(b"half")
    (world.workspace / "source.mp4.part.json").write_text("{}")
    (world.workspace / "other.mp4.part").write_bytes(b"x")  # still resumable: kept
    failing = world.failing()
    assert list(failing) == ["temporary files"]
    detail = failing["temporary files"]
    assert detail.startswith("2 found (1 workspace(s) under ")
    assert f"recording {world.rid}: .tmp-trimmed.mp4" in detail
    assert f"recording {world.rid}: source.mp4.part.json" in detail
    assert "other.mp4.part" not in detail
    with world.ctx() as ctx:  # while a stage of that recording runs, its .tmp- is in use
        _, rows = world.run(ctx, world.rid, {"trim": "running"}, status="active")
        rows["trim"].heartbeat_at = utcnow()
        ctx.repos.recordings.require(world.rid).active_run_id = rows["trim"].run_id
    detail = world.failing()["temporary files"]
    assert detail.startswith("1 found") and ".tmp-trimmed.mp4" not in detail


def test_a_remote_id_on_two_targets_is_an_upload_twice(world: World) -> None:
    with world.ctx() as ctx:
        other = world.new_recording(ctx, "r2")
        ctx.session.flush()
        twin = ctx.repos.targets.add(
            m.OutputTarget(
                user_id=world.uid,
                recording_id=other.id,
                preset_id=world.preset_id,
                platform="youtube",
                status="uploaded",
                idempotency_key="k-2",
                remote_id="vid-1",
            )
        )
        ctx.session.flush()
        twin_id = twin.id
    failing = world.failing()
    assert list(failing) == ["uploads once"]
    assert failing["uploads once"] == (
        f"1 found (2 uploaded target(s)): target {world.target_id}: youtube id vid-1 also on "
        f"target(s) {world.target_id}, {twin_id}"
    )


def test_a_target_published_by_two_unforced_runs_is_reported_a_forced_one_is_not(
    world: World,
) -> None:
    with world.ctx() as ctx:
        _, rows = world.run(ctx, world.rid, {"upload": "done"}, status="done", forced=True)
        rows["upload"].result = {"published": ["yt"], "targets": 1}
    assert world.failing() == {}
    with world.ctx() as ctx:
        _, rows = world.run(ctx, world.rid, {"upload": "done"}, status="done")
        rows["upload"].result = {"published": ["yt"], "targets": 1}
    failing = world.failing()
    assert failing == {
        "uploads once": f"1 found (1 uploaded target(s)): recording {world.rid}: yt published "
        "by two unforced runs"
    }


def test_a_lease_past_its_timeout_is_reported(world: World) -> None:
    lease = world.runtime.settings.worker.lease_seconds
    with world.ctx() as ctx:
        rec = world.new_recording(ctx, "r2")
        ctx.session.flush()
        run, rows = world.run(ctx, rec.id, {"download": "running"}, status="active")
        rec.active_run_id = run.id
        st = rows["download"]
        st.lease_owner, st.heartbeat_at = "elsewhere:123:1", utcnow() - timedelta(seconds=lease / 2)
        ctx.session.flush()
        sid = st.id
    assert world.failing() == {}  # a lease within its time is fine
    with world.ctx() as ctx:
        ctx.repos.stages.require(sid).heartbeat_at = utcnow() - timedelta(seconds=2 * lease)
    failing = world.failing()
    assert list(failing) == ["leases"]
    assert failing["leases"].startswith(
        f"1 found (1 stage(s) running, lease {lease:g} s): stage {sid} (recording {rec.id}, "
        "download): last heartbeat "
    )
    assert failing["leases"].endswith(" by elsewhere:123:1")


def test_a_queued_stage_without_a_message_is_reported_until_one_is_sent(world: World) -> None:
    with world.ctx() as ctx:
        rec = world.new_recording(ctx, "r2")
        ctx.session.flush()
        run, rows = world.run(ctx, rec.id, {"trim": "queued"}, status="active")
        rec.active_run_id = run.id
        rows["trim"].queued_at = utcnow() - timedelta(minutes=10)
        ctx.session.flush()
        sid = rows["trim"].id
    failing = world.failing()
    assert list(failing) == ["queued stages"]
    assert f"stage {sid} (recording {rec.id}, trim): queued since " in failing["queued stages"]
    assert failing["queued stages"].endswith(", no message")
    # The reconciler's nudge; a trim's message goes to the cpu lane's queue (specs/lanes.py),
    # which the check reads as well.
    queue = TaskQueue.for_settings(world.runtime)
    queue.send(STAGE, {"stage_id": sid})
    try:
        assert queue.cpu is not None and queue.cpu.pending_count() == 1
        assert world.failing() == {}
    finally:
        for huey in queue.hueys().values():
            huey.flush()
    with world.ctx() as ctx:  # waiting for a retry's back-off is not stuck
        ctx.repos.stages.require(sid).not_before = utcnow() + timedelta(minutes=5)
    assert world.failing() == {}


def test_runs_without_work_and_recordings_pointing_at_ended_runs_are_reported(
    world: World,
) -> None:
    with world.ctx() as ctx:
        rec = world.new_recording(ctx, "r2")
        ctx.session.flush()
        stuck, _ = world.run(ctx, rec.id, {"download": "done", "trim": "pending"}, status="active")
        rec.active_run_id = stuck.id
        ctx.repos.recordings.require(world.rid).active_run_id = world.run_id  # a done run
        ctx.session.flush()
        stuck_id, rec2 = stuck.id, rec.id
    failing = world.failing()
    assert list(failing) == ["active runs"]
    detail = failing["active runs"]
    assert detail.startswith("2 found (1 active run(s)): ")
    assert f"run {stuck_id} (recording {rec2}): active, no stage queued or running" in detail
    assert f"recording {world.rid}: active run {world.run_id} is done" in detail


def test_leap_doctor_deep_exits_1_naming_the_failed_check(
    world: World, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = cli("--json", "doctor", "--deep")
    assert res.code == 0, res.stderr
    rows = {r["check"]: r for r in res.json()}
    assert all(rows[PREFIX + n]["ok"] for n in ("artifacts on disk", "active runs"))
    assert "consistency" not in cli("doctor").stdout  # only with --deep
    (world.workspace / "audio.ogg").unlink()
    res = cli("doctor", "--deep")
    assert res.code == 1
    assert "some checks failed" in res.stderr
    assert "consistency: artifacts on disk" in res.stdout and "audio missing" in res.stdout


# ---------------------------------------------------------------- the pure part


def test_which_files_are_temporary_and_when_they_are_debris() -> None:
    assert temporary_kind(".tmp-trimmed.mp4") == "tmp"
    assert temporary_kind("source.mp4.part.json.tmp") == "tmp"
    assert temporary_kind("source.mp4.part") == "part"
    assert temporary_kind("source.mp4.part.json") == "part"
    assert temporary_kind("audio.ogg") is None and temporary_kind("source.mp4") is None
    assert is_debris(".tmp-audio.ogg", set(), stage_running=False)
    assert not is_debris(".tmp-audio.ogg", set(), stage_running=True)
    assert not is_debris("s.mp4.part", {"s.mp4.part"}, stage_running=False)
    assert is_debris("s.mp4.part", {"s.mp4", "s.mp4.part"}, stage_running=True)
    assert is_debris("s.mp4.part.json", {"s.mp4"}, stage_running=False)


def test_published_twice_counts_only_unforced_runs() -> None:
    assert published_twice([(1, False, ["yt", "vk"]), (2, False, ["vk"])]) == ["vk"]
    assert published_twice([(1, False, ["yt"]), (2, True, ["yt"])]) == []
    assert published_twice([(2, False, ["yt"]), (1, False, [])]) == []


def test_a_verdict_names_the_first_few_offenders_and_counts_the_rest() -> None:
    v = Verdict("x", "9 things", tuple(f"id {i}" for i in range(8)))
    assert not v.ok
    assert v.detail == "8 found (9 things): id 0; id 1; id 2; id 3; id 4; and 3 more"
    assert Verdict("x", "9 things", ()).detail == "ok: 9 things"
