"""Automation jobs: schedules on the wall clock of the owner's timezone (DST included), the
tick that claims each planned time once however many processes run it, missed firings that
run once, and the firing itself (sync, then process; dry-run changes nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from leap.context import Runtime, open_context
from leap.db.scope import Scope
from leap.errors import UsageError
from leap.services import automation
from leap.specs.schedule import fire_times, parse_schedule, shortest_gap
from tests import media

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def local(times: list[datetime], tz: ZoneInfo) -> list[str]:
    return [t.astimezone(tz).strftime("%m-%d %H:%M %Z") for t in times]


def fires(schedule: dict[str, Any], tz: ZoneInfo, start: datetime, days: int) -> list[datetime]:
    return list(fire_times(parse_schedule(schedule), tz, start, start + timedelta(days=days)))


# -- schedules: the pure core ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "spring", "autumn"),
    [
        (BERLIN, datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 10, 24, tzinfo=UTC)),
        (NEW_YORK, datetime(2026, 3, 7, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC)),
    ],
)
def test_a_0230_job_fires_once_on_both_change_days(
    tz: ZoneInfo, spring: datetime, autumn: datetime
) -> None:
    daily = {"kind": "daily", "at": "02:30"}
    # Spring: 02:30 does not exist; it fires once, when the clock has passed it (03:30).
    spring_fires = fires(daily, tz, spring, 3)
    assert len(spring_fires) == 3
    assert [t.astimezone(tz).hour for t in spring_fires] == [2, 3, 2]
    # Autumn: 02:30 happens twice (New York: 01:30 does); 02:30 fires at its first.
    autumn_fires = fires(daily, tz, autumn, 3)
    assert len(autumn_fires) == 3 and len(set(autumn_fires)) == 3
    assert [t.astimezone(tz).strftime("%H:%M") for t in autumn_fires] == ["02:30"] * 3
    gaps = {b - a for a, b in pairwise(autumn_fires)}
    assert gaps <= {timedelta(hours=24), timedelta(hours=25)}


def test_an_ambiguous_time_fires_at_its_first_occurrence() -> None:
    # New York falls back at 02:00 EDT -> 01:00 EST: 01:30 happens twice.
    [once] = fires({"kind": "daily", "at": "01:30"}, NEW_YORK, datetime(2026, 11, 1, tzinfo=UTC), 1)
    assert once == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT, not 01:30 EST


def test_every_n_hours_follows_the_wall_clock_each_hour_once() -> None:
    start = datetime(2026, 10, 24, 22, tzinfo=UTC)  # Berlin: the night the clocks go back
    hourly = fires({"kind": "hours", "every": 1}, BERLIN, start, 1)
    walls = [t.astimezone(BERLIN).strftime("%H") for t in hourly]
    assert len(walls) == len(set(walls)) == 23  # 02 once, though the day has 25 hours
    six = fires({"kind": "hours", "every": 6, "minute": 15}, BERLIN, start, 2)
    assert {t.astimezone(BERLIN).strftime("%H:%M") for t in six} == {
        "00:15",
        "06:15",
        "12:15",
        "18:15",
    }


def test_weekdays_and_cron_use_the_local_week() -> None:
    start = datetime(2026, 12, 6, 12, tzinfo=UTC)  # a Sunday
    weekdays = fires(
        {"kind": "weekdays", "days": ["mon", "Thursday"], "at": "09:00"}, BERLIN, start, 7
    )
    assert local(weekdays, BERLIN) == ["12-07 09:00 CET", "12-10 09:00 CET"]
    # Cron counts Sunday as 0 (APScheduler 3 would read 0 as Monday); 1-5 is Monday-Friday.
    cron = fires({"kind": "cron", "expr": "0 9 * * 0"}, BERLIN, start, 8)
    assert local(cron, BERLIN) == ["12-13 09:00 CET"]
    workdays = fires({"kind": "cron", "expr": "30 7 * * 1-5"}, NEW_YORK, start, 7)
    assert [t.astimezone(NEW_YORK).strftime("%a") for t in workdays] == [
        "Mon",
        "Tue",
        "Wed",
        "Thu",
        "Fri",
    ]
    assert fires({"kind": "cron", "expr": "0 9 * * 7"}, BERLIN, start, 8) == cron


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ({"kind": "cron", "expr": "0 0 * * * *"}, "has 6 fields"),
        ({"kind": "cron", "expr": "61 * * * *"}, "schedule.expr"),
        ({"kind": "cron", "expr": "0 9 * * 8"}, "out of range"),
        ({"kind": "daily", "at": "24:00"}, "schedule.at"),
        ({"kind": "daily", "at": "9:00", "every": 2}, "schedule.every"),
        ({"kind": "weekdays", "days": ["funday"], "at": "09:00"}, "schedule.days"),
        ({"kind": "hours", "every": 0}, "schedule.every"),
        ({"kind": "weekly"}, "schedule.kind"),
        ("daily", "expected a table"),
    ],
)
def test_bad_schedules_name_the_key(schedule: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_schedule(schedule)


def test_shortest_gap() -> None:
    assert shortest_gap(parse_schedule({"kind": "cron", "expr": "*/5 * * * *"})) == timedelta(
        minutes=5
    )
    assert shortest_gap(parse_schedule({"kind": "hours", "every": 6})) == timedelta(hours=6)
    assert shortest_gap(parse_schedule({"kind": "daily", "at": "07:00"})) == timedelta(days=1)


# -- jobs through the CLI -------------------------------------------------------------------------


JOB = """
name = "nightly"
[schedule]
kind = "daily"
at = "09:00"
[action]
sources = ["inbox"]
"""


@pytest.fixture
def installed(
    leap_env: dict[str, str], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    monkeypatch.setenv("LEAP_SYNC__LOCAL_SETTLE_SECONDS", "0")
    assert cli("init", "--yes").code == 0
    assert cli("user", "set-timezone", "admin", "Europe/Berlin").code == 0
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    media.make_video(inbox / "Lecture one.mp4", 2)
    media.make_video(inbox / "Lecture two.mp4", 2)
    assert cli("source", "add", "local", "inbox", str(inbox)).code == 0
    template = tmp_path / "t.toml"
    template.write_text(
        'name = "lectures"\n[match]\nregex = ["Lecture"]\n[blank]\nmin_duration_minutes = 0\n'
        'min_size_mb = 0\n[processing]\nstages = ["download"]\n'
    )
    assert cli("template", "add", "--file", str(template)).code == 0
    return cli


def job_file(tmp_path: Path, text: str, name: str = "job.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_jobs_are_checked_when_saved(installed: Any, tmp_path: Path) -> None:
    cli = installed
    cases = {
        JOB.replace('"inbox"', '"nope"'): "action.sources: no source named 'nope'",
        JOB + 'templates = ["gone"]\n': "action.templates: no template named 'gone'",
        JOB.replace('kind = "daily"\nat = "09:00"', 'kind = "cron"\nexpr = "*/5 * * * *"'): (
            "more often than automation.min_interval_minutes allows (15 min)"
        ),
        JOB.replace('kind = "daily"\nat = "09:00"', 'kind = "cron"\nexpr = "0 0 * * * *"'): (
            "has 6 fields"
        ),
        JOB + "retries = 3\n": "action.retries: not a key",
        'name = "x"\n': "schedule: missing",
    }
    for text, message in cases.items():
        res = cli("automation", "add", "--file", job_file(tmp_path, text))
        assert res.code == 2, (text, res.stderr)
        assert message in res.stderr and "Traceback" not in res.stderr
    assert cli("--json", "automation", "list").json() == []


def test_add_list_disable_enable(installed: Any, tmp_path: Path) -> None:
    cli = installed
    res = cli("--json", "automation", "add", "--file", job_file(tmp_path, JOB))
    assert res.code == 0, res.stderr
    job = res.json()
    assert job["schedule"] == "daily at 09:00" and job["enabled"] is True
    # The next firing is 09:00 Berlin time, as UTC.
    nxt = datetime.fromisoformat(job["next_run_at"].replace("Z", "+00:00"))
    assert nxt.astimezone(BERLIN).strftime("%H:%M") == "09:00"
    assert cli("automation", "add", "--file", job_file(tmp_path, JOB)).code == 7
    off = cli("--json", "automation", "disable", "nightly").json()
    assert off["enabled"] is False and off["next_run_at"] is None
    on = cli("--json", "automation", "enable", "nightly").json()
    assert on["next_run_at"] == job["next_run_at"]


# -- the tick -------------------------------------------------------------------------------------


def add_job(runtime: Runtime, text: str, *, at: datetime) -> None:
    import tomllib

    from leap.specs.automation import parse_job

    with open_context(runtime, admin_scope(runtime)) as ctx:
        automation.add(ctx, parse_job(tomllib.loads(text)), now=at)


def admin_scope(runtime: Runtime) -> Scope:
    with open_context(runtime, Scope.system_scope()) as ctx:
        admin = ctx.repos.users.require_name("admin")
        return Scope.for_user(admin.id, is_admin=True)


def firings(runtime: Runtime) -> list[dict[str, Any]]:
    with open_context(runtime, Scope.system_scope()) as ctx:
        return [
            {"planned": r.planned_at, "status": r.status, "summary": r.summary}
            for r in ctx.repos.automation_runs.list()
        ]


class Sent:
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, kwargs: dict[str, Any]) -> None:
        self.messages.append((name, kwargs))


def berlin(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=BERLIN).astimezone(UTC)


def test_tick_fires_each_planned_time_once(installed: Any, runtime: Runtime) -> None:
    add_job(runtime, JOB, at=berlin(2026, 12, 7, 8))
    sent = Sent()
    assert automation.tick(runtime, sent, now=berlin(2026, 12, 7, 8, 59, 59)) == 0
    assert automation.tick(runtime, sent, now=berlin(2026, 12, 7, 9, 0, 10)) == 1
    assert automation.tick(runtime, sent, now=berlin(2026, 12, 7, 9, 0, 25)) == 0
    assert automation.tick(runtime, sent, now=berlin(2026, 12, 8, 9, 0, 5)) == 1
    [first, second] = firings(runtime)
    assert first["status"] == second["status"] == "queued"
    # A firing still queued a day later lost its message (Huey is at-most-once): the tick
    # sends it again; each planned time is one row, whatever is re-sent.
    assert {m[0] for m in sent.messages} == {automation.FIRE_TASK}
    assert {m[1]["run_id"] for m in sent.messages} == {1, 2}


def test_missed_firings_run_once_within_grace(installed: Any, runtime: Runtime) -> None:
    add_job(runtime, JOB, at=berlin(2026, 12, 1, 8))
    sent = Sent()
    # leapd was down from the 1st to the 4th at 09:20: three planned times passed.
    assert automation.tick(runtime, sent, now=berlin(2026, 12, 4, 9, 20)) == 1
    [run] = firings(runtime)
    assert run["status"] == "queued" and run["summary"] == {"coalesced": 3}
    assert automation.tick(runtime, sent, now=berlin(2026, 12, 4, 9, 21)) == 0
    # Down past the grace (60 min): recorded as missed, not run.
    assert automation.tick(runtime, sent, now=berlin(2026, 12, 5, 11, 0)) == 1
    assert firings(runtime)[-1]["status"] == "missed"
    assert {m[1]["run_id"] for m in sent.messages} == {1}  # the missed one is never sent


def test_concurrent_ticks_claim_once(installed: Any, runtime: Runtime) -> None:
    add_job(runtime, JOB, at=berlin(2026, 12, 7, 8))
    moment = berlin(2026, 12, 7, 9, 0, 3)
    claimed: list[int] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        barrier.wait()
        claimed.append(automation.tick(runtime, Sent(), now=moment))

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(claimed) == 1 and len(firings(runtime)) == 1


TICKER = """
import sys, time
from datetime import datetime
from leap.config import load_settings
from leap.context import Runtime
from leap.services import automation
runtime = Runtime.from_settings(load_settings())
moment = datetime.fromisoformat(sys.argv[1])
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.005)
n = 0
for _ in range(5):
    n += automation.tick(runtime, lambda name, kw: None, now=moment)
