"""The approval gate (presets', templates' `approval`; output_targets' state) and Zoom
cloud cleanup (templates' zoom_trash_after_days; recordings: each trash call); custom
quotas granted until a date (quota_overrides.until)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 14:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("output_presets", "templates"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("approval", sa.Boolean(), nullable=False, server_default=sa.false())
            )
        with op.batch_alter_table(table) as batch:
            batch.alter_column("approval", server_default=None)
    with op.batch_alter_table("templates") as batch:
        batch.add_column(sa.Column("zoom_trash_after_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("quota_overrides") as batch:
        # A custom limit may be granted until a date (docs/quotas.md); None: for good.
        batch.add_column(sa.Column("until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("output_targets") as batch:
        # None: no gate; "awaiting": held for `leap approve`; "approved".
        batch.add_column(sa.Column("approval", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("publish_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("zoom_trashed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("zoom_trash_log", sa.JSON(), nullable=False, server_default="[]")
        )
    with op.batch_alter_table("recordings") as batch:
        batch.alter_column("zoom_trash_log", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("zoom_trash_log")
        batch.drop_column("zoom_trashed_at")
    with op.batch_alter_table("output_targets") as batch:
        batch.drop_column("publish_at")
        batch.drop_column("approved_at")
        batch.drop_column("approval")
    with op.batch_alter_table("quota_overrides") as batch:
        batch.drop_column("until")
    with op.batch_alter_table("templates") as batch:
        batch.drop_column("zoom_trash_after_days")
    for table in ("templates", "output_presets"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("approval")
