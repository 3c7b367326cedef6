"""Quota enforcement where work is committed (issue 17): starting a run takes a recording of
the period (once per recording), concurrent runs and standing limits are checked on start and
create, paid work reserves before and settles after, and two starters racing for the last
unit never both win, on SQLite and PostgreSQL, in threads and in two processes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from leap.context import Runtime, open_context
from leap.db import models as m
from leap.db.scope import Scope
from leap.errors import QuotaExceeded
from leap.services import bulk_start, metering, runs
from leap.specs import startable
from tests.conftest import leap_process, make_user

T0 = datetime(2026, 11, 20, 9, tzinfo=UTC)


def _uid(runtime: Runtime, name: str) -> int:
    with open_context(runtime, Scope.system_scope()) as ctx:
        return ctx.repos.users.require_name(name).id


def _limit(runtime: Runtime, name: str, key: str, value: float | None) -> None:
    uid = _uid(runtime, name)
    with open_context(runtime, Scope.for_user(uid)) as ctx:
        row = ctx.repos.quota_overrides.find(user_id=uid, key=key)
        if row is None:
            ctx.repos.quota_overrides.add(m.QuotaOverride(key=key, value=value))
        else:
            row.value = value


def _events(runtime: Runtime, uid: int, kind: str) -> list[m.UsageEvent]:
    with open_context(runtime, Scope.system_scope()) as ctx:
        rows = ctx.repos.usage.list(user_id=uid, kind=kind)
        ctx.session.expunge_all()
        return rows


@pytest.fixture
def lab(leap_env: dict[str, str], runtime: Runtime) -> list[int]:
    """alice (free plan: 10 recordings a month) with six fresh, mapped recordings; no queue."""
    make_user(runtime, "alice")
    runtime.enqueue = lambda *_: None
    ids = []
    with open_context(runtime, Scope.for_user(_uid(runtime, "alice"))) as ctx:
        src = ctx.repos.sources.add(m.InputSource(name="inbox", kind="local", config={}))
        tpl = ctx.repos.templates.add(m.Template(name="lectures"))
        for i in range(6):
            rec = ctx.repos.recordings.add(
                m.Recording(
                    source_id=src.id,
                    external_id=f"r{i}",
                    title=f"talk {i}",
                    start_time=T0 - timedelta(hours=i),
                    template_id=tpl.id,
                )
            )
            ids.append(rec.id)
    return ids


# ---------------------------------------------------------------- the budget (pure part)


def _meter(limits: dict[str, Any]) -> metering.Meter:
    user = m.User(name="u", timezone="Europe/Berlin")
    start = datetime(2026, 11, 5, tzinfo=UTC)
    from leap.specs.quota import LIMITS

    return metering.Meter(
        user,
        start,
        datetime(2026, 12, 5, tzinfo=UTC),
        {k: (limits.get(k), "plan t") for k in LIMITS},
    )


def test_budget_takes_a_unit_per_new_recording_and_a_slot_per_run() -> None:
    b = metering.Budget(_meter({"recordings_per_month": 3}), 1.0, None, recordings_used=2)
    b.paid = {7}
    assert b.take(7) is None  # paid this period already: free
    assert b.take(8) is None  # the last unit
    assert b.take(8) is None  # the same recording again in this command: no second unit
    refusal = b.take(9)
    assert refusal is not None and refusal.resets_at == datetime(2026, 12, 5, tzinfo=UTC)
    assert refusal.message == (
        "quota recordings_per_month reached: 3 of 3 used (plan t); "
        "resets 2026-12-05 01:00 Europe/Berlin"
    )
    runs_only = metering.Budget(_meter({"concurrent_runs": 1}), None, 1.0)
    assert runs_only.take(1) is None
    slot = runs_only.take(2)
    assert slot is not None and slot.resets_at is None
    assert "concurrent_runs reached: 1 of 1 (plan t); frees up" in slot.message


# ---------------------------------------------------------------- starting runs


def test_process_starts_what_fits_and_names_the_limit_for_the_rest(
    lab: list[int], runtime: Runtime, cli: Any
) -> None:
    _limit(runtime, "alice", "recordings_per_month", 4)
    ids = [str(i) for i in lab]
    dry = cli("--user", "alice", "--json", "process", *ids, "--dry-run")
    assert dry.code == 0, dry.stderr
    plan = dry.json()
    assert [r["would"] for r in plan] == ["process"] * 4 + ["wait"] * 2
    assert "4 would process; 2 would wait for quota" in dry.stderr
    assert all("recordings_per_month reached: 4 of 4 used" in r["reason"] for r in plan[4:])
    res = cli("--user", "alice", "--json", "process", *ids)
    assert res.code == 8, res.stderr  # some started: a partial result
    assert "2 of 6 recording(s) were not started" in res.stderr
    rows = res.json()
    started = [r for r in rows if r.get("run_id")]
    assert [r["recording_id"] for r in started] == lab[:4]
    refused = [r for r in rows if not r.get("run_id")]
    assert {r["exit_code"] for r in refused} == {4}
    assert "resets 2026-12-" in refused[0]["error"] or "resets 2027-" in refused[0]["error"]
    uid = _uid(runtime, "alice")
    assert sorted(e.recording_id for e in _events(runtime, uid, "recordings")) == lab[:4]


def test_one_recording_over_the_limit_exits_4_naming_limit_use_and_reset(
    lab: list[int], runtime: Runtime, cli: Any
) -> None:
    _limit(runtime, "alice", "recordings_per_month", 0)
    res = cli("--user", "alice", "process", str(lab[0]))
    assert res.code == 4
    line = res.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "recordings_per_month reached: 0 of 0 used (custom); resets " in line
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert ctx.repos.runs.count() == 0


def test_a_recording_costs_one_unit_per_period_however_many_runs(
    lab: list[int], runtime: Runtime, cli: Any
) -> None:
    _limit(runtime, "alice", "recordings_per_month", 1)
    assert cli("--user", "alice", "process", str(lab[0])).code == 0
    with open_context(runtime, Scope.system_scope()) as ctx:  # the run ends
        rec = ctx.repos.recordings.require(lab[0])
        run = ctx.repos.runs.require(rec.active_run_id)
        run.status, rec.active_run_id, rec.status = "done", None, "ready"
    again = cli("--user", "alice", "process", str(lab[0]), "--force")
    assert again.code == 0, again.stderr  # the same recording again: paid already
    assert cli("--user", "alice", "process", str(lab[1])).code == 4
    assert len(_events(runtime, _uid(runtime, "alice"), "recordings")) == 1


def test_concurrent_runs_limit_holds_starts_until_one_ends(
    lab: list[int], runtime: Runtime, cli: Any
) -> None:
    _limit(runtime, "alice", "concurrent_runs", 2)
    res = cli("--user", "alice", "--json", "process", *map(str, lab[:3]))
    assert res.code == 8
    rows = res.json()
    assert [bool(r.get("run_id")) for r in rows] == [True, True, False]
    assert "concurrent_runs reached: 2 of 2 (custom)" in rows[2]["error"]


def test_single_start_path_takes_the_same_quota(lab: list[int], runtime: Runtime) -> None:
    """runs.start_run (automation, `leap approve`) refuses like a bulk start."""
    _limit(runtime, "alice", "recordings_per_month", 1)
    with open_context(runtime, Scope.for_user(_uid(runtime, "alice"))) as ctx:
        runs.start_run(ctx, lab[0])
    with (
        pytest.raises(QuotaExceeded, match="recordings_per_month reached: 1 of 1"),
        open_context(runtime, Scope.for_user(_uid(runtime, "alice"))) as ctx,
    ):
        runs.start_run(ctx, lab[1])


def test_the_admin_is_limited_like_anyone_unless_unlimited(
    lab: list[int], runtime: Runtime, cli: Any
) -> None:
    from leap.domain import Role
    from tests.conftest import put_on_plan

    make_user(runtime, "root", role=Role.ADMIN)  # on the free plan, like any new user
    _limit(runtime, "root", "recordings_per_month", 0)
    with open_context(runtime, Scope.for_user(_uid(runtime, "root"), is_admin=True)) as ctx:
        src = ctx.repos.sources.add(m.InputSource(name="in", kind="local", config={}))
        tpl = ctx.repos.templates.add(m.Template(name="t"))
        rid = ctx.repos.recordings.add(
            m.Recording(
                source_id=src.id, external_id="x", title="x", start_time=T0, template_id=tpl.id
            )
        ).id
    res = cli("--user", "root", "process", str(rid))
    assert res.code == 4 and "recordings_per_month reached: 0 of 0 used (custom)" in res.stderr
    # With the custom limit lifted (unlimited) and on the unlimited plan, it goes through.
    _limit(runtime, "root", "recordings_per_month", None)
    put_on_plan(runtime, "root", "enterprise")
    assert cli("--user", "root", "process", str(rid)).code == 0


# ---------------------------------------------------------------- the race for the last unit


def _race_threads(runtime: Runtime, ids: list[int]) -> list[bool]:
    """Each id started by its own thread, all released at once; which ones started."""
    uid = _uid(runtime, "alice")
    gate = threading.Barrier(len(ids))

    def one(rid: int) -> bool:
        gate.wait()
        with open_context(runtime, Scope.for_user(uid)) as ctx:
            planner = bulk_start.Planner(ctx)
            recs, _ = bulk_start.id_page(ctx, [rid])
            return bool(planner.start(ctx, recs).run_of)

    with ThreadPoolExecutor(len(ids)) as pool:
        return list(pool.map(one, ids))


def test_threads_racing_for_the_last_recording_never_both_win(
    lab: list[int], runtime: Runtime
) -> None:
    for rnd in range(3):  # each round frees exactly one more unit
        _limit(runtime, "alice", "recordings_per_month", rnd + 1)
        free = lab[2 * rnd : 2 * rnd + 2]
        won = _race_threads(runtime, free)
        assert sum(won) == 1, (rnd, won)
    uid = _uid(runtime, "alice")
    assert len(_events(runtime, uid, "recordings")) == 3
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert ctx.repos.runs.count() == 3


def test_two_processes_racing_for_the_last_recording_never_both_win(
    lab: list[int], runtime: Runtime, leap_env: dict[str, str]
) -> None:
    _limit(runtime, "alice", "recordings_per_month", 1)
    env = {**leap_env, "LEAP_USER": "alice"}
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda rid: leap_process("process", str(rid), env=env), lab[:2]))
    codes = sorted(r.code for r in results)
    assert codes == [0, 4], [(r.code, r.stderr) for r in results]
    loser = next(r for r in results if r.code == 4)
    assert "recordings_per_month reached: 1 of 1 used" in loser.stderr
    assert len(_events(runtime, _uid(runtime, "alice"), "recordings")) == 1


def test_reservations_race_for_the_last_minutes(lab: list[int], runtime: Runtime) -> None:
    """Paid minutes: eight threads each reserve 10 minutes under a 30-minute limit."""
    _limit(runtime, "alice", "transcription_minutes_per_month", 30)
    uid = _uid(runtime, "alice")
    gate = threading.Barrier(8)

    def one(i: int) -> bool:
        gate.wait()
        try:
            with open_context(runtime, Scope.for_user(uid)) as ctx:
                metering.reserve(ctx, uid, "transcription_minutes", 10, ref=f"transcribe:{i}")
        except QuotaExceeded:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(one, range(8)))
    assert sum(won) == 3
    with open_context(runtime, Scope.system_scope()) as ctx:
        total = ctx.session.scalar(select(func.sum(m.UsageEvent.amount)))
    assert total == 30


# ---------------------------------------------------------------- reservations


def test_reserve_settle_release_and_the_same_ref_twice(lab: list[int], runtime: Runtime) -> None:
    _limit(runtime, "alice", "youtube_uploads_per_month", 2)
    uid = _uid(runtime, "alice")
    with open_context(runtime, Scope.for_user(uid)) as ctx:
        metering.reserve(ctx, uid, "youtube_uploads", 1, ref="upload:1", platform="youtube")
        metering.reserve(ctx, uid, "youtube_uploads", 1, ref="upload:1")  # a retry: no 2nd
        metering.reserve(ctx, uid, "youtube_uploads", 1, ref="upload:2")
    with (
        pytest.raises(QuotaExceeded, match="youtube_uploads_per_month reached: 2 of 2") as err,
        open_context(runtime, Scope.for_user(uid)) as ctx,
    ):
        metering.reserve(ctx, uid, "youtube_uploads", 1, ref="upload:3")
    assert err.value.resets_at is not None and err.value.exit_code == 4
    with open_context(runtime, Scope.for_user(uid)) as ctx:
        metering.release(ctx, "upload:2")  # that upload never happened
        metering.settle(ctx, "upload:1", 1)
        metering.reserve(ctx, uid, "youtube_uploads", 1, ref="upload:3")
    events = {e.ref: e for e in _events(runtime, uid, "youtube_uploads")}
    assert set(events) == {"upload:1", "upload:3"}
    assert events["upload:1"].detail == {"platform": "youtube"}  # settled: no longer reserved
    assert events["upload:3"].detail == {"reserved": True}


def test_an_upload_counts_toward_both_its_platform_and_all_uploads(
    lab: list[int], runtime: Runtime
) -> None:
    _limit(runtime, "alice", "uploads_per_month", 1)
    uid = _uid(runtime, "alice")
    with open_context(runtime, Scope.for_user(uid)) as ctx:
        metering.reserve(ctx, uid, "vk_uploads", 1, ref="upload:1")
    with (
        pytest.raises(QuotaExceeded, match="uploads_per_month reached: 1 of 1"),
        open_context(runtime, Scope.for_user(uid)) as ctx,
    ):
        metering.reserve(ctx, uid, "youtube_uploads", 1, ref="upload:2")


def test_usage_of_the_last_period_does_not_count(lab: list[int], runtime: Runtime) -> None:
    _limit(runtime, "alice", "recordings_per_month", 1)
    uid = _uid(runtime, "alice")
    with open_context(runtime, Scope.for_user(uid)) as ctx:
        ctx.repos.usage.add(
            m.UsageEvent(kind="recordings", amount=5, at=datetime.now(UTC) - timedelta(days=40))
        )
        runs.start_run(ctx, lab[0])


# ---------------------------------------------------------------- standing limits


def test_standing_limits_refuse_the_create_past_them(
    lab: list[int], runtime: Runtime, cli: Any, tmp_path: Path
) -> None:
    _limit(runtime, "alice", "templates", 1)  # alice has "lectures" already
    (tmp_path / "t.toml").write_text('name = "more"\n[match]\nregex = [".+"]\n')
    res = cli("--user", "alice", "template", "add", "--file", str(tmp_path / "t.toml"))
    assert res.code == 4
    assert "quota templates reached: 1 of 1 (custom)" in res.stderr
    _limit(runtime, "alice", "sources", 1)
    folder = tmp_path / "in"
    folder.mkdir()
    res = cli("--user", "alice", "source", "add", "local", "second", str(folder))
    assert res.code == 4 and "quota sources reached" in res.stderr
    _limit(runtime, "alice", "templates", None)  # unlimited again
    assert cli("--user", "alice", "template", "add", "--file", str(tmp_path / "t.toml")).code == 0


def test_storage_limit_fails_a_download_at_the_limit(lab: list[int], runtime: Runtime) -> None:
    uid = _uid(runtime, "alice")
    media = runtime.settings.media_path
    folder = media / f"user_{uid}" / "recordings" / "1"
    folder.mkdir(parents=True)
    (folder / "big.bin").write_bytes(b"\0" * 2_000_000)
    _limit(runtime, "alice", "storage_gb", 0.001)  # about 1 MB
    with (
        pytest.raises(QuotaExceeded, match=r"quota storage_gb reached: 0\.002 of 0\.001"),
        open_context(runtime, Scope.for_user(uid)) as ctx,
    ):
        metering.check_storage(ctx, uid, media)
    _limit(runtime, "alice", "storage_gb", 1)
    with open_context(runtime, Scope.for_user(uid)) as ctx:
        metering.check_storage(ctx, uid, media)


def test_quota_skip_is_a_decision_with_exit_code_4() -> None:
    d = startable.Decision(1, "t", True)
    waits = startable.waits_for_quota(d, "quota x reached")
    assert (waits.act, waits.exit_code, waits.reason) == (False, 4, "quota x reached")


def test_retry_is_a_start_for_the_quota(lab: list[int], runtime: Runtime, cli: Any) -> None:
    """A failed run from the last period, retried in this one, takes this period's unit."""
    uid = _uid(runtime, "alice")
    with open_context(runtime, Scope.for_user(uid)) as ctx:
        for rid in lab[:2]:
            run = ctx.repos.runs.add(
                m.PipelineRun(recording_id=rid, stages=["download"], status="failed")
            )
            ctx.repos.stages.add(
                m.StageResult(
                    run_id=run.id, recording_id=rid, name="download", position=0, status="failed"
                )
            )
            ctx.repos.recordings.require(rid).status = "failed"
    _limit(runtime, "alice", "recordings_per_month", 1)
    assert cli("--user", "alice", "retry", str(lab[0])).code == 0
    res = cli("--user", "alice", "retry", str(lab[1]))
    assert res.code == 4 and "recordings_per_month reached: 1 of 1 used" in res.stderr
    assert [e.recording_id for e in _events(runtime, uid, "recordings")] == [lab[0]]


