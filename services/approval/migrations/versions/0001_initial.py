"""Approval: posts, their transitions and redaction's photo reports.

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
        sa.Column("accounts", sa.JSON, nullable=False),
        sa.Column("photo_ids", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("published_accounts", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    op.create_index("ix_posts_school_id", "posts", ["school_id"])
    op.create_index("ix_posts_author_id", "posts", ["author_id"])
    op.create_index("ix_posts_status", "posts", ["status"])
    op.create_table(
        "transitions",
        sa.Column(
            "post_id", sa.String(36), sa.ForeignKey("posts.post_id"), primary_key=True
        ),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("by", sa.String(64), nullable=True),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_table(
        "photo_reports",
        sa.Column("photo_id", sa.String(36), primary_key=True),
        sa.Column("post_id", sa.String(36), nullable=False),
        sa.Column("redacted_key", sa.String(512), nullable=True),
        sa.Column("preview_key", sa.String(512), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("faces", sa.JSON, nullable=False),
        sa.Column("refused", sa.String(200), nullable=True),
    )
    op.create_index("ix_photo_reports_post_id", "photo_reports", ["post_id"])


def downgrade() -> None:
    op.drop_table("photo_reports")
    op.drop_table("transitions")
    op.drop_table("posts")
