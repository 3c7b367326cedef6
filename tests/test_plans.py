"""Plans and their limits (issue 17, first slice): the limit catalogue and its values, the
monthly period anchored to a user's start date, and `leap plan list|show|edit`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from leap.context import Runtime
from leap.domain import Role
from leap.errors import UsageError
from leap.specs.quota import LIMITS, edited, parse_limit, period
from tests.conftest import make_user

# ---------------------------------------------------------------- values (pure)


@pytest.mark.parametrize(
    ("key", "raw", "value"),
    [
        ("recordings_per_month", "20", 20),
        ("recordings_per_month", " 0 ", 0),
        ("recordings_per_month", "1e3", 1000),
        ("transcription_minutes_per_month", "90.5", 90.5),
        ("storage_gb", "0.5", 0.5),
        ("templates", "unlimited", None),
        ("templates", "None", None),
    ],
)
def test_parse_limit(key: str, raw: str, value: Any) -> None:
    assert parse_limit(key, raw) == value


@pytest.mark.parametrize(
    ("key", "raw", "fragment"),
    [
        ("recordings", "5", "unknown limit 'recordings'"),
        ("recordings_per_month", "-1", "is not a limit"),
        ("recordings_per_month", "2.5", "a whole number"),
        ("recordings_per_month", "ten", "is not a number"),
        ("recordings_per_month", "", "is not a number"),
        ("recordings_per_month", "nan", "is not a limit"),
        ("recordings_per_month", "inf", "is not a limit"),
        ("storage_gb", "1e16", "is not a limit"),
    ],
)
def test_parse_limit_refuses(key: str, raw: str, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        parse_limit(key, raw)


def test_edited_checks_everything_first() -> None:
    base = {"recordings_per_month": 10, "templates": 3}
    assert edited(base, ["recordings_per_month=20", "sources=2"], ["templates"]) == {
        "recordings_per_month": 20,
        "sources": 2,
    }
    assert edited(base, ["templates=unlimited"], []) == {"recordings_per_month": 10}
    with pytest.raises(UsageError):
        edited(base, ["recordings_per_month=20", "bogus=1"], [])
    with pytest.raises(UsageError, match="unknown limit"):
        edited(base, [], ["bogus"])
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        edited(base, ["recordings_per_month"], [])
    assert base == {"recordings_per_month": 10, "templates": 3}  # never changed in place


# ---------------------------------------------------------------- the period (pure)

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("anchor", "now", "start", "end"),
    [
        # Anchored on the 15th: the period runs from the 15th to the 15th.
        ((2026, 1, 15), (2026, 3, 20, 12), (2026, 3, 15), (2026, 4, 15)),
        ((2026, 1, 15), (2026, 3, 14, 12), (2026, 2, 15), (2026, 3, 15)),
        # A 31st stands for the last day of shorter months.
        ((2026, 1, 31), (2026, 2, 28, 12), (2026, 2, 28), (2026, 3, 31)),
        ((2026, 1, 31), (2026, 2, 27, 12), (2026, 1, 31), (2026, 2, 28)),
        ((2024, 1, 31), (2024, 2, 29, 1), (2024, 2, 29), (2024, 3, 31)),
        # Across the year's end.
        ((2026, 5, 20), (2027, 1, 3, 0), (2026, 12, 20), (2027, 1, 20)),
    ],
)
def test_period(
    anchor: tuple[int, ...], now: tuple[int, ...], start: tuple[int, ...], end: tuple[int, ...]
) -> None:
    got = period(datetime(*anchor, 9, tzinfo=BERLIN), datetime(*now, tzinfo=BERLIN), BERLIN)
    assert got == (datetime(*start, tzinfo=BERLIN), datetime(*end, tzinfo=BERLIN))


def test_period_starts_at_local_midnight() -> None:
    # 23:30 UTC on the 14th is already the 15th in Berlin: the new period has begun.
    start, _ = period(
        datetime(2026, 1, 15, tzinfo=UTC), datetime(2026, 3, 14, 23, 30, tzinfo=UTC), BERLIN
    )
    assert start == datetime(2026, 3, 15, tzinfo=BERLIN)
    assert start.astimezone(UTC) == datetime(2026, 3, 14, 23, 0, tzinfo=UTC)


# ---------------------------------------------------------------- the commands


@pytest.fixture
def people(leap_env: dict[str, str], runtime: Runtime, cli: Any) -> None:
    make_user(runtime, "root", Role.ADMIN)
    make_user(runtime, "alice")


def test_plan_list_show_edit(people: None, cli: Any) -> None:
    res = cli("--user", "alice", "--json", "plan", "list")
    assert res.code == 0, res.stderr
    assert [p["name"] for p in res.json()] == ["free", "plus", "pro", "enterprise"]
    assert "users" not in res.json()[0]  # how many users: an admin's business
    assert set(res.json()[0]["limits"]) == set(LIMITS)
    res = cli("--user", "root", "--json", "plan", "list")
    assert all("users" in p for p in res.json())
    res = cli(
        "--user",
        "root",
        "--json",
        "plan",
        "edit",
        "free",
        "--set",
        "recordings_per_month=3",
        "--set",
        "templates=2",
        "--unset",
        "storage_gb",
    )
    assert res.code == 0, res.stderr
    limits = res.json()["limits"]
    assert (limits["recordings_per_month"], limits["templates"], limits["storage_gb"]) == (
        3,
        2,
        None,
    )
    shown = cli("--user", "alice", "--json", "plan", "show", "free").json()
    assert shown["limits"] == limits
    audit = cli("--user", "root", "--json", "audit", "list").json()
    assert audit[0]["action"] == "plan.edit" and audit[0]["subject"] == "free"


@pytest.mark.parametrize(
    ("user", "args", "code", "fragment"),
    [
        ("alice", ("edit", "free", "--set", "templates=1"), 2, "only an admin"),
        ("root", ("edit", "gold", "--set", "templates=1"), 3, "plan 'gold' not found"),
        ("root", ("edit", "free", "--set", "templates=-1"), 2, "templates: -1 is not a limit"),
        ("root", ("edit", "free", "--set", "minutes=5"), 2, "unknown limit 'minutes'"),
        ("root", ("edit", "free"), 2, "nothing to change"),
        ("root", ("edit", "free", "--title", " "), 2, "--title"),
        ("alice", ("show", "gold"), 3, "plan 'gold' not found"),
    ],
)
def test_plan_bad_input(
    people: None, cli: Any, user: str, args: tuple[str, ...], code: int, fragment: str
) -> None:
    before = cli("--user", "root", "--json", "plan", "show", "free").json()
    res = cli("--user", user, "plan", *args)
    assert res.code == code, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], res.stderr
    assert cli("--user", "root", "--json", "plan", "show", "free").json() == before


# ---------------------------------------------------------------- quota show and set-quota


def _uid(runtime: Runtime, name: str) -> int:
    from leap.context import open_context
    from leap.db.scope import Scope

    with open_context(runtime, Scope.system_scope()) as ctx:
        return ctx.repos.users.require_name(name).id


def _seed(runtime: Runtime, name: str, templates: int, minutes: dict[str, float]) -> None:
    from leap.context import open_context
    from leap.db import models as m
    from leap.db.scope import Scope

    uid = _uid(runtime, name)
    with open_context(runtime, Scope.for_user(uid)) as ctx:
        for i in range(templates):
            ctx.repos.templates.add(m.Template(name=f"{name}-{i}"))
        for provider, amount in minutes.items():
            ctx.repos.usage.add(
                m.UsageEvent(
                    kind="local_transcription_minutes"
                    if provider == "local"
                    else "transcription_minutes",
                    amount=amount,
                    detail={"provider": provider},
                )
            )


def _row(data: dict[str, Any], key: str) -> dict[str, Any]:
    return next(r for r in data["limits"] if r["limit"] == key)


def test_quota_show_and_set_quota(people: None, runtime: Runtime, cli: Any) -> None:
    make_user(runtime, "bob")
    assert cli("--user", "root", "user", "set-plan", "alice", "free").code == 0
    _seed(runtime, "alice", 2, {"fireworks": 12.5, "local": 40.0})
    _seed(runtime, "bob", 5, {"fireworks": 99.0})
    data = cli("--user", "alice", "--json", "quota", "show").json()
    assert data["user"] == "alice" and data["plan"] == "free"
    # Only alice's rows; local transcription costs nothing.
    assert _row(data, "templates")["used"] == 2
    minutes = _row(data, "transcription_minutes_per_month")
    assert minutes["used"] == 12.5 and minutes["value"] == 300
    assert minutes["remaining"] == 287.5 and minutes["resets_at"] == data["period_end"]
    assert _row(data, "templates")["resets_at"] is None  # a standing limit
    # A custom limit, then back to the plan.
    res = cli(
        "--user", "root", "user", "set-quota", "alice", "templates=5", "--until", "2099-01-01"
    )
    assert res.code == 0, res.stderr
    got = _row(cli("--user", "root", "--json", "quota", "show", "alice").json(), "templates")
    assert (got["value"], got["remaining"]) == (5, 3) and got["origin"].startswith("custom until")
    assert cli("--user", "root", "user", "set-quota", "alice", "templates", "--reset").code == 0
    got = _row(cli("--user", "alice", "--json", "quota", "show").json(), "templates")
    assert got["origin"] == "plan free"
    audit = cli("--user", "root", "--json", "audit", "list").json()
    assert [e["action"] for e in audit[:2]] == ["user.set_quota", "user.set_quota"]


@pytest.mark.parametrize(
    ("user", "args", "code", "fragment"),
    [
        ("alice", ("user", "set-quota", "alice", "templates=9"), 2, "only an admin"),
        ("alice", ("quota", "show", "root"), 2, "only an admin"),
        ("root", ("user", "set-quota", "alice", "minutes=9"), 2, "unknown limit 'minutes'"),
        ("root", ("user", "set-quota", "alice", "templates=-2"), 2, "is not a limit"),
        ("root", ("user", "set-quota", "alice", "templates=2", "--until", "soon"), 2, "--until"),
        ("root", ("user", "set-quota", "nobody", "templates=2"), 3, "unknown user 'nobody'"),
        (
            "root",
            ("user", "set-quota", "alice", "templates", "--reset", "--until", "2030-01-01"),
            2,
            "exclude",
        ),
    ],
)
def test_quota_bad_input(
    people: None, cli: Any, user: str, args: tuple[str, ...], code: int, fragment: str
) -> None:
    res = cli("--user", user, *args)
    assert res.code == code, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], res.stderr
    got = _row(cli("--user", "root", "--json", "quota", "show", "alice").json(), "templates")
    assert got["origin"].startswith("plan")
