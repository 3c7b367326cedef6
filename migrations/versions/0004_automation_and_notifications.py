"""automation firings claimed per planned time; notification targets and messages

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:15:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("automation_jobs") as batch:
        batch.add_column(sa.Column("last_planned_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("automation_runs") as batch:
        batch.add_column(sa.Column("planned_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("trigger", sa.String(length=16), nullable=False, server_default="schedule")
        )
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch.create_unique_constraint(
            batch.f("uq_automation_runs_job_id_planned_at"), ["job_id", "planned_at"]
        )
    with op.batch_alter_table("automation_runs") as batch:
        batch.alter_column("trigger", server_default=None)

    op.create_table(
        "notify_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notify_targets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_targets")),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_notify_targets_user_id_name")),
    )
    with op.batch_alter_table("notify_targets") as batch:
        batch.create_index(batch.f("ix_notify_targets_user_id"), ["user_id"], unique=False)

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["notify_targets.id"],
            name=op.f("fk_notifications_target_id_notify_targets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    with op.batch_alter_table("notifications") as batch:
        batch.create_index("ix_notifications_status_next", ["status", "next_attempt_at"])
        batch.create_index(batch.f("ix_notifications_target_id"), ["target_id"], unique=False)
        batch.create_index(batch.f("ix_notifications_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("notify_targets")
    with op.batch_alter_table("automation_runs") as batch:
        batch.drop_constraint(batch.f("uq_automation_runs_job_id_planned_at"), type_="unique")
        batch.drop_column("error")
        batch.drop_column("trigger")
        batch.drop_column("planned_at")
    with op.batch_alter_table("automation_jobs") as batch:
        batch.drop_column("last_planned_at")
