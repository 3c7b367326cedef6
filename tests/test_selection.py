"""SELECTION (ids, ranges, --ids-from) on every command that acts on recordings: the pure
parser, each bad input through the CLI, tenancy through every way of selecting,
`recordings delete` and `audit list`."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from leap.cli import _selection as Sel
from leap.context import Runtime, open_context
from leap.db import models as m
from leap.db.scope import Scope
from leap.domain import Role
from leap.errors import NotFound, UsageError
from leap.services import runs
from tests.conftest import make_user

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)

# ---------------------------------------------------------------- the parser (pure)


@pytest.mark.parametrize(
    ("tokens", "ids"),
    [
        (["1"], [1]),
        (["1", "2", "5-9"], [1, 2, 5, 6, 7, 8, 9]),
        (["5-9,12"], [5, 6, 7, 8, 9, 12]),
        (["3", "1", "3", "2-3"], [3, 1, 2]),  # order kept, each once
        (["7-7"], [7]),
        (["007"], [7]),
        ([" 4 "], [4]),
        ([], []),
        ([str(Sel.ID_MAX)], [Sel.ID_MAX]),
        (["1-3", "2-4"], [1, 2, 3, 4]),
    ],
)
def test_parse_ids(tokens: list[str], ids: list[int]) -> None:
    assert Sel.parse_ids(tokens) == ids


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        ("5-", "'5-' is not a range"),
        ("-5", "ids are positive"),
        ("9-2", "runs backwards"),
        ("a", "'a' is not a recording id"),
        ("0", "ids start at 1"),
        ("0-3", "ids run from 1"),
        ("", "is not a recording id"),
        ("5,", "is not a recording id"),
        ("1-2-3", "is not a range"),
        ("1.5", "is not a recording id"),
        ("٣", "is not a recording id"),  # not an ASCII digit
        (f"1-{Sel.ID_MAX + 1}", "ids run from 1"),
        (f"1-{Sel.MAX_IDS + 1}", "more than 1,000,000 ids"),
    ],
)
def test_parse_ids_refuses(token: str, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment) as info:
        Sel.parse_ids([token])
    assert "\n" not in info.value.message


def test_a_huge_single_id_is_not_found() -> None:
    # As `recordings show 99999999999999999999` says: no row can have it (exit 3).
    with pytest.raises(NotFound, match="not found"):
        Sel.parse_ids(["99999999999999999999"])


def test_too_many_over_several_tokens() -> None:
    with pytest.raises(UsageError, match="more than"):
        Sel.parse_ids(["1-600000", "600001-1000001"])
    assert len(Sel.parse_ids(["1-1000000"])) == Sel.MAX_IDS


def test_parse_lines() -> None:
    text = "# from jq\n5\n\n  7  \n9-10 # a range\n#12\n5\n"
    assert Sel.parse_lines(text, name="f") == [5, 7, 9, 10]
    with pytest.raises(UsageError, match="--ids-from f: line 3: 'x' is not a recording id"):
        Sel.parse_lines("1\n# c\nx\n", name="f")
    assert Sel.parse_lines("", name="f") == []


def test_choose() -> None:
    assert Sel.choose(None, None) is None
    assert Sel.choose(["1"], None) == [1]
    assert Sel.choose(None, "-", stdin=io.StringIO("4\n2\n")) == [4, 2]
    with pytest.raises(UsageError, match="ids or --ids-from, not both"):
        Sel.choose(["1"], "-")
    with pytest.raises(UsageError, match="ids or FILTERS, not both"):
        Sel.choose(["1"], None, filtered=True)
    with pytest.raises(UsageError, match="ids or FILTERS, not both"):
        Sel.choose(None, "-", filtered=True, stdin=io.StringIO("1"))


def test_read_ids_from_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        Sel.read_ids_from(str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="cannot read"):
        Sel.read_ids_from(str(tmp_path))  # a folder
    (tmp_path / "bin").write_bytes(b"1\n\xff\n")
    with pytest.raises(UsageError, match="not UTF-8"):
        Sel.read_ids_from(str(tmp_path / "bin"))
    (tmp_path / "ok").write_text("\ufeff3\n1\n")
    assert Sel.read_ids_from(str(tmp_path / "ok")) == [3, 1]


def test_summary() -> None:
    assert Sel.summary([9, 1, 2, 3, 5]) == "1-3,5,9"
    assert Sel.summary([]) == ""
    assert len(Sel.summary(list(range(1, 1000, 2)))) == 100


# ---------------------------------------------------------------- through the CLI


def _user_id(runtime: Runtime, name: str) -> int:
    with open_context(runtime, Scope.system_scope()) as ctx:
        return ctx.repos.users.require_name(name).id


def _add_recordings(runtime: Runtime, user_id: int, titles: list[str]) -> list[int]:
    with open_context(runtime, Scope.for_user(user_id)) as ctx:
        src = ctx.repos.sources.by_name("inbox") or ctx.repos.sources.add(
            m.InputSource(name="inbox", kind="local", config={"path": "/nowhere"})
        )
        tpl = ctx.repos.templates.by_name("lectures") or ctx.repos.templates.add(
            m.Template(name="lectures")
        )
        ids = []
        for n, title in enumerate(titles):
            rec = ctx.repos.recordings.add(
                m.Recording(
                    source_id=src.id,
                    external_id=f"{title}-{n}",
                    title=title,
                    start_time=T0,
                    template_id=tpl.id,
                )
            )
            ids.append(rec.id)
        return ids


@pytest.fixture
def two(leap_env: dict[str, str], runtime: Runtime, cli: Any) -> dict[str, list[int]]:
    """alice and bob (users) and an admin; three recordings each."""
    make_user(runtime, "root", Role.ADMIN)
    make_user(runtime, "alice")
    make_user(runtime, "bob")
    return {
        name: _add_recordings(runtime, _user_id(runtime, name), [f"{name} {i}" for i in range(3)])
        for name in ("alice", "bob")
    }


def _runs(runtime: Runtime) -> int:
    with open_context(runtime, Scope.system_scope()) as ctx:
        return ctx.repos.runs.count()


def _one_error(res: Any, code: int, fragment: str) -> None:
    assert res.code == code, (res.code, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("process", "1", "--unmapped"), "ids or FILTERS, not both"),
        (("process", "1", "--ids-from", "-"), "ids or --ids-from, not both"),
        (("process", "5-"), "'5-' is not a range"),
        (("process", "9-2"), "runs backwards"),
        (("process", "a"), "'a' is not a recording id"),
        (("process", "0"), "ids start at 1"),
        (("process", "--", "-3"), "ids are positive"),
        (("process", "1-2000000"), "more than 1,000,000 ids"),
        (("process", "--ids-from", "/no/such/file"), "cannot read"),
        (("process",), "give recording ids or at least one filter"),
        (("retry", "1", "--failed"), "ids or --failed, not both"),
        (("retry", "9-2"), "runs backwards"),
        (("cancel",), "give recording ids"),
        (("cancel", "x"), "'x' is not a recording id"),
        (("recordings", "rematch", "1", "--mapped"), "ids or FILTERS, not both"),
        (("recordings", "delete", "1-", "--yes"), "is not a range"),
        (("recordings", "delete", "--yes"), "give recording ids or at least one filter"),
    ],
)
def test_bad_selection(
    two: dict[str, list[int]], runtime: Runtime, cli: Any, args: tuple[str, ...], fragment: str
) -> None:
    _one_error(cli("--user", "alice", *args), 2, fragment)
    assert _runs(runtime) == 0
    assert len(cli("--user", "alice", "--json", "recordings", "list").json()) == 3


def test_bad_line_in_ids_from(
    two: dict[str, list[int]], runtime: Runtime, cli: Any, tmp_path: Path
) -> None:
    ids = tmp_path / "ids"
    ids.write_text(f"{two['alice'][0]}\n# fine\nnope\n")
    _one_error(cli("--user", "alice", "process", "--ids-from", str(ids)), 2, "line 3: 'nope'")
    assert _runs(runtime) == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("recordings", "list", "--template", "nope"), "template 'nope' not found"),
        (("recordings", "list", "--source", "nope"), "source 'nope' not found"),
        (("process", "--template", "nope"), "template 'nope' not found"),
        (("recordings", "rematch", "--source", "nope"), "source 'nope' not found"),
        (("recordings", "delete", "--template", "nope", "--yes"), "template 'nope' not found"),
    ],
)
def test_unknown_names_in_filters(
    two: dict[str, list[int]], cli: Any, args: tuple[str, ...], fragment: str
) -> None:
    _one_error(cli("--user", "alice", *args), 3, fragment)


def test_empty_selection_is_nothing_to_do(
    two: dict[str, list[int]], runtime: Runtime, cli: Any
) -> None:
    for args in (
        ("process", "--search", "no such title"),
        ("recordings", "delete", "--search", "no such title", "--yes"),
    ):
        res = cli("--user", "alice", *args)
        assert res.code == 0, res.stderr
        assert "nothing to do" in res.stderr
    assert _runs(runtime) == 0


def test_never_another_users_recordings(
    two: dict[str, list[int]], runtime: Runtime, cli: Any, tmp_path: Path
) -> None:
    alice, bob = two["alice"], two["bob"]
    theirs = f"{bob[0]}-{bob[-1]}"
    # Only bob's ids: each is "not found" (exit 3), nothing is started.
    res = cli("--user", "alice", "--json", "process", "--force", theirs)
    assert res.code == 3
    assert {r["recording_id"] for r in res.json()} == set(bob)
    assert all(r["error"] == f"recording {r['recording_id']} not found" for r in res.json())
    # Mixed: alice's ones run, bob's are reported per id; partial (exit 8).
    ids = tmp_path / "ids"
    ids.write_text(f"{alice[0]}\n{bob[1]}\n")
    res = cli("--user", "alice", "--json", "process", "--force", "--ids-from", str(ids))
    assert res.code == 8, res.stderr
    rows = {r["recording_id"]: r for r in res.json()}
    assert rows[alice[0]]["run_id"] is not None and rows[bob[1]]["run_id"] is None
    for args in (("retry", theirs), ("cancel", theirs), ("cancel", str(bob[0]))):
        assert cli("--user", "alice", *args).code == 3, args
    res = cli("--user", "alice", "recordings", "rematch", theirs)
    assert res.code == 3 and "not found" in res.stderr
    res = cli("--user", "alice", "recordings", "delete", theirs, "--yes")
    assert res.code == 3
    _one_error(cli("--user", "alice", "recordings", "delete", str(bob[0])), 3, "not found")
    _one_error(cli("--user", "alice", "recordings", "rematch", str(bob[0])), 3, "not found")
    # Filters only ever see alice's own.
    res = cli("--user", "alice", "--json", "process", "--force", "--search", "bob")
    assert res.code == 0 and "nothing to do" in res.stderr
    bob_id = _user_id(runtime, "bob")
    with open_context(runtime, Scope.system_scope()) as ctx:
        touched = {r.recording_id for r in ctx.repos.runs.list()}
        assert touched == {alice[0]}
        assert ctx.repos.recordings.count(user_id=bob_id) == 3


def test_bulk_cancel_and_retry(two: dict[str, list[int]], runtime: Runtime, cli: Any) -> None:
    alice = two["alice"]
    everything = f"{alice[0]}-{alice[-1]}"
    res = cli("--user", "alice", "--json", "process", "--force", everything)
    assert res.code == 0, res.stderr
    res = cli("--user", "alice", "--json", "cancel", everything)
    assert res.code == 0, res.stderr
    assert [r["status"] for r in res.json()] == ["cancelled"] * 3
    # Cancelled stages are retried from where they stopped.
    res = cli("--user", "alice", "--json", "retry", f"{alice[0]},{alice[1]}")
    assert res.code == 0, res.stderr
    assert len(res.json()) == 2
    res = cli("--user", "alice", "--json", "audit", "list")
    actions = [e["action"] for e in res.json()]
    assert actions[:3] == ["recordings.retry", "recordings.cancel", "recordings.process"]
    assert res.json()[0]["detail"] == {
        "selected": 2,
        "done": 2,
        "refused": 0,
        "result": "ok",
    }


def test_ids_from_stdin_in_a_pipe(two: dict[str, list[int]], leap_env: dict[str, str]) -> None:
    """`leap --json recordings list | jq '.[].id' | leap process --ids-from -`, as a real
    process reading its stdin."""
    env = {**os.environ, **leap_env, "LEAP_USER": "alice"}
    listed = subprocess.run(
        [sys.executable, "-m", "leap.cli", "--json", "recordings", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert listed.returncode == 0, listed.stderr
    import json

    lines = "\n".join(str(r["id"]) for r in json.loads(listed.stdout)) + "\n"
    proc = subprocess.run(
        [sys.executable, "-m", "leap.cli", "--json", "process", "--force", "--ids-from", "-"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        input="# from jq\n" + lines,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["recording_id"] for r in json.loads(proc.stdout)) == sorted(two["alice"])


# ---------------------------------------------------------------- recordings delete


def test_delete(two: dict[str, list[int]], runtime: Runtime, cli: Any, settings: Any) -> None:
    alice, bob = two["alice"], two["bob"]
    media = settings.media_path
    folders = {}
    for uid_name, rid in (("alice", alice[0]), ("alice", alice[1]), ("bob", bob[0])):
        folder = media / f"user_{_user_id(runtime, uid_name)}" / "recordings" / str(rid)
        folder.mkdir(parents=True)
        (folder / "source.mp4").write_bytes(b"x" * 10)
        folders[rid] = folder
    # A running one is refused (Conflict) while the others go: partial, exit 8.
    runtime.enqueue = lambda *_: None
    with open_context(runtime, Scope.for_user(_user_id(runtime, "alice"))) as ctx:
        runs.start_run(ctx, alice[2])
    selection = f"{alice[0]}-{alice[2]}"
    res = cli("--user", "alice", "recordings", "delete", selection)
    assert res.code == 2 and "needs --yes" in res.stderr
    assert f"would delete recording {alice[0]}" in res.stderr
    res = cli("--user", "alice", "--json", "recordings", "delete", selection, str(bob[0]), "--yes")
    assert res.code == 8, res.stderr
    rows = {r["recording_id"]: r for r in res.json()}
    assert rows[alice[0]]["deleted"] and rows[alice[0]]["files_removed"]
    assert rows[alice[1]]["deleted"]
    assert not rows[alice[2]]["deleted"] and "run in progress" in rows[alice[2]]["error"]
    assert not rows[bob[0]]["deleted"] and rows[bob[0]]["error"].endswith("not found")
    assert not folders[alice[0]].exists() and not folders[alice[1]].exists()
    assert (folders[bob[0]] / "source.mp4").exists()
    with open_context(runtime, Scope.system_scope()) as ctx:
        left = {r.id for r in ctx.repos.recordings.list()}
        assert left == {alice[2], *bob}
        assert ctx.repos.runs.count(recording_id=alice[2]) == 1  # the running one's run
        entries = [e for e in ctx.repos.audit.list() if e.action == "recording.delete"]
        assert sorted(e.subject or "" for e in entries) == sorted(
            f"recording {rid}" for rid in alice[:2]
        )


def test_delete_cascades_and_keeps_folders_outside(
    two: dict[str, list[int]], runtime: Runtime, cli: Any, settings: Any, tmp_path: Path
) -> None:
    alice = two["alice"]
    runtime.enqueue = lambda *_: None
    with open_context(runtime, Scope.for_user(_user_id(runtime, "alice"))) as ctx:
        run = runs.start_run(ctx, alice[0])
        runs.cancel(ctx, alice[0])
        assert ctx.repos.stages.count(run_id=run.id) > 0
    # A media folder swapped for a link elsewhere is not followed.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "keep.mp4").write_bytes(b"x")
    user_dir = settings.media_path / f"user_{_user_id(runtime, 'alice')}" / "recordings"
    user_dir.mkdir(parents=True)
    (user_dir / str(alice[0])).symlink_to(outside)
    res = cli("--user", "alice", "--json", "recordings", "delete", str(alice[0]), "--yes")
    assert res.code == 0, res.stderr
    assert res.json()[0]["files_removed"] is False
    assert (outside / "keep.mp4").exists()
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert ctx.repos.runs.count(recording_id=alice[0]) == 0
        assert ctx.repos.stages.count(recording_id=alice[0]) == 0


# ---------------------------------------------------------------- audit list


def test_audit_list(two: dict[str, list[int]], cli: Any) -> None:
    assert cli("--user", "alice", "recordings", "delete", str(two["alice"][0]), "--yes").code == 0
    assert cli("--user", "bob", "recordings", "delete", str(two["bob"][0]), "--yes").code == 0
    mine = cli("--user", "alice", "--json", "audit", "list").json()
    # Her own entries only (creating her account is one too), newest first.
    assert [e["subject"] for e in mine][:1] == [f"recording {two['alice'][0]}"]
    assert not any(e["subject"] == f"recording {two['bob'][0]}" for e in mine)
    assert mine[0]["actor"] == "alice" and "user" not in mine[0]
    every = cli("--user", "root", "--json", "audit", "list").json()
    assert {e["user"] for e in every if e["action"] == "recording.delete"} == {"alice", "bob"}
    assert (
        cli("--user", "root", "--json", "audit", "list", "--limit", "1").json()[0]["subject"]
        == f"recording {two['bob'][0]}"
    )
    res = cli("--user", "alice", "audit", "list")
    assert res.code == 0 and "recording.delete" in res.stdout
    _one_error(cli("--user", "alice", "audit", "list", "--limit", "0"), 2, "--limit")
