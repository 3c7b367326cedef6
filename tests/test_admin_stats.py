"""Admin statistics (issue 17): `leap admin stats overview | users | quotas` equal the
hand-built install of tests/usage_data.py (figures worked out by hand from its comments), the
number of SQL statements does not grow with the number of users, and only an admin sees
anything."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert

from leap.context import Context, Runtime, open_context
from leap.db import models as m
from leap.db.base import utcnow
from leap.db.scope import Scope
from leap.domain import Role
from leap.errors import PermissionDenied, UsageError
from leap.services import admin_stats
from tests.conftest import make_user
from tests.usage_data import NOW, build

KINDS0 = {
    "recordings": 0.0,
    "transcription_minutes": 0.0,
    "local_transcription_minutes": 0.0,
    "llm_tokens": 0.0,
    "youtube_uploads": 0.0,
    "vk_uploads": 0.0,
}


@contextmanager
def as_user(runtime: Runtime, name: str) -> Iterator[Context]:
    with open_context(runtime, Scope.system_scope()) as ctx:
        user = ctx.repos.users.require_name(name)
        scope = Scope.for_user(user.id, is_admin=user.role == Role.ADMIN.value)
    with open_context(runtime, scope) as ctx:
        yield ctx


def test_overview_equals_the_hand_built_install(runtime: Runtime) -> None:
    build(runtime)
    with as_user(runtime, "root") as ctx:
        data = admin_stats.overview(ctx, NOW)
    assert data["generated_at"] == "2026-03-20T12:00:00Z"
    # Active in 30 days (since 18 February): alice, bob, carol; dave's last run and event
    # are from January; root did nothing. bob is disabled.
    assert data["users"] == {
        "total": 5,
        "admins": 1,
        "disabled": 1,
        "active": 3,
        "inactive": 2,
        "active_days": 30,
        "by_plan": {"enterprise": 1, "free": 2, "plus": 1, "pro": 1},
    }
    assert data["recordings"] == {"downloading": 1, "failed": 4, "initialized": 2}
    assert data["stages"] == [
        {"stage": "download", "finished": 5, "failed": 2, "failure_rate": 0.4},
        {"stage": "transcribe", "finished": 2, "failed": 1, "failure_rate": 0.5},
        {"stage": "trim", "finished": 2, "failed": 0, "failure_rate": 0.0},
        {"stage": "upload", "finished": 1, "failed": 1, "failure_rate": 1.0},
    ]
    assert data["failure_reasons"] == [
        {"stage": "download", "exit_code": 1, "reason": "HTTP 404 from Zoom", "failed": 2},
        {"stage": "transcribe", "exit_code": 1, "reason": "HTTP 429 from Fireworks", "failed": 1},
        {"stage": "upload", "exit_code": 5, "reason": "re-authenticate yt-main", "failed": 1},
    ]
    months = {r["month"]: {k: v for k, v in r.items() if k != "month"} for r in data["months"]}
    assert list(months) == ["2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03"]
    assert months["2025-10"] == months["2025-11"] == months["2025-12"] == KINDS0
    assert months["2026-01"] == KINDS0 | {"recordings": 1.0}
    assert months["2026-02"] == KINDS0 | {"llm_tokens": 1_400_000.0}
    assert months["2026-03"] == {
        "recordings": 9.0,
        "transcription_minutes": 6100.0,
        "local_transcription_minutes": 500.0,
        "llm_tokens": 50_000.0,
        "youtube_uploads": 2.0,
        "vk_uploads": 3.0,
    }
    near = data["near_limits"]
    assert (near["threshold"], near["users"]) == (80.0, 2)
    assert [
        (r["user"], r["limit"], r["used"], r["value"], r["percent"]) for r in near["limits"]
    ] == [
        ("alice", "uploads_per_month", 2.0, 2, 100.0),
        ("alice", "recordings_per_month", 9.0, 10, 90.0),
        ("bob", "llm_tokens_per_month", 900_000.0, 1_000_000, 90.0),
    ]
    assert near["limits"][0]["origin"] == "custom until 2026-12-31T00:00:00Z"
    assert near["limits"][1]["origin"] == "plan free"  # the expired custom 100 is ignored
    assert near["limits"][0]["resets_at"] == "2026-04-14T22:00:00Z"
    assert near["limits"][2]["resets_at"] == "2026-03-31T04:00:00Z"


def test_users_equals_the_hand_built_install(runtime: Runtime) -> None:
    build(runtime)
    with as_user(runtime, "root") as ctx:
        rows = admin_stats.users(ctx, NOW)
    by = {r["user"]: r for r in rows}
    assert [r["user"] for r in rows] == ["alice", "bob", "carol", "dave", "root"]
    assert by["alice"] == {
        "user": "alice",
        "plan": "free",
        "role": "user",
        "disabled": False,
        "period_start": "2026-03-14T23:00:00Z",
        "period_end": "2026-04-14T22:00:00Z",
        "use": {
            "recordings": 9.0,
            "transcription_minutes": 100.0,
            "local_transcription_minutes": 500.0,
            "llm_tokens": 50_000.0,
            "youtube_uploads": 2.0,
            "vk_uploads": 0.0,
        },
        "runs_active": 1,
        "last_activity": "2026-03-20T00:00:00Z",  # the run in progress
    }
    assert by["bob"]["disabled"] and by["bob"]["use"] == KINDS0 | {"llm_tokens": 900_000.0}
    assert by["bob"]["last_activity"] == "2026-03-01T00:00:00Z"
    assert by["carol"]["use"] == KINDS0 | {"transcription_minutes": 5000.0}
    assert by["carol"]["period_start"] == "2026-03-19T15:00:00Z"
    assert (by["dave"]["use"], by["dave"]["runs_active"]) == (KINDS0, 0)
    assert by["dave"]["last_activity"] == "2026-01-10T00:00:00Z"
    assert (by["root"]["role"], by["root"]["last_activity"]) == ("admin", None)


def test_quotas_equals_the_hand_built_install(runtime: Runtime) -> None:
    build(runtime)
    with as_user(runtime, "root") as ctx:
        rows = admin_stats.quotas(ctx, NOW)
        near = admin_stats.quotas(ctx, NOW, near=50)
    got = [(r["user"], r["limit"], r["used"], r["value"], round(r["percent"], 3)) for r in rows]
    zero = [
        (who, key, 0.0, value, 0.0)
        for who, key, value in [
            ("bob", "recordings_per_month", 50),
            ("bob", "uploads_per_month", 100),
            ("dave", "llm_tokens_per_month", 5_000_000),
            ("dave", "recordings_per_month", 200),
            ("dave", "transcription_minutes_per_month", 6000),
            ("dave", "uploads_per_month", 400),
            ("root", "llm_tokens_per_month", 200_000),
            ("root", "recordings_per_month", 10),
            ("root", "transcription_minutes_per_month", 300),
            ("root", "uploads_per_month", 10),
        ]
    ]
    assert got == [
        ("alice", "uploads_per_month", 2.0, 2, 100.0),
        ("alice", "recordings_per_month", 9.0, 10, 90.0),
        ("bob", "llm_tokens_per_month", 900_000.0, 1_000_000, 90.0),
        ("alice", "transcription_minutes_per_month", 100.0, 300, 33.333),
        ("alice", "llm_tokens_per_month", 50_000.0, 200_000, 25.0),
        *zero,
    ]
    # carol (enterprise) has no limit set; bob's minutes are unlimited for good.
    assert not [r for r in rows if r["user"] == "carol"]
    assert ("bob", "transcription_minutes_per_month") not in {(r["user"], r["limit"]) for r in rows}
    assert [r["percent"] for r in near] == [100.0, 90.0, 90.0]


def test_only_an_admin(runtime: Runtime) -> None:
    build(runtime)
    with as_user(runtime, "alice") as ctx:
        for call in (admin_stats.overview, admin_stats.users, admin_stats.quotas):
            with pytest.raises(PermissionDenied):
                call(ctx, NOW)
        with pytest.raises(PermissionDenied):  # the admin check comes before --near's
            admin_stats.quotas(ctx, NOW, near=-5)
    with as_user(runtime, "root") as ctx, pytest.raises(UsageError, match="--near"):
        admin_stats.quotas(ctx, NOW, near=-5)


def _add_users(runtime: Runtime, start: int, count: int) -> None:
    """`count` more users, each with a few events, a run and an override (bulk inserts)."""
    with open_context(runtime, Scope.system_scope()) as ctx:
        plan = ctx.repos.plans.require_name("free").id
        names = [f"u{i:05d}" for i in range(start, start + count)]
        ctx.session.execute(
            insert(m.User),
            [{"name": n, "role": "user", "timezone": "Asia/Tokyo", "plan_id": plan} for n in names],
        )
        ids = [ctx.repos.users.require_name(n).id for n in names]
        ctx.session.execute(
            insert(m.UsageEvent),
            [
                {"user_id": uid, "kind": kind, "amount": 3.0, "at": NOW - timedelta(hours=1)}
                for uid in ids
                for kind in ("recordings", "llm_tokens")
            ],
        )
        ctx.session.execute(
            insert(m.QuotaOverride),
            [{"user_id": uid, "key": "recordings_per_month", "value": 4.0} for uid in ids],
        )


def _statements(runtime: Runtime, call: Any) -> int:
    seen = [0]

    def count(*_a: Any) -> None:
        seen[0] += 1

    event.listen(runtime.engine, "before_cursor_execute", count)
    try:
        with as_user(runtime, "root") as ctx:
            call(ctx, NOW)
    finally:
        event.remove(runtime.engine, "before_cursor_execute", count)
    return seen[0]


def test_statements_do_not_grow_with_users(runtime: Runtime) -> None:
    build(runtime)
    calls = (admin_stats.overview, admin_stats.users, admin_stats.quotas)
    before = [_statements(runtime, c) for c in calls]
    _add_users(runtime, 0, 40)
    after = [_statements(runtime, c) for c in calls]
    _add_users(runtime, 40, 200)
    assert after == before == [_statements(runtime, c) for c in calls]
    assert max(before) <= 12
    with as_user(runtime, "root") as ctx:
        data = admin_stats.overview(ctx, NOW)
        rows = admin_stats.quotas(ctx, NOW, near=80)
    # Each new user: 3 recordings of a custom 4 (75 %), 3 tokens: none of them is near.
    assert data["users"]["total"] == 245 and data["near_limits"]["users"] == 2
    assert len(rows) == 3
    assert data["months"][-1]["recordings"] == 9 + 240 * 3


# ---------------------------------------------------------------- the commands


@pytest.fixture
def install(runtime: Runtime) -> None:
    """root (admin) and alice, who used 9 of her 10 recordings a minute ago."""
    make_user(runtime, "root", Role.ADMIN)
    scope = make_user(runtime, "alice")
    with open_context(runtime, scope) as ctx:
        for _ in range(9):
            ctx.repos.usage.add(
                m.UsageEvent(kind="recordings", amount=1, at=utcnow() - timedelta(minutes=1))
            )


def test_admin_stats_commands(install: None, cli: Any) -> None:
    res = cli("--user", "root", "--json", "admin", "stats", "overview")
    assert res.code == 0, res.stderr
    data = res.json()
    assert data["users"]["total"] == 2 and data["users"]["active"] == 1
    assert data["months"][-1]["recordings"] == 9
    assert [(r["user"], r["limit"], r["percent"]) for r in data["near_limits"]["limits"]] == [
        ("alice", "recordings_per_month", 90.0)
    ]
    rows = cli("--user", "root", "--json", "admin", "stats", "users").json()
    assert [(r["user"], r["use"]["recordings"]) for r in rows] == [("alice", 9), ("root", 0)]
    rows = cli("--user", "root", "--json", "admin", "stats", "quotas", "--near", "80").json()
    assert [(r["user"], r["limit"]) for r in rows] == [("alice", "recordings_per_month")]
    assert len(cli("--user", "root", "--json", "admin", "stats", "quotas").json()) == 8
    # The tables.
    for view in ("overview", "users", "quotas"):
        res = cli("--user", "root", "admin", "stats", view)
        assert res.code == 0 and "alice" in res.stdout, (view, res.stderr)


@pytest.mark.parametrize(
    ("user", "args", "fragment"),
    [
        ("alice", ("overview",), "only an admin"),
        ("alice", ("users",), "only an admin"),
        ("alice", ("quotas", "--near", "10"), "only an admin"),
        ("alice", ("--json", "quotas"), "only an admin"),
        ("root", ("quotas", "--near", "-3"), "--near -3"),
    ],
)
def test_admin_stats_bad_input(
    install: None, cli: Any, user: str, args: tuple[str, ...], fragment: str
) -> None:
    res = cli("--user", user, "admin", "stats", *args)
    assert res.code == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], res.stderr
    assert res.stdout == ""
