from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

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


def test_the_light_readings_agree_with_alembic(runtime: Runtime) -> None:
    """head_revision and current_revision read files and a table without importing Alembic;
    Alembic's own answers must be the same."""
    from alembic.script import ScriptDirectory

    from leap.db.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config(runtime.engine))
    assert head_revision(runtime.engine) == script.get_current_head()
    with runtime.engine.connect() as conn:
        assert (
            current_revision(runtime.engine)
            == MigrationContext.configure(conn).get_current_revision()
        )


def test_an_empty_database_has_no_revision(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        assert current_revision(engine) is None
    finally:
        engine.dispose()


def test_commands_do_not_import_alembic() -> None:
    code = "import sys, leap.cli.app, leap.daemon.main; print('alembic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_0006_backfills_usage_for_work_done_before_quotas(runtime: Runtime) -> None:
    """Runs and uploads made before migration 0006 become usage events (one `recordings`
    event per recording at its first run, one per uploaded YouTube/VK target), and local
    transcription minutes become their own, free kind. The rows are written at head, the
    database is taken down to 0005 (which removes what 0006 adds) and up again."""
    from datetime import UTC, datetime

    from alembic import command

    from leap.context import open_context
    from leap.db import models as m
    from leap.db.migrate import alembic_config, upgrade
    from leap.db.scope import Scope
    from tests.conftest import make_user

    scope = make_user(runtime, "old")
    t0 = datetime(2026, 10, 2, 10, tzinfo=UTC)
    with open_context(runtime, scope) as ctx:
        src = ctx.repos.sources.add(m.InputSource(name="in", kind="local", config={}))
        preset = ctx.repos.presets.add(m.OutputPreset(name="yt", platform="youtube", meta={}))
        folder = ctx.repos.presets.add(m.OutputPreset(name="f", platform="local", meta={}))
        recs = [
            ctx.repos.recordings.add(
                m.Recording(source_id=src.id, external_id=f"e{i}", title="t", start_time=t0)
            )
            for i in range(2)
        ]
        for day in (2, 9):  # two runs of the first recording
            ctx.repos.runs.add(
                m.PipelineRun(
                    recording_id=recs[0].id,
                    stages=[],
                    status="done",
                    created_at=t0.replace(day=day),
                )
            )
        for p, status in ((preset, "uploaded"), (folder, "uploaded")):
            ctx.repos.targets.add(
                m.OutputTarget(
                    recording_id=recs[0].id,
                    preset_id=p.id,
                    platform=p.platform,
                    status=status,
                    idempotency_key=f"k{p.id}",
                    uploaded_at=t0,
                )
            )
        for provider, amount in (("local", 5.0), ("fireworks", 9.0)):
            ctx.repos.usage.add(
                m.UsageEvent(
                    kind="transcription_minutes", amount=amount, detail={"provider": provider}
                )
            )
        first = recs[0].id
    command.downgrade(alembic_config(runtime.engine), "0005")
    upgrade(runtime.engine)
    with open_context(runtime, Scope.system_scope()) as ctx:
        rows = sorted(
            (e.kind, e.recording_id, e.amount, e.at if e.kind == "recordings" else None)
            for e in ctx.repos.usage.list()
        )
    assert rows == [
        ("local_transcription_minutes", None, 5.0, None),
        ("recordings", first, 1.0, t0),  # two runs, one recording, at its first run
        ("transcription_minutes", None, 9.0, None),
        ("youtube_uploads", first, 1.0, None),  # the folder export is free
    ]
