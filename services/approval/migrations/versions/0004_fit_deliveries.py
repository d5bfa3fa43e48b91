"""Publishing's answers about each post per target account: whether it fits (asked
before approval) and its newest delivery state (what the pages show).

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
        "post_fits",
        sa.Column("post_id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("fits", sa.Boolean, nullable=True),
        sa.Column("platform", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("problems", sa.JSON, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_table(
        "post_deliveries",
        sa.Column("post_id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("school_id", sa.String(40), nullable=False),
        sa.Column("platform", sa.String(20), nullable=False),
        sa.Column("state", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("retry_at", UtcDateTime, nullable=True),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("timed", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("post_deliveries")
    op.drop_table("post_fits")
