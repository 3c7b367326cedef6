"""Metered usage for quotas (docs/quotas.md): usage_events.ref (what a reservation pays for,
unique), an index for install-wide period sums, local transcription as its own kind (it is
free), and events for the work done before quotas counted it: one `recordings` event per
recording at its first run, one `<platform>_uploads` event per uploaded target.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 18:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("usage_events") as batch:
        batch.add_column(sa.Column("ref", sa.String(length=160), nullable=True))
        batch.create_unique_constraint("uq_usage_events_ref", ["ref"])
    op.create_index("ix_usage_events_at_kind", "usage_events", ["at", "kind"])
    bind = op.get_bind()
    provider = (
        "detail->>'provider'"
        if bind.dialect.name == "postgresql"
        else "json_extract(detail, '$.provider')"
    )
    empty = "CAST('{}' AS JSON)" if bind.dialect.name == "postgresql" else "'{}'"
    op.execute(
        "UPDATE usage_events SET kind = 'local_transcription_minutes' "
        f"WHERE kind = 'transcription_minutes' AND {provider} = 'local'"
    )
    op.execute(
        "INSERT INTO usage_events (user_id, kind, amount, recording_id, detail, at, ref) "
        f"SELECT r.user_id, 'recordings', 1, r.recording_id, {empty}, min(r.created_at), "
        "'recording:' || r.recording_id || '-first' "
        "FROM pipeline_runs r GROUP BY r.user_id, r.recording_id"
    )
    op.execute(
        "INSERT INTO usage_events (user_id, kind, amount, recording_id, detail, at, ref) "
        f"SELECT t.user_id, t.platform || '_uploads', 1, t.recording_id, {empty}, t.uploaded_at, "
        "'upload:' || t.id "
        "FROM output_targets t "
        "WHERE t.status = 'uploaded' AND t.uploaded_at IS NOT NULL "
        "AND t.platform IN ('youtube', 'vk')"
    )


def downgrade() -> None:
    op.execute(
        "DELETE FROM usage_events WHERE kind IN ('recordings', 'youtube_uploads', 'vk_uploads')"
    )
    op.execute(
        "UPDATE usage_events SET kind = 'transcription_minutes' "
        "WHERE kind = 'local_transcription_minutes'"
    )
    op.drop_index("ix_usage_events_at_kind", table_name="usage_events")
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_constraint("uq_usage_events_ref", type_="unique")
        batch.drop_column("ref")
