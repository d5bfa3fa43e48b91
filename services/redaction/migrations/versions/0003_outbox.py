"""An outbox: what a use case emits is recorded in its transaction and sent after.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("envelope_id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(80), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False, index=True),
        sa.Column("sent_at", UtcDateTime, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("outbox")
