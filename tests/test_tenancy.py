"""Two users, every repository method: neither user ever sees or changes the other's rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from leap.context import Runtime, open_context
from leap.db import models as m
from leap.db.base import UserOwned
from leap.db.repos import Repo, Repos
from leap.db.scope import Scope
from leap.domain import Role
from leap.errors import ScopeError
from tests.conftest import make_user

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)

# Every user-owned repository and a column it can bulk-update harmlessly.
OWNED: dict[str, tuple[str, Any]] = {
    "quota_overrides": ("value", 7.0),
    "usage": ("amount", 2.5),
    "credentials": ("status", "needs_reauth"),
    "sources": ("enabled", False),
    "presets": ("platform", "vk"),
    "templates": ("position", 99),
    "template_presets": ("position", 5),
    "recordings": ("status", "failed"),
    "runs": ("status", "failed"),
    "stages": ("status", "failed"),
    "targets": ("status", "failed"),
    "automations": ("enabled", False),
    "automation_runs": ("status", "done"),
    "audit": ("action", "changed"),
    "notify_targets": ("enabled", False),
    "notifications": ("status", "failed"),
}


def seed(runtime: Runtime, scope: Scope, tag: str) -> None:
    """One row in every user-owned table, written through the user's own scope."""
    with open_context(runtime, scope) as ctx:
        r = ctx.repos
        cred = r.credentials.add(m.Credential(name=f"c-{tag}", kind="zoom-s2s", secret=b"x"))
        src = r.sources.add(m.InputSource(name=f"s-{tag}", kind="zoom", credential_id=cred.id))
        preset = r.presets.add(m.OutputPreset(name=f"p-{tag}", platform="youtube"))
        tpl = r.templates.add(m.Template(name=f"t-{tag}"))
        r.template_presets.add(m.TemplatePreset(template_id=tpl.id, preset_id=preset.id))
        rec = r.recordings.add(
            m.Recording(
                source_id=src.id,
                external_id=f"e-{tag}",
                title=tag,
                start_time=T0,
                template_id=tpl.id,
            )
        )
        run = r.runs.add(m.PipelineRun(recording_id=rec.id, stages=["download"]))
        r.stages.add(m.StageResult(run_id=run.id, recording_id=rec.id, name="download", position=0))
        r.targets.add(
            m.OutputTarget(
                recording_id=rec.id,
                preset_id=preset.id,
                platform="youtube",
                idempotency_key=f"k-{tag}",
            )
        )
        job = r.automations.add(m.AutomationJob(name=f"j-{tag}"))
        r.automation_runs.add(m.AutomationRun(job_id=job.id))
        r.audit.add(m.AuditEntry(actor=tag, action="seed"))
        target = r.notify_targets.add(m.NotifyTarget(name=f"n-{tag}", kind="webhook"))
        r.notifications.add(m.Notification(target_id=target.id, event="published"))
        r.quota_overrides.add(m.QuotaOverride(key="recordings_per_month", value=1))
        r.usage.add(m.UsageEvent(kind="llm_tokens", amount=1, recording_id=rec.id))


@pytest.fixture
def two_users(runtime: Runtime) -> tuple[Scope, Scope]:
    alice = make_user(runtime, "alice")
    bob = make_user(runtime, "bob")
    seed(runtime, alice, "alice")
    seed(runtime, bob, "bob")
    return alice, bob


def repo(ctx_repos: Repos, name: str) -> Repo[Any]:
    r = getattr(ctx_repos, name)
    assert isinstance(r, Repo)
    return r


def test_every_owned_table_is_covered() -> None:
    owned_models = {
        mapper.class_ for mapper in m.Base.registry.mappers if issubclass(mapper.class_, UserOwned)
    }
    # Repos only keep the session reference, so a throwaway one can be inspected.
    repos = Repos(None)  # type: ignore[arg-type]
    covered_models = {getattr(repos, name).model for name in OWNED}
    assert covered_models == owned_models


@pytest.mark.parametrize("name", sorted(OWNED))
def test_reads_see_only_own_rows(
    runtime: Runtime, two_users: tuple[Scope, Scope], name: str
) -> None:
    alice, bob = two_users
    with open_context(runtime, Scope.system_scope()) as ctx:
        all_rows = repo(ctx.repos, name).list()
        bobs = [row.id for row in all_rows if row.user_id == bob.user_id]
        alices = [row.id for row in all_rows if row.user_id == alice.user_id]
    assert bobs and alices
    with open_context(runtime, alice) as ctx:
        r = repo(ctx.repos, name)
        assert [row.id for row in r.list()] == alices
        assert r.count() == len(alices)
        assert r.get(bobs[0]) is None
        assert r.get(alices[0]) is not None
        assert r.find(id=bobs[0]) is None
        with pytest.raises(Exception, match="not found"):
            r.require(bobs[0])
        if hasattr(r, "by_name"):
            other = f"{name[0]}-bob"
            assert all(row.user_id == alice.user_id for row in r.list())
            assert r.by_name(other) is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(OWNED))
