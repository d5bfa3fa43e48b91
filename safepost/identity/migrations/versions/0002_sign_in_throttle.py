"""Failed sign-ins per client address, per account and per known browser, shared by
every portal process; and an outbox for what the portal tells the trail.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_failed_at", UtcDateTime, nullable=False),
        sa.Column("blocked_until", UtcDateTime, nullable=True),
    )
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
    op.drop_table("sign_in_failures")
