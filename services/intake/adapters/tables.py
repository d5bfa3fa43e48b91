"""Intake's tables (SQLAlchemy Core); its migrations create them."""

from __future__ import annotations

import sqlalchemy as sa

from shared.db import UtcDateTime, outbox_table

metadata = sa.MetaData()

posts = sa.Table(
    "posts",
    metadata,
    sa.Column("post_id", sa.String(36), primary_key=True),
    sa.Column("school_id", sa.String(40), nullable=False, index=True),
    sa.Column("author_id", sa.String(64), nullable=False, index=True),
    sa.Column("caption", sa.Text, nullable=False),
    sa.Column("purpose", sa.String(40), nullable=False),
    sa.Column("accounts", sa.JSON, nullable=False),
    sa.Column("publish_on", sa.Date, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("device_id", sa.String(36), nullable=True),
)

photos = sa.Table(
    "photos",
    metadata,
    sa.Column("photo_id", sa.String(36), primary_key=True),
    sa.Column(
        "post_id",
        sa.String(36),
        sa.ForeignKey("posts.post_id"),
        nullable=False,
        index=True,
    ),
    sa.Column("receipt_id", sa.String(36), nullable=False, unique=True),
    sa.Column("original_key", sa.String(512), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("content_type", sa.String(40), nullable=False),
    sa.Column("filename", sa.String(200), nullable=False),
)

outbox = outbox_table(metadata)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("device_id", sa.String(36), primary_key=True),
    sa.Column("school_id", sa.String(40), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
    sa.Column("registered_by", sa.String(64), nullable=False),
    sa.Column("registered_at", UtcDateTime, nullable=False),
    sa.Column("approved_by", sa.String(64), nullable=True),
    sa.Column("approved_at", UtcDateTime, nullable=True),
    sa.Column("revoked_by", sa.String(64), nullable=True),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.Column("enrolled_at", UtcDateTime, nullable=True),
    sa.Column("last_seen_at", UtcDateTime, nullable=True),
)

enrolment_codes = sa.Table(
    "enrolment_codes",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column(
        "device_id",
        sa.String(36),
        sa.ForeignKey("devices.device_id"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("used_at", UtcDateTime, nullable=True),
)

obligations = sa.Table(
    "obligations",
    metadata,
    sa.Column("receipt_id", sa.String(36), primary_key=True),
    sa.Column("post_id", sa.String(36), nullable=False),
    sa.Column("school_id", sa.String(40), nullable=False),
    sa.Column("device_id", sa.String(36), nullable=False, index=True),
    sa.Column("owner", sa.String(64), nullable=False, index=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("filename", sa.String(200), nullable=False),
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("due_at", UtcDateTime, nullable=False, index=True),
    sa.Column("closed_at", UtcDateTime, nullable=True),
    sa.Column("deleted_at", UtcDateTime, nullable=True),
    sa.Column("method", sa.String(40), nullable=True),
    sa.Column("confirmed_by", sa.String(64), nullable=True),
    sa.Column("overdue_at", UtcDateTime, nullable=True),
)