print(n)
"""


def test_three_processes_fire_a_planned_time_once(
    installed: Any, runtime: Runtime, leap_env: dict[str, str]
) -> None:
    """Three processes (as three leapd would) tick at the same instant, five times each."""
    add_job(runtime, JOB, at=berlin(2026, 12, 7, 8))
    moment = berlin(2026, 12, 7, 9, 0, 2).isoformat()
    import time

    start = str(time.time() + 1.5)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TICKER, moment, start],
            env={**os.environ, **leap_env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outs.append(int(out.strip()))
    assert sum(outs) == 1
    assert len(firings(runtime)) == 1


# -- a firing -------------------------------------------------------------------------------------


def recording_count(cli: Any) -> int:
    return len(cli("--json", "recordings", "list").json())


def test_dry_run_changes_nothing_then_the_real_run_does_it(installed: Any, tmp_path: Path) -> None:
    cli = installed
    assert cli("automation", "add", "--file", job_file(tmp_path, JOB)).code == 0
    dry = cli("--json", "automation", "run", "nightly", "--dry-run")
    assert dry.code == 0, dry.stderr
    report = dry.json()
    assert report["status"] == "done" and report["processed"] == []
    assert [s["new"] for s in report["synced"]] == [2]
    assert recording_count(cli) == 0  # the dry run stored nothing
    real = cli("--json", "automation", "run", "nightly")
    assert real.code == 0, real.stderr
    done = real.json()
    assert [s["new"] for s in done["synced"]] == [2] and len(done["processed"]) == 2
    statuses = {r["status"] for r in cli("--json", "recordings", "list").json()}
    assert statuses == {"queued"}
    history = cli("--json", "automation", "history", "nightly").json()
    assert [h["dry_run"] for h in history] == [False, True]
    assert all(h["trigger"] == "manual" and h["status"] == "done" for h in history)
    # Nothing new to process the second time: processed recordings are not queued again.
    again = cli("--json", "automation", "run", "nightly").json()
    assert again["processed"] == [] and [s["new"] for s in again["synced"]] == [0]


def test_a_deleted_template_fails_the_firing_not_the_scheduler(
    installed: Any, tmp_path: Path
) -> None:
    cli = installed
    text = JOB + 'templates = ["lectures"]\n'
    assert cli("automation", "add", "--file", job_file(tmp_path, text)).code == 0
    assert cli("template", "remove", "lectures").code == 0
    res = cli("--json", "automation", "run", "nightly")
    assert res.code == 8
    out = json.loads(res.stdout)
    assert out["status"] == "failed" and "lectures" in out["error"]
    [row] = cli("--json", "automation", "history").json()
    assert row["status"] == "failed" and "lectures" in row["error"]


# -- through leapd -------------------------------------------------------------------------------


HOURLY = """
name = "hourly"
[schedule]
kind = "hours"
every = 1
[action]
sources = ["inbox"]
"""


@pytest.mark.slow
def test_leapd_fires_a_missed_planned_time_once_at_start_and_processes(
    installed: Any,
    tmp_path: Path,
    leap_env: dict[str, str],
    runtime: Runtime,
) -> None:
    from tests.leapd import start_leapd, stop, wait_until

    cli = installed
    assert cli("automation", "add", "--file", job_file(tmp_path, HOURLY)).code == 0
    # leapd was down for the last two planned times: the newer is within the grace.
    with open_context(runtime, Scope.system_scope()) as ctx:
        [job] = ctx.repos.automations.list()
        job.last_planned_at = datetime.now(UTC) - timedelta(hours=2, minutes=1)
    env = {
        **leap_env,
        "LEAP_AUTOMATION__TICK_SECONDS": "1",
        "LEAP_QUEUE__MAX_DELAY": "0.2",
        "LEAP_SYNC__LOCAL_SETTLE_SECONDS": "0",
        "LEAP_WORKER__SHUTDOWN_TIMEOUT": "2",
    }
    log = tmp_path / "leapd.log"
    proc = start_leapd(env, log)
    try:
        wait_until(
            lambda: firings(runtime),
            lambda rows: bool(rows) and rows[0]["status"] in ("done", "failed"),
            90,
            "the catch-up firing",
            log,
        )

        def statuses() -> list[str]:
            return [r["status"] for r in cli("--json", "recordings", "list").json()]

        wait_until(statuses, lambda s: len(s) == 2 and "queued" not in s, 90, "processing", log)
        time_after = datetime.now(UTC)
    finally:
        stop(proc)
    [run] = firings(runtime)  # ticks every second, one firing
    assert run["status"] == "done", run
    assert run["summary"]["coalesced"] == 1 and len(run["summary"]["processed"]) == 2
    assert run["planned"].replace(tzinfo=UTC) <= time_after


def test_the_daily_digest_goes_once_a_day_to_targets_that_asked(
    installed: Any, runtime: Runtime
) -> None:
    cli = installed
    url = "http://127.0.0.1:9/hooks/digest"
    assert cli("notify", "add", "daily", "--webhook", url, "--events", "digest").code == 0
    assert cli("notify", "add", "all", "--webhook", url).code == 0  # every event but digest

    def digests() -> list[tuple[str, str]]:
        with open_context(runtime, Scope.system_scope()) as ctx:
            names = {t.id: t.name for t in ctx.repos.notify_targets.list()}
            return [
                (names[n.target_id], n.payload["day"])
                for n in ctx.repos.notifications.list(event="digest")
            ]

    queued: list[tuple[str, dict[str, Any]]] = []
    runtime.enqueue = lambda task, kwargs, delay=None: queued.append((task, kwargs))
    automation.tick(runtime, Sent(), now=berlin(2026, 12, 7, 7, 59))
    assert digests() == []  # digest_hour is 8, Berlin time
    automation.tick(runtime, Sent(), now=berlin(2026, 12, 7, 8, 0, 5))
    automation.tick(runtime, Sent(), now=berlin(2026, 12, 7, 8, 0, 20))
    automation.tick(runtime, Sent(), now=berlin(2026, 12, 7, 23, 59))
    assert digests() == [("daily", "2026-12-07")]
    automation.tick(runtime, Sent(), now=berlin(2026, 12, 8, 8, 1))
    assert digests() == [("daily", "2026-12-07"), ("daily", "2026-12-08")]
    assert [t for t, _ in queued] == ["leap.notify.deliver"] * 2  # sent after each commit


def test_a_firing_sent_twice_runs_once(installed: Any, runtime: Runtime) -> None:
    """Two workers given the same firing (a re-sent message, two daemons): one runs it, the
    other finds it taken; on PostgreSQL too (its claim is one atomic UPDATE)."""
    add_job(runtime, JOB, at=berlin(2026, 12, 7, 8))
    assert automation.tick(runtime, Sent(), now=berlin(2026, 12, 7, 9, 0, 3)) == 1
    with open_context(runtime, Scope.system_scope()) as ctx:
        [run_id] = [r.id for r in ctx.repos.automation_runs.list()]
    barrier = threading.Barrier(4)
    results: list[dict[str, Any]] = []

    def worker() -> None:
        barrier.wait()
        results.append(automation.fire(runtime, run_id))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ran = [r for r in results if r]
    assert len(ran) == 1, results
    assert firings(runtime)[0]["status"] == ran[0]["status"]
