"""A user's lifecycle (issue 17, docs/users.md): `leap user delete` removes every row and
file the user owns, after cancelling their runs, and only when confirmed; a stage in flight
for a deleted user ends quietly; `leap user disable` cancels the user's queued work and
leapd's automation skips them; timezone and plan changes show at once in `leap quota show`.
Every test here touches the database, so it also runs on PostgreSQL (LEAP_TEST_DB=postgres)."""

from __future__ import annotations

import io
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from leap.context import Runtime, open_context
from leap.db.models import (
    AuditEntry,
    AutomationJob,
    AutomationRun,
    Credential,
    InputSource,
    Notification,
    NotifyTarget,
    OutputPreset,
    OutputTarget,
    PipelineRun,
    QuotaOverride,
    Recording,
    StageResult,
    Template,
    TemplatePreset,
    UsageEvent,
)
from leap.db.repos import owned_models
from leap.db.scope import Scope
from leap.domain import RecordingStatus, Role, RunStatus, StageStatus
from leap.errors import UsageError
from leap.pipeline import runner
from leap.pipeline.stage_api import Progress, StageOutcome
from leap.services import automation, user_lifecycle
from leap.specs import user_lifecycle as spec
from tests.conftest import make_user

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


# -------------------------------------------------------------------- the decisions (pure)


def test_confirmation_rules() -> None:
    assert spec.confirmation(yes=False, dry_run=True, interactive=True) == spec.DRY_RUN
    assert spec.confirmation(yes=True, dry_run=True, interactive=False) == spec.DRY_RUN
    assert spec.confirmation(yes=True, dry_run=False, interactive=False) == spec.GO
    assert spec.confirmation(yes=False, dry_run=False, interactive=True) == spec.ASK
    assert spec.confirmation(yes=False, dry_run=False, interactive=False) == spec.REFUSE
    assert spec.confirmed(" alice\n", "alice") and not spec.confirmed("Alice", "alice")
    assert not spec.confirmed("", "alice") and not spec.confirmed(None, "alice")


def test_refusals() -> None:
    def why(**kw: Any) -> str | None:
        base = {
            "deleting": True,
            "actor_id": 1,
            "target_id": 2,
            "target_is_admin": False,
            "other_active_admins": 1,
        }
        return spec.refusal(**{**base, **kw})

    assert why() is None
    assert why(target_id=1) == "you cannot delete yourself"
    assert why(target_id=1, deleting=False) == "you cannot disable yourself"
    assert "last admin" in (why(target_is_admin=True, other_active_admins=0) or "")
    assert why(target_is_admin=True, other_active_admins=1) is None
    assert why(target_is_admin=False, other_active_admins=0) is None


# -------------------------------------------------------------------- a populated install


@pytest.fixture
def people(leap_env: dict[str, str], runtime: Runtime) -> dict[str, int]:
    root = make_user(runtime, "root", Role.ADMIN)
    alice = make_user(runtime, "alice")
    bob = make_user(runtime, "bob")
    ids = {"root": root.user_id, "alice": alice.user_id, "bob": bob.user_id}
    assert all(v is not None for v in ids.values())
    return {k: int(v) for k, v in ids.items() if v is not None}


@pytest.fixture
def sent(runtime: Runtime) -> list[Any]:
    """Queue messages (the in-process runtime sends none; workers here are the test)."""
    out: list[Any] = []
    runtime.enqueue = lambda *msg: out.append(msg)
    return out