PAID = """name = "talks"
[match]
regex = [".+"]
[blank]
min_duration_minutes = 0
min_size_mb = 0
[processing]
stages = ["download", "trim", "transcribe"]
[processing.transcription]
provider = "fireworks"
"""


def test_paid_minutes_over_the_quota_wait_for_the_reset_not_fail(
    leap_env: dict[str, str], runtime: Runtime, cli: Any, tmp_path: Path
) -> None:
    """`process --now`: download and trim run, the paid transcription is not called (no
    Fireworks here: a call would fail), its stage waits for the period's reset; exit 4."""
    from tests import media

    inbox = tmp_path / "inbox"
    media.make_silence_tone_silence(inbox / "talk.mp4", lead=2, tone=6, tail=2)
    (tmp_path / "t.toml").write_text(PAID)
    for args in (
        ("init", "--yes"),
        ("source", "add", "local", "in", str(inbox)),
        ("template", "add", "--file", str(tmp_path / "t.toml")),
        ("sync",),
    ):
        res = cli(*args)
        assert res.code == 0, (args, res.stderr)
    me = cli("--json", "whoami").json()["name"]
    assert cli("user", "set-quota", me, "transcription_minutes_per_month=0.1").code == 0
    res = cli("process", "1", "--now")
    assert res.code == 4
    assert (
        res.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "error: transcribe: quota transcription_minutes_per_month reached: 0 of 0.1 used "
            "(needs 0.17 more) (custom); resets "
        )
    )
    shown = cli("--json", "status", "1").json()
    stages = {s["name"]: s for s in shown["runs"][0]["stages"]}
    assert stages["trim"]["status"] == "done"
    assert stages["transcribe"]["status"] == "queued"
    assert stages["transcribe"]["waiting"].startswith("quota transcription_minutes_per_month")
    until = datetime.fromisoformat(stages["transcribe"]["not_before"].replace("Z", "+00:00"))
    assert until > datetime.now(UTC) + timedelta(days=20)  # the period's end, a month out
    uid = _uid(runtime, me)
    assert _events(runtime, uid, "transcription_minutes") == []  # nothing taken
