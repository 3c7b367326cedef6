"""Usage history (issue 17): the pure rules of specs/usage_period.py, and `leap usage` over a
real database built by the migrations (tests/usage_data.py: fixed NOW, known periods)."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from leap.context import Runtime, open_context
from leap.db import models as m
from leap.db.base import utcnow
from leap.db.scope import Scope
from leap.domain import Role
from leap.errors import PermissionDenied, UsageError
from leap.services import usage_report
from leap.services.usage import KINDS
from leap.specs.quota import period
from leap.specs.usage_period import (
    bucket,
    check_near,
    counts_toward,
    day_edges,
    effective_limits,
    is_near,
    month_edges,
    parse_by,
    parse_period,
    percent,
    period_use,
    reason,
    user_period,
    zone,
)
from tests.conftest import make_user
from tests.usage_data import NOW, build, t

BERLIN = ZoneInfo("Europe/Berlin")
ANCHOR = datetime(2025, 6, 15, 10, tzinfo=UTC)  # alice's start: the 15th

# ---------------------------------------------------------------- --by, --period (pure)


@pytest.mark.parametrize(("text", "by"), [("metric", "metric"), (" Template ", "template")])
def test_parse_by(text: str, by: str) -> None:
    assert parse_by(text) == by


@pytest.mark.parametrize("text", ["", "kind", "days", "metric,day"])
def test_parse_by_refuses(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--by"):
        parse_by(text)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        (None, (2026, 3, 15), (2026, 4, 15)),
        ("current", (2026, 3, 15), (2026, 4, 15)),
        (" PREVIOUS ", (2026, 2, 15), (2026, 3, 15)),
        ("2026-03", (2026, 3, 15), (2026, 4, 15)),
        ("2026-02", (2026, 2, 15), (2026, 3, 15)),
        ("2025-12", (2025, 12, 15), (2026, 1, 15)),
        ("2030-01", (2030, 1, 15), (2030, 2, 15)),  # the future is a period too
    ],
)
def test_parse_period(text: str | None, start: tuple[int, ...], end: tuple[int, ...]) -> None:
    got = parse_period(text, ANCHOR, NOW, BERLIN)
    assert got == (datetime(*start, tzinfo=BERLIN), datetime(*end, tzinfo=BERLIN))


def test_parse_period_clamps_the_anchor_day() -> None:
    # Started on the 31st: February's period starts on its last day, and runs to 31 March.
    anchor = datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert parse_period("2026-02", anchor, NOW, UTC) == (
        datetime(2026, 2, 28, tzinfo=UTC),
        datetime(2026, 3, 31, tzinfo=UTC),
    )
    assert parse_period("2024-02", anchor, NOW, UTC)[0] == datetime(2024, 2, 29, tzinfo=UTC)
    # "previous" from the first instant of a period is the one before.
    assert parse_period("previous", anchor, datetime(2026, 3, 31, tzinfo=UTC), UTC) == (
        datetime(2026, 2, 28, tzinfo=UTC),
        datetime(2026, 3, 31, tzinfo=UTC),
    )
    # December's period ends in January.
    assert parse_period("2025-12", anchor, NOW, UTC)[1] == datetime(2026, 1, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["", "2026", "2026-3", "2026-13", "2026-00", "1969-12", "9999-01", "march", "26-03"]
)
def test_parse_period_refuses(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--period"):
        parse_period(text, ANCHOR, NOW, BERLIN)


def test_user_period_and_zone() -> None:
    assert user_period(ANCHOR, "Europe/Berlin", NOW) == (t(2026, 3, 14, 23), t(2026, 4, 14, 22))
    assert zone("Nowhere/Atlantis") is UTC
    assert user_period(ANCHOR, "Nowhere/Atlantis", NOW) == (t(2026, 3, 15), t(2026, 4, 15))


# ---------------------------------------------------------------- limits, percent (pure)


def test_effective_limits_honour_until() -> None:
    plan = {"recordings_per_month": 10, "uploads_per_month": 10}
    got = effective_limits(
        "free",
        plan,
        [
            ("uploads_per_month", 2.0, t(2026, 12, 31)),
            ("recordings_per_month", 100.0, t(2026, 3, 1)),  # expired: the plan's stands
            ("llm_tokens_per_month", None, None),
            ("transcription_minutes_per_month", 90.5, NOW),  # ends now: no longer applies
            ("bogus", 1.0, None),
        ],
        NOW,
    )
    assert got["recordings_per_month"] == (10, "plan free")
    assert got["uploads_per_month"] == (2, "custom until 2026-12-31T00:00:00Z")
    assert isinstance(got["uploads_per_month"][0], int)
    assert got["llm_tokens_per_month"] == (None, "custom")
    assert got["transcription_minutes_per_month"] == (None, "plan free")
    assert "bogus" not in got
    assert effective_limits(None, None, [], NOW)["templates"] == (None, "no plan")


def test_period_use_and_counts_toward() -> None:
    use = period_use({"youtube_uploads": 2, "vk_uploads": 3, "local_transcription_minutes": 9})
    assert use["uploads_per_month"] == 5 and use["youtube_uploads_per_month"] == 2
    assert use["transcription_minutes_per_month"] == 0  # local minutes are free
    assert counts_toward("local_transcription_minutes") == []
    assert counts_toward("vk_uploads") == ["uploads_per_month", "vk_uploads_per_month"]
    assert all(counts_toward(k) for k in KINDS if k != "local_transcription_minutes")


@pytest.mark.parametrize(
    ("used", "limit", "pct"),
    [(5, 10, 50.0), (0, 10, 0.0), (15, 10, 150.0), (3, None, None), (0, 0, 0.0), (1, 0, 100.0)],
)
def test_percent(used: float, limit: float | None, pct: float | None) -> None:
    assert percent(used, limit) == pct


@pytest.mark.parametrize(
    ("pct", "threshold", "near"),
    [(80.0, 80.0, True), (79.99, 80.0, False), (None, 0.0, False), (0.0, 0.0, True)],
)
def test_is_near(pct: float | None, threshold: float, near: bool) -> None:
    assert is_near(pct, threshold) is near


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, 1e7])
def test_check_near_refuses(bad: float) -> None:
    with pytest.raises(UsageError, match=r"^--near"):
        check_near(bad)
    assert check_near(80.0) == 80.0


# ---------------------------------------------------------------- buckets, reasons (pure)


def test_day_edges_across_dst() -> None:
    # Berlin moves to summer time on 29 March 2026: that local day lasts 23 hours.
    start, end = datetime(2026, 3, 28, tzinfo=BERLIN), datetime(2026, 3, 31, tzinfo=BERLIN)
    edges = day_edges(start, end, BERLIN)
    assert [d for d, _ in edges] == [date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)]
    assert [at for _, at in edges] == [t(2026, 3, 27, 23), t(2026, 3, 28, 23), t(2026, 3, 29, 22)]
    at = [a for _, a in edges]
    assert bucket(t(2026, 3, 29, 21, 59), at) == 1 and bucket(t(2026, 3, 29, 22), at) == 2
    assert bucket(t(2026, 3, 27, 22), at) is None
    # A whole period: one edge per local day, the first one the period's start.
    s, e = period(ANCHOR, NOW, BERLIN)
    edges = day_edges(s, e, BERLIN)
    assert len(edges) == 31 and edges[0] == (date(2026, 3, 15), s.astimezone(UTC))
    days = [b - a for (_, a), (_, b) in itertools.pairwise(edges)]
    # Summer time from 29 March: that local day has 23 hours.
    assert sorted(set(days)) == [timedelta(hours=23), timedelta(hours=24)]


def test_month_edges() -> None:
    got = month_edges(NOW)
    assert [label for label, _, _ in got] == [
        "2025-10",
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
        "2026-03",
    ]
    assert got[2][1:] == (t(2025, 12, 1), t(2026, 1, 1))
    assert got[-1][2] == t(2026, 4, 1)
    assert [x[0] for x in month_edges(t(2026, 1, 31, 23, 59), 2)] == ["2025-12", "2026-01"]


@pytest.mark.parametrize(
    ("error", "why"),
    [
        ("HTTP 404 from Zoom: meeting 123 is gone", "HTTP 404 from Zoom"),
        ("re-authenticate yt-main", "re-authenticate yt-main"),
        (
            "  ffmpeg   failed with\nexit code 1 on the file and more words",
            "ffmpeg failed with exit",
        ),
        ("timeout.", "timeout"),
        (None, "(no message)"),
        ("   ", "(no message)"),
        ("x" * 300, "x" * 60),
    ],
)
def test_reason(error: str | None, why: str) -> None:
    assert reason(error) == why
    if error:
        assert reason(error[:120]) == why  # the SQL groups by the first 120 characters


# ---------------------------------------------------------------- the report (database)


def _report(runtime: Runtime, who: str, name: str | None, **kw: Any) -> dict[str, Any]:
    with open_context(runtime, Scope.system_scope()) as ctx:
        user = ctx.repos.users.require_name(who)
        scope = Scope.for_user(user.id, is_admin=user.role == "admin")
    with open_context(runtime, scope) as ctx:
        return usage_report.report(
            ctx, name, kw.get("period"), kw.get("by", "metric"), kw.get("now", NOW)
        )


def _totals(rows: list[dict[str, Any]], key: str) -> dict[tuple[str, str], tuple[float, int]]:
    return {(r[key], r["kind"]): (r["amount"], r["events"]) for r in rows}


def test_report_by_metric(runtime: Runtime) -> None:
    build(runtime)
    data = _report(runtime, "alice", None)
    assert (data["user"], data["plan"], data["timezone"], data["by"]) == (
        "alice",
        "free",
        "Europe/Berlin",
        "metric",
    )
    assert (data["period"], data["period_start"], data["period_end"]) == (
        "2026-03",
        "2026-03-15T00:00:00+01:00",
        "2026-04-15T00:00:00+02:00",
    )
    assert data["rows"] == [
        {
            "kind": "recordings",
            "amount": 9.0,
            "events": 9,
            "counts_toward": ["recordings_per_month"],
        },
        {
            "kind": "transcription_minutes",
            "amount": 100.0,
            "events": 2,
            "counts_toward": ["transcription_minutes_per_month"],
        },
        {"kind": "local_transcription_minutes", "amount": 500.0, "events": 1, "counts_toward": []},
        {
            "kind": "llm_tokens",
            "amount": 50000.0,
            "events": 1,
            "counts_toward": ["llm_tokens_per_month"],
        },
        {
            "kind": "youtube_uploads",
            "amount": 2.0,
            "events": 2,
            "counts_toward": ["uploads_per_month", "youtube_uploads_per_month"],
        },
        {
            "kind": "vk_uploads",
            "amount": 0.0,
            "events": 0,
            "counts_toward": ["uploads_per_month", "vk_uploads_per_month"],
        },
    ]
    prev = _report(runtime, "alice", None, period="previous")
    assert prev["period_start"] == "2026-02-15T00:00:00+01:00"
    assert {r["kind"]: r["amount"] for r in prev["rows"] if r["events"]} == {
        "transcription_minutes": 1000.0
    }
    assert _report(runtime, "alice", None, period="2026-02")["rows"] == prev["rows"]


def test_report_by_template_and_day(runtime: Runtime) -> None:
    build(runtime)
    rows = _report(runtime, "alice", None, by="template")["rows"]
    assert [r["template"] for r in rows] == ["lectures"] * 2 + ["seminars"] + ["(none)"] * 4
    assert _totals(rows, "template") == {
        ("lectures", "recordings"): (5.0, 5),
        ("lectures", "transcription_minutes"): (60.0, 1),
        ("seminars", "transcription_minutes"): (40.0, 1),
        ("(none)", "recordings"): (4.0, 4),
        ("(none)", "local_transcription_minutes"): (500.0, 1),
        ("(none)", "llm_tokens"): (50000.0, 1),
        ("(none)", "youtube_uploads"): (2.0, 2),
    }
    rows = _report(runtime, "alice", None, by="day")["rows"]
    # 23:30 UTC on the 14th is the 15th in Berlin; midnight UTC on the 17th is 01:00 there.
    assert _totals(rows, "date") == {
        ("2026-03-15", "recordings"): (9.0, 9),
        ("2026-03-15", "transcription_minutes"): (60.0, 1),
        ("2026-03-16", "transcription_minutes"): (40.0, 1),
        ("2026-03-17", "local_transcription_minutes"): (500.0, 1),
        ("2026-03-18", "llm_tokens"): (50000.0, 1),
        ("2026-03-19", "youtube_uploads"): (2.0, 2),
    }
    assert [r["date"] for r in rows] == sorted(r["date"] for r in rows)
    # Tokyo: carol's period began at 15:00 UTC on the 19th, her 5,000 minutes an hour later.
    rows = _report(runtime, "carol", None, by="day")["rows"]
    assert _totals(rows, "date") == {("2026-03-20", "transcription_minutes"): (5000.0, 1)}


def test_report_reads_only_the_named_users_rows(runtime: Runtime) -> None:
    build(runtime)
    # An admin reads bob's period (New York, started on a 31st) and nobody else's rows.
    data = _report(runtime, "root", "bob", by="template")
    assert data["period_start"] == "2026-02-28T00:00:00-05:00"
    assert _totals(data["rows"], "template") == {("(none)", "llm_tokens"): (900000.0, 1)}
    assert _report(runtime, "root", None)["rows"][0]["events"] == 0  # root used nothing
    with pytest.raises(PermissionDenied):
        _report(runtime, "alice", "bob")
    with pytest.raises(UsageError, match="--by"):
        _report(runtime, "alice", None, by="week")


# ---------------------------------------------------------------- the command


@pytest.fixture
def two(runtime: Runtime) -> dict[str, int]:
    """alice (Berlin) and bob, with events a minute ago (the command's clock is the real one)."""
    make_user(runtime, "root", Role.ADMIN)
    ids = {}
    with open_context(runtime, Scope.system_scope()) as ctx:
        from leap.services import users

        for name, tz in (("alice", "Europe/Berlin"), ("bob", "UTC")):
            ids[name] = users.create_user(ctx, name, timezone=tz).id
    now = utcnow()
    with open_context(runtime, Scope.system_scope()) as ctx:
        for uid, kind, amount in (
            (ids["alice"], "transcription_minutes", 12.5),
            (ids["alice"], "local_transcription_minutes", 30.0),
            (ids["bob"], "llm_tokens", 777.0),
        ):
            ctx.session.add(
                m.UsageEvent(user_id=uid, kind=kind, amount=amount, at=now - timedelta(minutes=1))
            )
    return ids


def test_usage_command(two: dict[str, int], cli: Any) -> None:
    res = cli("--user", "alice", "--json", "usage")
    assert res.code == 0, res.stderr
    data = res.json()
    assert data["by"] == "metric" and data["user"] == "alice"
    got = {r["kind"]: (r["amount"], r["events"]) for r in data["rows"]}
    assert got["transcription_minutes"] == (12.5, 1)
    assert got["local_transcription_minutes"] == (30.0, 1)
    assert got["llm_tokens"] == (0.0, 0)  # bob's are not hers
    day = cli("--user", "alice", "--json", "usage", "--by", "day").json()
    today = (utcnow() - timedelta(minutes=1)).astimezone(BERLIN).date().isoformat()
    assert {r["date"] for r in day["rows"]} == {today}
    assert (
        cli("--user", "alice", "--json", "usage", "--period", "previous").json()["rows"][0][
            "events"
        ]
        == 0
    )
    # Text: a table with every kind, and what each counts toward.
    res = cli("--user", "alice", "usage")
    assert res.code == 0 and "local_transcription_minutes" in res.stdout
    assert "free, not limited" in res.stdout and "12.50" in res.stdout
    res = cli("--user", "alice", "usage", "--by", "template")
    assert res.code == 0 and "(none)" in res.stdout
    # An admin names a user.
    res = cli("--user", "root", "--json", "usage", "bob", "--by", "template")
    assert res.code == 0, res.stderr
    assert res.json()["rows"] == [
        {"template": "(none)", "kind": "llm_tokens", "amount": 777.0, "events": 1}
    ]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("usage", "bob"), "only an admin"),
        (("usage", "--by", "week"), "--by 'week'"),
        (("usage", "--period", "2026-13"), "--period '2026-13'"),
        (("usage", "--period", "last"), "--period 'last'"),
        (("usage", "--json", "bob", "--by", "day"), "only an admin"),
    ],
)
def test_usage_bad_input(
    two: dict[str, int], cli: Any, args: tuple[str, ...], fragment: str
) -> None:
    res = cli("--user", "alice", *args)
    assert res.code == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], res.stderr
    assert res.stdout == "" and "777" not in res.stderr  # nothing of bob's shown
