"""Bulk starts: `leap process` and the stage verbs over a mixed selection, where the
--dry-run's rows must be exactly what the real run then does; the pure decision; paging
(a constant number of statements per page) and batched queue messages; `sync --source A
--source B`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert
from sqlalchemy.engine import Engine

from leap.context import Runtime, open_context
from leap.db import models as m
from leap.db.scope import Scope
from leap.domain import Role
from leap.queue import make_huey
from leap.services import runs
from leap.specs import startable
from leap.specs.startable import Facts
from leap.tasks import TaskQueue
from tests import media
from tests.conftest import make_user, put_on_plan

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
VERBS = ("process", "download", "trim", "transcribe", "topics", "subtitles", "upload")
ALL = ["download", "trim", "transcribe", "topics", "subtitles", "upload"]

# ---------------------------------------------------------------- the decision (pure)


def facts(**kw: Any) -> Facts:
    base: dict[str, Any] = {
        "recording_id": 1,
        "title": "t",
        "status": "initialized",
        "blank": False,
        "blank_reason": None,
        "mapped": True,
        "active_run_id": None,
    }
    return Facts(**(base | kw))


@pytest.mark.parametrize(
    ("kw", "planned", "force", "act", "code", "reason"),
    [
        ({}, ALL, False, True, 0, None),
        ({"status": "expired"}, ALL, True, False, 2, "deleted at its source"),
        ({"active_run_id": 4}, ALL, True, False, 7, "already being processed (run 4)"),
        ({"blank": True, "blank_reason": "silent"}, ALL, False, False, 2, "blank record (silent)"),
        ({"blank": True}, ALL, True, True, 0, None),
        ({"mapped": False}, ALL, False, False, 2, "matches no template"),
        ({"mapped": False}, ALL, True, True, 0, None),
        ({"status": "bogus"}, ALL, False, False, 2, "cannot be queued from status"),
        ({"finished": frozenset(ALL), "published": True}, ALL, False, False, 0, "already done"),
        ({"finished": frozenset(ALL), "published": True}, ALL, True, True, 0, None),
        # An upload is done only when every target is published.
        ({"finished": frozenset(ALL), "published": False}, ALL, False, True, 0, None),
        ({"finished": frozenset(ALL), "published": False}, ["trim"], False, False, 0, "already"),
        ({"finished": frozenset({"download"})}, ["download"], False, False, 0, "already done"),
        ({"finished": frozenset({"download"})}, ["trim"], False, True, 0, None),
        # A dead credential matters only to a stage that would use it.
        ({"dead": {"download": "zoomy"}}, ALL, False, False, 5, "credential zoomy needs"),
        ({"dead": {"download": "zoomy"}}, ["trim"], False, True, 0, None),
        (
            {"dead": {"download": "zoomy"}, "finished": frozenset({"download"})},
            ALL,
            False,
            True,
            0,
            None,
        ),
        ({"dead": {"upload": "yt"}}, ["upload"], False, False, 5, "credential yt needs"),
    ],
)
def test_decide(
    kw: dict[str, Any],
    planned: list[str],
    force: bool,
    act: bool,
    code: int,
    reason: str | None,
) -> None:
    d = startable.decide(facts(**kw), planned, force=force)
    assert (d.act, d.exit_code) == (act, code)
    if reason is None:
        assert d.reason is None
    else:
        assert d.reason is not None and reason in d.reason
    assert d.refused == (not act and code != 0)


def test_decide_without_skipping_done() -> None:
    done = facts(finished=frozenset(ALL), published=True)
    assert startable.decide(done, ALL, force=False, skip_done=False).act


# ---------------------------------------------------------------- a mixed data set


def _uid(runtime: Runtime, name: str) -> int:
    with open_context(runtime, Scope.system_scope()) as ctx:
        return ctx.repos.users.require_name(name).id


def _finished_run(ctx: Any, rec: m.Recording, stages: list[str]) -> None:
    """A run that ended with these stages done (what an earlier `leap process` leaves)."""
    run = ctx.repos.runs.add(
        m.PipelineRun(recording_id=rec.id, user_id=rec.user_id, stages=stages, status="done")
    )
    for pos, name in enumerate(stages):
        ctx.repos.stages.add(
            m.StageResult(
                run_id=run.id,
                recording_id=rec.id,
                user_id=rec.user_id,
                name=name,
                position=pos,
                status="done",
            )
        )


@pytest.fixture
def mixed(leap_env: dict[str, str], runtime: Runtime, cli: Any) -> dict[str, int]:
    """alice's recordings in every state a start can meet, bob's one, and an id nobody has."""
    make_user(runtime, "alice")
    make_user(runtime, "bob")
    out: dict[str, int] = {}
    with open_context(runtime, Scope.for_user(_uid(runtime, "alice"))) as ctx:
        src = ctx.repos.sources.add(
            m.InputSource(name="inbox", kind="local", config={"path": "/nowhere"})
        )
        dead = ctx.repos.credentials.add(
            m.Credential(name="zoomy", kind="zoom-s2s", secret=b"x", status="needs_reauth")
        )
        zoom = ctx.repos.sources.add(
            m.InputSource(name="zoom", kind="zoom", credential_id=dead.id, config={})
        )
        tpl = ctx.repos.templates.add(m.Template(name="lectures"))
        preset = ctx.repos.presets.add(m.OutputPreset(name="folder", platform="local", meta={}))
        ctx.repos.template_presets.add(
            m.TemplatePreset(template_id=tpl.id, preset_id=preset.id, position=0)
        )

        def rec(key: str, **kw: Any) -> m.Recording:
            values: dict[str, Any] = {
                "source_id": src.id,
                "external_id": key,
                "title": key,
                "start_time": T0 + timedelta(hours=len(out)),
                "template_id": tpl.id,
            } | kw
            r = ctx.repos.recordings.add(m.Recording(**values))
            out[key] = r.id
            return r

        rec("fresh")
        rec("blank", blank_record=True, blank_reason="silent")
        rec("unmapped", template_id=None)
        rec("expired", status="expired")
        rec("dead credential", source_id=zoom.id)
        rec("running")
        downloaded = rec("downloaded", status="downloaded")
        _finished_run(ctx, downloaded, ["download"])
        published = rec("published", status="ready")
        _finished_run(ctx, published, ALL)
        ctx.repos.targets.add(
            m.OutputTarget(
                recording_id=published.id,
                preset_id=preset.id,
                platform="local",
                status="uploaded",
                idempotency_key=f"k-{published.id}",
            )
        )
        # Every stage done, but a target never published: the upload still has work.
        unpublished = rec("unpublished", status="processed")
        _finished_run(ctx, unpublished, ALL)
    runtime.enqueue = lambda *_: None
    with open_context(runtime, Scope.for_user(_uid(runtime, "alice"))) as ctx:
        runs.start_run(ctx, out["running"])
    with open_context(runtime, Scope.for_user(_uid(runtime, "bob"))) as ctx:
        src = ctx.repos.sources.add(m.InputSource(name="inbox", kind="local", config={}))
        tpl = ctx.repos.templates.add(m.Template(name="lectures"))
        theirs = ctx.repos.recordings.add(
            m.Recording(
                source_id=src.id,
                external_id="bob",
                title="bob's",
                start_time=T0,
                template_id=tpl.id,
            )
        )
        out["bob's"] = theirs.id
    out["nobody's"] = 99_999
    return out


# What each verb does with each recording: acts (None), or the reason's first words.
EXPECTED: dict[str, dict[str, str | None]] = {
    "process": {"fresh": None, "downloaded": None, "unpublished": None, "published": "already"},
    "download": {"fresh": None, "downloaded": "already", "unpublished": "already"},
    "trim": {"fresh": None, "downloaded": None, "unpublished": "already", "dead credential": None},
    "upload": {"fresh": None, "unpublished": None, "published": "already"},
}
COMMON = {
    "blank": "blank record",
    "unmapped": "matches no template",
    "expired": "deleted at its source",
    "running": "already being processed",
    "bob's": "not found",
    "nobody's": "not found",
}


def _runs_of(runtime: Runtime) -> dict[int, int]:
    with open_context(runtime, Scope.system_scope()) as ctx:
        return {r.recording_id: r.id for r in ctx.repos.runs.list() if r.status == "active"}


@pytest.mark.parametrize("verb", VERBS)
def test_dry_run_is_what_the_run_does(
    verb: str, mixed: dict[str, int], runtime: Runtime, cli: Any
) -> None:
    ids = [str(i) for i in mixed.values()]
    before = _runs_of(runtime)
    dry = cli("--user", "alice", "--json", verb, *ids, "--dry-run")
    assert dry.code == 0, dry.stderr
    assert _runs_of(runtime) == before  # a dry run changes nothing
    plan = {r["recording_id"]: r for r in dry.json()}
    assert list(plan) == list(mixed.values())  # every id, in the order given
    name = {v: k for k, v in mixed.items()}
    for rid, row in plan.items():
        want = (EXPECTED.get(verb, {}) | COMMON).get(name[rid], "")
        if want is None:
            assert row["would"] == verb and row["reason"] is None, row
        elif want:
            assert row["would"] == "skip" and row["reason"].startswith(want), row
    assert "dry run:" in dry.stderr and "nothing was changed" in dry.stderr

    real = cli("--user", "alice", "--json", verb, *ids)
    assert real.code == 8, real.stderr  # some started, some refused
    started = {r["recording_id"] for r in real.json() if r["run_id"] is not None}
    assert started == {rid for rid, r in plan.items() if r["would"] == verb}
    for row in real.json():
        if row["run_id"] is None:
            said = row.get("skipped") or row["error"]
            reason = plan[row["recording_id"]]["reason"]
            assert said == reason or said == f"recording {row['recording_id']} not found"
    after = _runs_of(runtime)
    assert set(after) - set(before) == started
    assert mixed["bob's"] not in after
    if verb != "process":  # a stage verb runs exactly its stage
        assert all(r["stages"] == [verb] for r in real.json() if r["run_id"] is not None)


def test_filters_dry_run_and_run_agree(mixed: dict[str, int], runtime: Runtime, cli: Any) -> None:
    dry = cli("--user", "alice", "--json", "process", "--template", "lectures", "--dry-run")
    assert dry.code == 0, dry.stderr
    would = {r["recording_id"] for r in dry.json() if r["would"] == "process"}
    assert would == {mixed["fresh"], mixed["downloaded"], mixed["unpublished"]}
    real = cli("--user", "alice", "--json", "process", "--template", "lectures")
    assert {r["recording_id"] for r in real.json() if r["run_id"]} == would
    # The same filter again: everything is now running or done, nothing starts twice.
    again = cli("--user", "alice", "--json", "process", "--template", "lectures")
    assert not [r for r in again.json() if r["run_id"]]


def test_dry_run_table_and_bad_combinations(mixed: dict[str, int], cli: Any) -> None:
    res = cli("--user", "alice", "trim", str(mixed["fresh"]), str(mixed["blank"]), "--dry-run")
    assert res.code == 0, res.stderr
    assert "would" in res.stdout and "blank record" in res.stdout
    assert "dry run: 1 would trim; 1 skipped (1 blank record)" in res.stderr
    for extra in ("--now", "--wait"):
        res = cli("--user", "alice", "process", str(mixed["fresh"]), "--dry-run", extra)
        assert res.code == 2 and "--dry-run" in res.stderr
    res = cli("--user", "alice", "upload", "--template", "nope", "--dry-run")
    assert res.code == 3 and "template 'nope' not found" in res.stderr
    res = cli("--user", "alice", "download", "3", "--unmapped")
    assert res.code == 2 and "ids or FILTERS, not both" in res.stderr


def test_topics_verb_and_topics_show(mixed: dict[str, int], cli: Any) -> None:
    res = cli("--user", "alice", "--json", "topics", str(mixed["fresh"]), "--dry-run")
    assert res.code == 0 and res.json()[0]["would"] == "topics"
    res = cli("--user", "alice", "topics", "show", str(mixed["fresh"]))
    assert res.code != 0 and "Traceback" not in res.stderr  # no topics yet: a clear error
    assert cli("topics", "--help").code == 0


def test_single_refusals_keep_their_codes(mixed: dict[str, int], cli: Any) -> None:
    for key, code in (("blank", 2), ("running", 7), ("nobody's", 3), ("dead credential", 5)):
        res = cli("--user", "alice", "process", str(mixed[key]))
        assert res.code == code, (key, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: recording"), res.stderr
    res = cli("--user", "alice", "process", str(mixed["published"]))
    assert res.code == 0 and "skipped, already done" in res.stderr


# ---------------------------------------------------------------- scale


@pytest.fixture
def statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    yield seen
    event.remove(Engine, "before_cursor_execute", count)


def _many(runtime: Runtime, n: int) -> None:
    uid = _uid(runtime, "alice")
    with open_context(runtime, Scope.for_user(uid)) as ctx:
        src = ctx.repos.sources.by_name("inbox")
        tpl = ctx.repos.templates.by_name("lectures")
        assert src is not None and tpl is not None
        ctx.session.execute(
            insert(m.Recording),
            [
                {
                    "user_id": uid,
                    "source_id": src.id,
                    "external_id": f"many-{i}",
                    "title": f"many {i}",
                    "start_time": T0 - timedelta(days=1, minutes=i),
                    "template_id": tpl.id,
                }
                for i in range(n)
            ],
        )


def test_pages_cost_the_same_number_of_statements(
    mixed: dict[str, int], runtime: Runtime, cli: Any, statements: list[str], settings: Any
) -> None:
    _many(runtime, 1_100)  # three pages of 500 with the mixed set
    put_on_plan(runtime, "alice", "enterprise")  # no quota in the way
    statements.clear()
    dry = cli("--user", "alice", "--json", "process", "--search", "many", "--dry-run")
    assert dry.code == 0 and len(dry.json()) == 1_100
    dry_statements = len(statements)
    statements.clear()
    res = cli("--user", "alice", "--json", "process", "--search", "many")
    assert res.code == 0, res.stderr
    assert len({r["run_id"] for r in res.json()}) == 1_100
    # Set-based: a handful of statements per page, never one per recording.
    assert dry_statements < 40, dry_statements
    assert len(statements) < 80, len(statements)
    # One queue message per page of runs, not one per run.
    huey = make_huey(settings)
    TaskQueue(huey, runtime)  # registers LEAP's tasks, so the messages can be read
    assert huey.pending_count() == 3
    assert {msg.name for msg in huey.pending()} == {"leap.stage_batch"}
    assert sum(len(msg.kwargs["stage_ids"]) for msg in huey.pending()) == 1_100
    # The daemon's side: each batch becomes one message per first stage.
    batch = huey.dequeue()
    assert batch is not None
    huey.execute(batch)
    assert huey.pending_count() == 2 + len(batch.kwargs["stage_ids"])


def test_keyset_paging_neither_skips_nor_repeats(
    mixed: dict[str, int], runtime: Runtime, cli: Any
) -> None:
    # --status initialized: each page started leaves the filter; OFFSET paging would skip
    # a page's worth of recordings after every page.
    _many(runtime, 1_020)
    put_on_plan(runtime, "alice", "enterprise")  # no quota in the way
    res = cli("--user", "alice", "--json", "process", "--status", "initialized", "--force")
    started = [r["recording_id"] for r in res.json() if r["run_id"]]
    # + fresh, blank and unmapped (forced); the dead credential still refuses.
    assert len(started) == len(set(started)) == 1_020 + 3
    res = cli("--user", "alice", "--json", "process", "--search", "many", "--limit", "7")
    assert len(res.json()) == 7


# ---------------------------------------------------------------- sync over several sources


def test_sync_several_sources(
    leap_env: dict[str, str], runtime: Runtime, cli: Any, tmp_path: Any
) -> None:
    make_user(runtime, "root", Role.ADMIN)
    for name in ("a", "b", "c"):
        folder = tmp_path / name
        folder.mkdir()
        media.make_audio(folder / f"{name}.m4a", seconds=1)
        assert cli("source", "add", "local", name, str(folder)).code == 0
    res = cli("--json", "sync", "--source", "a", "--source", "nope")
    assert res.code == 3 and "source 'nope' not found" in res.stderr
    assert cli("--json", "recordings", "list").json() == []  # nothing synced, not even a
    res = cli("--json", "sync", "--source", "c", "--source", "a", "--source", "c")
    assert res.code == 0, res.stderr
    assert [r["source"] for r in res.json()] == ["c", "a"]
    assert sorted(r["source"] for r in cli("--json", "recordings", "list").json()) == ["a", "c"]


# ---------------------------------------------------------------- config and meta over a SELECTION


def _overrides(
    runtime: Runtime, ids: list[int]
) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
    with open_context(runtime, Scope.system_scope()) as ctx:
        return {
            i: (
                ctx.repos.recordings.require(i).overrides,
                ctx.repos.recordings.require(i).meta_overrides,
            )
            for i in ids
        }


def test_config_and_meta_over_a_selection(
    mixed: dict[str, int], runtime: Runtime, cli: Any, tmp_path: Any
) -> None:
    mine = [mixed["fresh"], mixed["blank"], mixed["downloaded"]]
    bobs = mixed["bob's"]
    res = cli(
        "--user",
        "alice",
        "--json",
        "recordings",
        "config",
        *map(str, mine),
        str(bobs),
        "--set",
        "trim.accurate=true",
    )
    assert res.code == 8, res.stderr  # bob's is not found, and untouched
    assert res.json()["changed"] == 3 and res.json()["not_found"] == [bobs]
    got = _overrides(runtime, [*mine, bobs])
    assert all(got[i][0] == {"trim": {"accurate": True}} for i in mine)
    assert got[bobs][0] == {}
    # A value refused: nothing changes anywhere (one unit of work).
    res = cli(
        "--user",
        "alice",
        "recordings",
        "config",
        "--template",
        "lectures",
        "--set",
        "trim.accurate=maybe",
    )
    assert res.code == 2 and "trim.accurate" in res.stderr
    assert _overrides(runtime, mine) == {i: got[i] for i in mine}
    # FILTERS, and --reset.
    res = cli(
        "--user", "alice", "--json", "recordings", "config", "--template", "lectures", "--reset"
    )
    assert res.code == 0 and res.json()["changed"] == 8  # alice's mapped recordings
    assert all(v[0] == {} for v in _overrides(runtime, mine).values())
    # meta with --ids-from.
    (tmp_path / "ids").write_text("\n".join(map(str, mine[:2])) + "\n")
    res = cli(
        "--user",
        "alice",
        "recordings",
        "meta",
        "--ids-from",
        str(tmp_path / "ids"),
        "--set",
        "title=Checked",
    )
    assert res.code == 0, res.stderr
    got = _overrides(runtime, mine)
    assert [got[i][1] for i in mine] == [{"title": "Checked"}, {"title": "Checked"}, {}]
    # Several without --set: a usage error; one id alone still shows its values.
    res = cli("--user", "alice", "recordings", "config", *map(str, mine))
    assert res.code == 2 and "--set" in res.stderr
    res = cli("--user", "alice", "--json", "recordings", "config", str(mine[0]))
    assert res.code == 0 and "origins" in res.json()
    res = cli("--user", "alice", "recordings", "config", str(bobs))
    assert res.code == 3
