"""Publishing: accounts and delivery markers.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("school_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_accounts_school_id", "accounts", ["school_id"])
    op.create_table(
        "deliveries",
        sa.Column("post_id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(200), primary_key=True),
        sa.Column("school_id", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("target", sa.String(20), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_deliveries_school_id", "deliveries", ["school_id"])
    op.create_index("ix_deliveries_at", "deliveries", ["at"])


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_table("accounts")
