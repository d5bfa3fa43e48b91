"""Text regions (boxes only), approver revisions, originals' retention.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = (
    ("texts", sa.JSON),
    ("ocr", sa.String(16)),
    ("revision", sa.Integer),
    ("extra_masks", sa.JSON),
    ("named", sa.JSON),
    ("redacted_revision", sa.Integer),
    ("text_report", sa.JSON),
    ("added_report", sa.JSON),
    ("closed_reason", sa.String(32)),
    ("closed_at", UtcDateTime),
    ("original_deleted_at", UtcDateTime),
)


def upgrade() -> None:
    with op.batch_alter_table("photos") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    op.create_index("ix_photos_closed_at", "photos", ["closed_at"])


def downgrade() -> None:
    op.drop_index("ix_photos_closed_at", "photos")
    with op.batch_alter_table("photos") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