def seed(runtime: Runtime, uid: int) -> dict[str, int]:
    """A row in every user-owned table for `uid`: a source with its credential, a template
    with a preset, a recording with a run in progress (its first stage queued), a target,
    an automation job due with a queued firing, a notification, usage, a quota override and
    an audit entry. Returns the ids a test needs."""
    with open_context(runtime, Scope.for_user(uid)) as ctx:
        s = ctx.session

        def add(obj: Any) -> Any:
            s.add(obj)
            s.flush()
            return obj

        cred = add(Credential(name="c", kind="zoom-s2s", secret=b"x", public={}))
        src = add(InputSource(name="inbox", kind="local", credential_id=cred.id, config={}))
        preset = add(OutputPreset(name="p", platform="local", credential_id=cred.id, meta={}))
        tpl = add(Template(name="t", rules={}, blank={}, processing={}, meta={}))
        add(TemplatePreset(template_id=tpl.id, preset_id=preset.id))
        rec = add(
            Recording(
                source_id=src.id,
                external_id="lecture-1",
                title="lecture",
                start_time=NOW,
                template_id=tpl.id,
                status=RecordingStatus.QUEUED.value,
            )
        )
        run = add(PipelineRun(recording_id=rec.id, stages=["download", "trim"], config={}))
        stage = add(
            StageResult(
                run_id=run.id,
                recording_id=rec.id,
                name="download",
                position=0,
                status=StageStatus.QUEUED.value,
                queued_at=NOW,
            )
        )
        add(
            StageResult(
                run_id=run.id, recording_id=rec.id, name="trim", position=1, status="pending"
            )
        )
        rec.active_run_id = run.id
        add(
            OutputTarget(
                recording_id=rec.id,
                preset_id=preset.id,
                platform="local",
                idempotency_key=f"seed-{uid}",
            )
        )
        job = add(
            AutomationJob(
                name="nightly",
                schedule={"kind": "daily", "at": "09:00"},
                spec={"sources": [], "templates": [], "process": False},
                last_planned_at=NOW - timedelta(days=2),
            )
        )
        firing = add(
            AutomationRun(job_id=job.id, planned_at=NOW - timedelta(days=3), status="queued")
        )
        hook = add(NotifyTarget(name="hook", kind="webhook", config={"url": "http://x.invalid"}))
        add(Notification(target_id=hook.id, event="published", payload={}))
        add(UsageEvent(kind="recordings", amount=1.0, ref=f"seed:{uid}", recording_id=rec.id))
        add(QuotaOverride(key="templates", value=9))
        add(AuditEntry(actor="seed", action="seed"))
        return {"recording": rec.id, "run": run.id, "stage": stage.id, "firing": firing.id}


def files(leap_env: dict[str, str], uid: int, rid: int) -> list[Path]:
    """The user's folders with a file in each (media, imports, exports)."""
    data = Path(leap_env["LEAP_DATA_DIR"])
    made = [
        data / "media" / f"user_{uid}" / "recordings" / str(rid) / "source.mp4",
        data / "imports" / f"user_{uid}" / "talk.mp4",
        data / "exports" / f"user_{uid}" / "talk-final.mp4",
    ]
    for path in made:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 1000)
    return made


def owned(runtime: Runtime, uid: int) -> dict[str, int]:
    """Rows per user-owned table for `uid`, every table taken from the models."""
    with open_context(runtime, Scope.system_scope()) as ctx:
        return {
            m.__tablename__: int(
                ctx.session.scalar(select(func.count()).select_from(m).where(m.user_id == uid)) or 0
            )
            for m in owned_models()
        }


