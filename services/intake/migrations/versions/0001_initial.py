"""Intake: posts, their photos and the outbox.

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
        "posts",
        sa.Column("post_id", sa.String(36), primary_key=True),
        sa.Column("school_id", sa.String(40), nullable=False),
        sa.Column("author_id", sa.String(64), nullable=False),
        sa.Column("caption", sa.Text, nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("accounts", sa.JSON, nullable=False),
        sa.Column("publish_on", sa.Date, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_posts_school_id", "posts", ["school_id"])
    op.create_index("ix_posts_author_id", "posts", ["author_id"])
    op.create_table(
        "photos",
        sa.Column("photo_id", sa.String(36), primary_key=True),
        sa.Column(
            "post_id", sa.String(36), sa.ForeignKey("posts.post_id"), nullable=False
        ),
        sa.Column("receipt_id", sa.String(36), nullable=False, unique=True),
        sa.Column("original_key", sa.String(512), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("content_type", sa.String(40), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
    )
    op.create_index("ix_photos_post_id", "photos", ["post_id"])
    op.create_table(
        "outbox",
        sa.Column("envelope_id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(80), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("sent_at", UtcDateTime, nullable=True),
    )
    op.create_index("ix_outbox_created_at", "outbox", ["created_at"])


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("photos")
    op.drop_table("posts")
