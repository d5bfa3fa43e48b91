"""Photo reports: OCR findings, revisions, an approver's extra masks, image size.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS = (
    ("texts", sa.JSON),
    ("ocr", sa.String(16)),
    ("revision", sa.Integer),
    ("requested_revision", sa.Integer),
    ("added_masks", sa.JSON),
    ("width", sa.Integer),
    ("height", sa.Integer),
)


def upgrade() -> None:
    with op.batch_alter_table("photo_reports") as batch:
        for name, kind in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("photo_reports") as batch:
        for name, _ in reversed(COLUMNS):
            batch.drop_column(name)
