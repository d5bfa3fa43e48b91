"""Takedowns: who each approved round shows (ids only, indexed by pupil), takedown
requests with their timing, deliveries linked to them, and manual takedown tasks.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shown_pupils",
        sa.Column("post_id", sa.String(36), primary_key=True),
        sa.Column("round", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("pupil_id", sa.String(64), primary_key=True),
        sa.Column("school_id", sa.String(40), nullable=False),
        sa.Index("ix_publishing_shown_pupil", "school_id", "pupil_id"),
    )
    op.create_table(
        "takedowns",
        sa.Column("takedown_id", sa.String(36), primary_key=True),
        sa.Column("school_id", sa.String(40), nullable=False, index=True),
        sa.Column("pupil_id", sa.String(64), nullable=True, index=True),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("by", sa.String(64), nullable=True),
        sa.Column("changed_at", UtcDateTime, nullable=True),
        sa.Column("requested_at", UtcDateTime, nullable=False),
        sa.Column("completed_at", UtcDateTime, nullable=True),
    )
    op.create_table(
        "manual_takedowns",
        sa.Column("post_id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("school_id", sa.String(40), nullable=False, index=True),
        sa.Column("owner", sa.String(64), nullable=False, server_default=""),
        sa.Column("url", sa.String(1000), nullable=False, server_default=""),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("opened_at", UtcDateTime, nullable=False),
        sa.Column("escalated_at", UtcDateTime, nullable=True),
        sa.Column("closed_at", UtcDateTime, nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("confirmation", sa.Text, nullable=False, server_default=""),
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("takedown_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("taken_down_at", UtcDateTime, nullable=True))
        batch.create_index("ix_deliveries_takedown", ["takedown_id"])


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_takedown")
        batch.drop_column("taken_down_at")
        batch.drop_column("takedown_id")
    op.drop_table("manual_takedowns")
    op.drop_table("takedowns")
    op.drop_table("shown_pupils")