@pytest.fixture
def populated(
    people: dict[str, int], runtime: Runtime, leap_env: dict[str, str], sent: list[Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {"ids": people}
    for name in ("alice", "bob"):
        uid = people[name]
        rows = seed(runtime, uid)
        out[name] = {**rows, "files": files(leap_env, uid, rows["recording"])}
    # Every owned table has a row of each, so deleting one user is tested on every table
    # (a new user-owned table fails here until seed() fills it).
    empty = [t for t, n in owned(runtime, people["alice"]).items() if n == 0]
    assert not empty, f"seed() has no row in {empty}: add one"
    return out


def state(runtime: Runtime, uid: int) -> tuple[dict[str, int], bool]:
    with open_context(runtime, Scope.system_scope()) as ctx:
        exists = ctx.repos.users.get(uid) is not None
    return owned(runtime, uid), exists


# -------------------------------------------------------------------- delete


def test_delete_removes_every_owned_row_and_the_files(
    populated: dict[str, Any], runtime: Runtime, cli: Any
) -> None:
    alice, bob = populated["ids"]["alice"], populated["ids"]["bob"]
    bob_before = owned(runtime, bob)
    alice_before = owned(runtime, alice)

    dry = cli("--user", "root", "--json", "user", "delete", "alice", "--dry-run")
    assert dry.code == 0, dry.stderr
    plan = dry.json()
    assert plan["counts"]["recordings"] == 1 and plan["counts"]["runs_in_progress"] == 1
    assert plan["counts"]["credentials"] == 1 and plan["counts"]["templates"] == 1
    assert plan["bytes_on_disk"] == 3000 and len(plan["folders"]) == 3
    assert "1 run(s) in progress" in dry.stderr and "2.9 KB of files on disk" in dry.stderr
    assert state(runtime, alice) == (alice_before, True)  # a dry run changes nothing

    res = cli("--user", "root", "--json", "user", "delete", "alice", "--yes")
    assert res.code == 0, res.stderr
    out = res.json()
    assert out["deleted"] == "alice" and out["runs_cancelled"] == [populated["alice"]["run"]]
    assert out["bytes_removed"] == 3000 and out["file_errors"] == []
    rows, exists = state(runtime, alice)
    assert not exists
    assert {t: n for t, n in rows.items() if n} == {}  # every owned table, from the models
    assert not any(p.exists() for p in populated["alice"]["files"])
    for p in populated["alice"]["files"]:
        assert not p.parent.exists() or "recordings" in p.parts  # the user's folders went
    data = populated["alice"]["files"][0].parents[3]
    assert not (data / f"user_{alice}").exists()
    # Bob's rows and files are untouched.
    assert owned(runtime, bob) == bob_before
    assert all(p.read_bytes() == b"\0" * 1000 for p in populated["bob"]["files"])
    # The deletion is audited, owned by the admin, with what went.
    [entry] = [
        e
        for e in cli("--user", "root", "--json", "audit", "list").json()
        if e["action"] == "user.delete"
    ]
    assert entry["user"] == "root" and entry["actor"] == "root" and entry["subject"] == "alice"
    assert entry["detail"]["removed"]["recordings"] == 1
    assert entry["detail"]["runs_cancelled"] == 1 and entry["detail"]["bytes_on_disk"] == 3000
    # The name is free again; the new user starts with nothing.
    assert cli("--user", "root", "user", "add", "alice").code == 0
    assert cli("--user", "alice", "--json", "recordings", "list").json() == []


def test_delete_without_a_terminal_or_yes_changes_nothing(
    populated: dict[str, Any], runtime: Runtime, cli: Any
) -> None:
    alice = populated["ids"]["alice"]
    before = state(runtime, alice)
    res = cli("--user", "root", "user", "delete", "alice")
    assert res.code == 2, res.stderr
    assert "--yes" in res.stderr and "nothing was changed" in res.stderr
    assert "1 recording(s)" in res.stderr  # what it would have removed is shown
    assert state(runtime, alice) == before
    assert all(p.exists() for p in populated["alice"]["files"])
    with open_context(runtime, Scope.system_scope()) as ctx:
        run = ctx.repos.runs.require(populated["alice"]["run"])
        assert run.status == RunStatus.ACTIVE.value  # not even cancelled


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_delete_on_a_terminal_asks_for_the_name(
    populated: dict[str, Any], runtime: Runtime, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = populated["ids"]["alice"]
    before = state(runtime, alice)
    monkeypatch.setattr("sys.stdin", Terminal("bob\n"))
    res = cli("--user", "root", "user", "delete", "alice")
    assert res.code == 2 and "not confirmed" in res.stderr, res.stderr
    assert state(runtime, alice) == before
    monkeypatch.setattr("sys.stdin", Terminal("alice\n"))
    res = cli("--user", "root", "user", "delete", "alice")
    assert res.code == 0, res.stderr
    assert "deleted user 'alice'" in res.stderr
    assert state(runtime, alice)[1] is False


@pytest.mark.parametrize(
    ("user", "args", "code", "fragment"),
    [
        ("alice", ("user", "delete", "bob", "--yes"), 2, "only an admin"),
        ("alice", ("user", "delete", "bob", "--dry-run"), 2, "only an admin"),
        ("alice", ("user", "disable", "bob"), 2, "only an admin"),
        ("alice", ("user", "enable", "bob"), 2, "only an admin"),
        ("root", ("user", "delete", "ghost", "--yes"), 3, "unknown user 'ghost'"),
        ("root", ("user", "disable", "ghost"), 3, "unknown user 'ghost'"),
        ("root", ("user", "delete", "root", "--yes"), 2, "cannot delete yourself"),
        ("root", ("user", "disable", "root"), 2, "cannot disable yourself"),
    ],
)
def test_refused(
    people: dict[str, int], cli: Any, user: str, args: tuple[str, ...], code: int, fragment: str
) -> None:
    res = cli("--user", user, *args)
    assert res.code == code, res.stderr
    assert fragment in res.stderr and "Traceback" not in res.stderr
    assert cli("--user", "root", "--json", "user", "show", "bob").json()["disabled"] is False


def test_the_last_admin_stays(people: dict[str, int], runtime: Runtime) -> None:
    # Only a script in the system scope could try (an admin cannot delete themselves).
    with open_context(runtime, Scope.system_scope()) as ctx:
        with pytest.raises(UsageError, match="last admin"):
            user_lifecycle.delete(ctx, "root")
        with pytest.raises(UsageError, match="last admin"):
            user_lifecycle.disable(ctx, "root")
    make_user(runtime, "chief", Role.ADMIN)
    with open_context(runtime, Scope.system_scope()) as ctx:
        user_lifecycle.delete(ctx, "root")  # another admin remains
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert ctx.repos.users.by_name("root") is None
        [entry] = ctx.repos.audit.list(action="user.delete")
        assert entry.actor == "system" and entry.subject == "root"


def test_a_folder_that_cannot_be_removed_is_reported(
    populated: dict[str, Any], runtime: Runtime, cli: Any, tmp_path: Path
) -> None:
    alice = populated["ids"]["alice"]
    exports = populated["alice"]["files"][2].parent
    for p in exports.iterdir():
        p.unlink()
    exports.rmdir()
    elsewhere = tmp_path / "precious"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    exports.symlink_to(elsewhere)  # swapped for a link: never followed, never removed
    res = cli("--user", "root", "user", "delete", "alice", "--yes")
    assert res.code == 8, res.stderr
    assert "symbolic link" in res.stderr and "Traceback" not in res.stderr
    assert state(runtime, alice)[1] is False  # the user is gone all the same
    assert (elsewhere / "keep.txt").read_text() == "keep"


# -------------------------------------------------------------------- a stage in flight


def test_a_stage_in_flight_for_a_deleted_user_ends_quietly(
    populated: dict[str, Any],
    runtime: Runtime,
    cli: Any,
    leap_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker claimed alice's stage and is running it when alice is deleted: its heartbeat
    stops the stage (no warning on every beat), recording the outcome finds nothing to
    record, the files it wrote after the deletion go, and a queue message for one of her
    stages that arrives afterwards ends as not claimed."""
    alice = populated["alice"]
    worker = runner.worker_id()
    claimed = runner._claim(runtime, alice["stage"], worker)
    assert claimed is not None and claimed.user_id == populated["ids"]["alice"]
    progress = Progress()
    beat = runner.Heartbeat(runtime, claimed, worker, progress)
    beat.interval = 0.05
    logger = logging.getLogger("leap")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level("INFO", logger="leap"):
            beat.start()
            assert cli("--user", "root", "user", "delete", "alice", "--yes").code == 0
            assert progress.cancel.wait(5), "the heartbeat did not stop the stage"
            threading.Event().wait(0.3)  # a few more beats: none may warn
            beat.stop()
            # The stage wrote a file after its folders were removed, then finished.
            ws = Path(leap_env["LEAP_DATA_DIR"]) / "media" / f"user_{claimed.user_id}"
            late = ws / "recordings" / str(claimed.recording_id) / "late.mp4"
            late.parent.mkdir(parents=True)
            late.write_bytes(b"late")
            done = StageOutcome(artifacts={"video": str(late)}, result={})
            assert runner._record(runtime, claimed, worker, done, None, False, print) == "gone"
            assert not ws.exists()
            err = UsageError("boom")
            assert runner._record(runtime, claimed, worker, None, err, True, print) == "gone"
            queued: list[Any] = []
            assert runner.execute(runtime, alice["stage"], lambda *m: queued.append(m)) == (
                "not-claimed"
            )
    finally:
        logger.removeHandler(caplog.handler)
    assert queued == []
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noisy == [], [r.getMessage() for r in noisy]
    assert any("run is gone" in r.getMessage() for r in caplog.records)


def test_a_running_stage_sees_its_user_disabled(
    populated: dict[str, Any], runtime: Runtime, cli: Any
) -> None:
    alice = populated["alice"]
    worker = runner.worker_id()
    claimed = runner._claim(runtime, alice["stage"], worker)
    assert claimed is not None
    progress = Progress()
    beat = runner.Heartbeat(runtime, claimed, worker, progress)
    beat.interval = 0.05
    beat.start()
    try:
        assert cli("--user", "root", "user", "disable", "alice").code == 0
        assert progress.cancel.wait(5)
    finally:
        beat.stop()
    done = StageOutcome(artifacts={}, result={})
    # The run was cancelled: the worker lost its lease and records nothing.
    assert runner._record(runtime, claimed, worker, done, None, False, print) == "lost-lease"
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert ctx.repos.stages.require(alice["stage"]).status == StageStatus.CANCELLED.value


# -------------------------------------------------------------------- disable and enable


def test_disable_cancels_queued_work_and_automation_skips_the_user(
    populated: dict[str, Any], runtime: Runtime, cli: Any, sent: list[Any]
) -> None:
    alice, bob = populated["alice"], populated["bob"]
    res = cli("--user", "root", "--json", "user", "disable", "alice")
    assert res.code == 0, res.stderr
    out = res.json()
    assert out["disabled"] is True and out["runs_cancelled"] == [alice["run"]]
    assert out["firings_cancelled"] == 1
    with open_context(runtime, Scope.system_scope()) as ctx:
        run = ctx.repos.runs.require(alice["run"])
        assert (run.status, run.error) == (RunStatus.CANCELLED.value, "cancelled: user disabled")
        stages = ctx.repos.stages.list(run_id=run.id)
        assert {s.status for s in stages} == {StageStatus.CANCELLED.value}
        rec = ctx.repos.recordings.require(alice["recording"])
        assert rec.active_run_id is None and rec.status == RecordingStatus.CANCELLED.value
        firing = ctx.repos.automation_runs.require(alice["firing"])
        assert (firing.status, firing.error) == ("failed", "cancelled: user disabled")
        # Bob's work is untouched.
        assert ctx.repos.runs.require(bob["run"]).status == RunStatus.ACTIVE.value
        assert ctx.repos.automation_runs.require(bob["firing"]).status == "queued"
    # Her queued stage's message, when a worker gets it, starts nothing.
    assert runner.execute(runtime, alice["stage"], lambda *m: None) == "not-claimed"
    # The scheduler's tick claims bob's due job, never hers.
    fired: list[Any] = []
    assert automation.tick(runtime, lambda name, kw: fired.append(kw), now=NOW) == 1
    seeded = (alice["firing"], bob["firing"])
    with open_context(runtime, Scope.system_scope()) as ctx:
        new = [r.user_id for r in ctx.repos.automation_runs.list() if r.id not in seeded]
    assert new == [populated["ids"]["bob"]]
    # A firing claimed just before she was disabled does not run either.
    with open_context(runtime, Scope.system_scope()) as ctx:
        late = ctx.repos.automation_runs.require(alice["firing"])
        late.status, late.error = "queued", None
    assert automation.fire(runtime, alice["firing"])["status"] == "failed"
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert ctx.repos.automation_runs.require(alice["firing"]).error == (
            "cancelled: user disabled"
        )
    # She can no longer act.
    for args in (("sync",), ("process", str(alice["recording"])), ("whoami",)):
        res = cli("--user", "alice", *args)
        assert res.code == 2 and "disabled" in res.stderr, (args, res.stderr)
    # Enabled again: she may act; what was cancelled stays cancelled, and the output says so.
    enabled_at = datetime.now(UTC)
    res = cli("--user", "root", "user", "enable", "alice")
    assert res.code == 0 and "stay cancelled" in res.stderr, res.stderr
    with open_context(runtime, Scope.system_scope()) as ctx:
        [job] = ctx.repos.automations.list(user_id=populated["ids"]["alice"])
        assert job.last_planned_at is not None
        # From now: the days she was disabled are not caught up.
        assert job.last_planned_at.replace(tzinfo=UTC) >= enabled_at
    assert cli("--user", "alice", "whoami").code == 0
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert ctx.repos.runs.require(alice["run"]).status == RunStatus.CANCELLED.value
    audit = [
        e
        for e in cli("--user", "root", "--json", "audit", "list").json()
        if e["action"] in ("user.disable", "user.enable")
    ]
    assert [(e["action"], e["user"]) for e in audit] == [
        ("user.enable", "root"),
        ("user.disable", "root"),
    ]
    assert audit[1]["detail"] == {"runs_cancelled": 1, "firings_cancelled": 1}


# -------------------------------------------------------------------- timezone and plan


def test_timezone_and_plan_take_effect_at_once(people: dict[str, int], cli: Any) -> None:
    def quota() -> dict[str, Any]:
        res = cli("--user", "alice", "--json", "quota", "show")
        assert res.code == 0, res.stderr
        return dict(res.json())

    def limit(data: dict[str, Any], key: str) -> Any:
        return next(r["value"] for r in data["limits"] if r["limit"] == key)

    before = quota()
    assert before["period_start"].endswith("+00:00")  # UTC, the install's default
    assert cli("--user", "alice", "user", "set-timezone", "alice", "Asia/Tokyo").code == 0
    after = quota()
    assert after["period_start"].endswith("+09:00") and after["period_end"].endswith("+09:00")
    start = datetime.fromisoformat(after["period_start"])
    assert (start.hour, start.minute) == (0, 0)  # local midnight in Tokyo
    pro = cli("--user", "alice", "--json", "plan", "show", "pro").json()["limits"]
    assert limit(after, "recordings_per_month") != pro["recordings_per_month"]
    assert cli("--user", "root", "user", "set-plan", "alice", "pro").code == 0
    now = quota()
    assert now["plan"] == "pro"
    assert {r["limit"]: r["value"] for r in now["limits"]} == pro
