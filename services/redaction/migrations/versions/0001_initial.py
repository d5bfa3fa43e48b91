"""Redaction's photos: detections (boxes, never encodings), refusals, redactions.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "photos",
        sa.Column("photo_id", sa.String(64), primary_key=True),
        sa.Column("post_id", sa.String(64), nullable=False),
        sa.Column("school_id", sa.String(64), nullable=False),
        sa.Column("original_key", sa.String(512), nullable=False),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("platforms", sa.JSON, nullable=False),
        sa.Column("publish_on", sa.Date, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("faces", sa.JSON, nullable=False),
        sa.Column("refusal_reason", sa.String(64), nullable=True),
        sa.Column("refusal_detail", sa.Text, nullable=True),
        sa.Column("redacted_key", sa.String(512), nullable=True),
        sa.Column("preview_key", sa.String(512), nullable=True),
        sa.Column("redacted_sha256", sa.String(64), nullable=True),
        sa.Column("redacted_width", sa.Integer, nullable=True),
        sa.Column("redacted_height", sa.Integer, nullable=True),
        sa.Column("report", sa.JSON, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_photos_post_id", "photos", ["post_id"])
    op.create_index("ix_photos_school_id", "photos", ["school_id"])


def downgrade() -> None:
    op.drop_index("ix_photos_school_id", "photos")
    op.drop_index("ix_photos_post_id", "photos")
    op.drop_table("photos")
