"""Issue 18, bad-input sweep: CLI arguments. A sample of commands gets hypothesis-made
argument strings (names, filters, KEY=VALUE assignments, paths, time zones) through the
in-process `leap`; each ends with a documented exit code and at most one line on stderr,
never "internal error" and never a traceback.

tests/test_hostile_input.py covers ids, counts and dates; these are the text arguments.
Uses the database (the `installed` fixture), so it also runs on the PostgreSQL leg.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_hostile_input import check

CLI_SWEEP = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    # The install (fixtures) is built once per test and shared by its examples on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def installed(leap_env: dict[str, str], cli: Any) -> Any:
    assert cli("init", "--admin", "root", "--yes").code == 0
    return cli


# A real argv cannot hold NUL; everything else can reach us.
_arg_text = st.text(alphabet=st.characters(blacklist_characters="\x00", codec="utf-8"), max_size=40)
_HOSTILE_ARGS = [
    "",
    " ",
    "-",
    "--",
    "../../etc/passwd",
    "/",
    "/etc",
    "~",
    "~root/x",
    ".",
    "..",
    "\u202eevil",
    "\u2028",
    "a\nb",
    "\x1b[2J",
    "{0.__class__}",
    "%s",
    "x" * 5000,
    "=",
    "==",
    "storage_gb=",
    "storage_gb=inf",
    "storage_gb=nan",
    "storage_gb=-1",
    "storage_gb=1e400",
    "storage_gb=" + "9" * 5000,
    "recordings_per_month=1.5",
    "recordings_per_month=unlimited",
    "templates=" + str(2**63),
    "Europe/../../etc/passwd",
    "UTC",
    "../UTC",
    "ready",
    "failed",
]
values = st.one_of(st.sampled_from(_HOSTILE_ARGS), _arg_text)

# (argv with "{}" for the value, the exit codes the command documents)
COMMANDS: list[tuple[tuple[str, ...], set[int]]] = [
    (("user", "set-quota", "root", "--", "{}"), {0, 2}),
    (("user", "set-quota", "root", "--reset", "--", "{}"), {0, 2}),
    (("plan", "edit", "free", "--set={}"), {0, 2}),
    (("plan", "edit", "free", "--unset={}"), {0, 2}),
    (("plan", "show", "--", "{}"), {0, 2, 3}),
    (("recordings", "list", "--status={}"), {0, 2}),
    (("recordings", "list", "--template={}"), {0, 2, 3}),
    (("recordings", "list", "--source={}"), {0, 2, 3}),
    (("recordings", "list", "--search={}"), {0, 2}),
    (("template", "show", "--", "{}"), {2, 3}),
    (("preset", "show", "--", "{}"), {2, 3}),
    (("template", "reorder", "--", "{}"), {0, 2, 3}),
    (("user", "show", "--", "{}"), {0, 2, 3}),
    (("user", "set-timezone", "root", "--", "{}"), {0, 2}),
    (("user", "add", "--", "{}"), {0, 2, 7}),
    (("user", "set-roots", "root", "--", "{}"), {0, 2}),
    (("source", "add", "local", "s", "--", "{}"), {0, 2, 3, 7}),
    (("source", "add", "local", "--", "{}", "/tmp"), {0, 2, 7}),
    (("credentials", "show", "--", "{}"), {2, 3}),
    (("automation", "show", "--", "{}"), {2, 3}),
    (("process", "--dry-run", "--template={}"), {0, 2, 3}),
]


@CLI_SWEEP
@given(command=st.sampled_from(COMMANDS), value=values)
def test_text_arguments(
    installed: Any, command: tuple[tuple[str, ...], set[int]], value: str
) -> None:
    argv, allowed = command
    check(installed(*(a.replace("{}", value) for a in argv)), allowed)
