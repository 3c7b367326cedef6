from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from leap.context import Runtime
from leap.db.migrate import current_revision, head_revision
from leap.db.models import Base


def test_database_is_at_head(runtime: Runtime) -> None:
    assert current_revision(runtime.engine) == head_revision(runtime.engine)


def test_autogenerate_finds_no_difference(runtime: Runtime) -> None:
    with runtime.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    # Huey's own tables may share a PostgreSQL database; they are not ours to model.
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name.startswith("huey_"))]
    assert diff == []


def test_every_model_table_exists_with_plans_seeded(runtime: Runtime) -> None:
    tables = set(inspect(runtime.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    with runtime.engine.connect() as conn:
        plans = {r[0] for r in conn.execute(text("SELECT name FROM plans"))}
    assert plans == {"free", "plus", "pro", "enterprise"}


def test_unique_constraints_guard_duplicates(runtime: Runtime) -> None:
    insp = inspect(runtime.engine)
    uniques = {
        t: {tuple(u["column_names"]) for u in insp.get_unique_constraints(t)}
        for t in ("recordings", "output_targets", "stage_results", "templates", "credentials")
    }
    assert ("source_id", "external_id") in uniques["recordings"]
    assert ("recording_id", "preset_id") in uniques["output_targets"]
    assert ("run_id", "name") in uniques["stage_results"]
    assert ("user_id", "name") in uniques["templates"]
    assert ("user_id", "name") in uniques["credentials"]
