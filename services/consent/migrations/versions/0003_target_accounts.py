"""Consent's copy of publishing's accounts: the purpose and platform of each target
account, so consent decides per account from what publishing said, never from the
uploader's form.

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
        "target_accounts",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("school_slug", sa.String(40), nullable=False, index=True),
        sa.Column("platform", sa.String(20), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("consent_platform", sa.String(40), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("target_accounts")