def test_bulk_update_and_delete_touch_only_own_rows(
    runtime: Runtime, two_users: tuple[Scope, Scope], name: str
) -> None:
    alice, bob = two_users
    column, value = OWNED[name]
    with open_context(runtime, bob) as ctx:
        bob_before = {row.id: getattr(row, column) for row in repo(ctx.repos, name).list()}
    with open_context(runtime, alice) as ctx:
        r = repo(ctx.repos, name)
        mine = r.count()
        assert r.update_where({column: value}) == mine
    with open_context(runtime, bob) as ctx:
        after = {row.id: getattr(row, column) for row in repo(ctx.repos, name).list()}
        assert after == bob_before
    with open_context(runtime, alice) as ctx:
        if name == "credentials":  # sources RESTRICT deleting the credential they use
            ctx.repos.sources.delete_where()
        assert repo(ctx.repos, name).delete_where() == mine
    with open_context(runtime, bob) as ctx:
        assert repo(ctx.repos, name).count() == len(bob_before)


def test_relationship_loads_are_filtered_too(
    runtime: Runtime, two_users: tuple[Scope, Scope]
) -> None:
    alice, _ = two_users
    with open_context(runtime, alice) as ctx:
        rows = ctx.session.scalars(
            select(m.Recording).join(m.InputSource, m.Recording.source_id == m.InputSource.id)
        ).all()
        assert [r.title for r in rows] == ["alice"]


def test_writing_another_users_row_is_refused(
    runtime: Runtime, two_users: tuple[Scope, Scope]
) -> None:
    alice, bob = two_users
    with pytest.raises(ScopeError), open_context(runtime, alice) as ctx:
        ctx.repos.templates.add(m.Template(name="sneaky", user_id=bob.user_id))
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert ctx.repos.templates.by_name("sneaky") is None
    # An object loaded elsewhere and carried into alice's session cannot be changed there.
    with open_context(runtime, bob) as ctx:
        bobs_template = ctx.repos.templates.require_name("t-bob")
    with pytest.raises(ScopeError), open_context(runtime, alice) as ctx:
        merged = ctx.session.merge(bobs_template)
        merged.name = "stolen"
        ctx.session.flush()
    with open_context(runtime, bob) as ctx:
        assert ctx.repos.templates.by_name("t-bob") is not None


def test_new_rows_are_stamped_with_the_scope_user(
    runtime: Runtime, two_users: tuple[Scope, Scope]
) -> None:
    alice, _ = two_users
    with open_context(runtime, alice) as ctx:
        t = ctx.repos.templates.add(m.Template(name="fresh"))
        assert t.user_id == alice.user_id


def test_no_scope_no_access(runtime: Runtime) -> None:
    with Session(runtime.engine) as session, pytest.raises(ScopeError):
        session.scalars(select(m.Recording)).all()
    with pytest.raises(TypeError), open_context(runtime, None):  # type: ignore[arg-type]
        pass


def test_system_scope_cannot_write_ownerless_rows(runtime: Runtime) -> None:
    with pytest.raises(ScopeError), open_context(runtime, Scope.system_scope()) as ctx:
        ctx.repos.templates.add(m.Template(name="orphan"))


def test_users_table_plain_user_sees_only_self(
    runtime: Runtime, two_users: tuple[Scope, Scope]
) -> None:
    alice, _ = two_users
    admin = make_user(runtime, "root", Role.ADMIN)
    with open_context(runtime, alice) as ctx:
        assert [u.name for u in ctx.repos.users.list()] == ["alice"]
        assert ctx.repos.users.by_name("bob") is None
        assert ctx.repos.users.update_where({"timezone": "Europe/Moscow"}) == 1
    with open_context(runtime, admin) as ctx:
        assert {u.name for u in ctx.repos.users.list()} == {"alice", "bob", "root"}
        tz = {u.name: u.timezone for u in ctx.repos.users.list()}
    assert tz["alice"] == "Europe/Moscow" and tz["bob"] == "UTC"


def test_deleting_a_user_removes_only_their_rows(
    runtime: Runtime, two_users: tuple[Scope, Scope]
) -> None:
    alice, bob = two_users
    with open_context(runtime, Scope.system_scope()) as ctx:
        ctx.repos.users.delete(ctx.repos.users.require(alice.user_id))  # type: ignore[arg-type]
    with open_context(runtime, Scope.system_scope()) as ctx:
        for name in OWNED:
            owners = {row.user_id for row in repo(ctx.repos, name).list()}
            assert owners == {bob.user_id}, name


def test_bulk_insert_is_stamped_and_checked(
    runtime: Runtime, two_users: tuple[Scope, Scope]
) -> None:
    alice, bob = two_users
    with open_context(runtime, alice) as ctx:
        src = ctx.repos.sources.require_name("s-alice")
        row = {
            "source_id": src.id,
            "external_id": "bulk-1",
            "title": "b",
            "start_time": T0,
            "overrides": {},
            "meta_overrides": {},
            "files": [],
        }
        ctx.repos.recordings.insert_many([row])
    with open_context(runtime, alice) as ctx:
        assert ctx.repos.recordings.find(external_id="bulk-1") is not None
    with pytest.raises(ScopeError), open_context(runtime, alice) as ctx:
        ctx.repos.recordings.insert_many([row | {"external_id": "bulk-2", "user_id": bob.user_id}])
    with open_context(runtime, Scope.system_scope()) as ctx:
        assert ctx.repos.recordings.find(external_id="bulk-2") is None
        with pytest.raises(ScopeError):
            ctx.repos.recordings.insert_many([row | {"external_id": "bulk-3"}])
