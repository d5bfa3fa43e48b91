"""Intake: the device register, enrolment codes, deletion obligations; posts.device_id.

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
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("device_id", sa.String(36), nullable=True))
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(36), primary_key=True),
        sa.Column("school_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
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
    op.create_index("ix_devices_school_id", "devices", ["school_id"])
    op.create_index("ix_devices_owner", "devices", ["owner"])
    op.create_table(
        "enrolment_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column(
            "device_id",
            sa.String(36),
            sa.ForeignKey("devices.device_id"),
            nullable=False,
        ),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("expires_at", UtcDateTime, nullable=False),
        sa.Column("used_at", UtcDateTime, nullable=True),
    )
    op.create_index("ix_enrolment_codes_device_id", "enrolment_codes", ["device_id"])
    op.create_table(
        "obligations",
        sa.Column("receipt_id", sa.String(36), primary_key=True),
        sa.Column("post_id", sa.String(36), nullable=False),
        sa.Column("school_id", sa.String(40), nullable=False),
        sa.Column("device_id", sa.String(36), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("opened_at", UtcDateTime, nullable=False),
        sa.Column("due_at", UtcDateTime, nullable=False),
        sa.Column("closed_at", UtcDateTime, nullable=True),
        sa.Column("deleted_at", UtcDateTime, nullable=True),
        sa.Column("method", sa.String(40), nullable=True),
        sa.Column("confirmed_by", sa.String(64), nullable=True),
        sa.Column("overdue_at", UtcDateTime, nullable=True),
    )
    op.create_index("ix_obligations_device_id", "obligations", ["device_id"])
    op.create_index("ix_obligations_owner", "obligations", ["owner"])
    op.create_index("ix_obligations_due_at", "obligations", ["due_at"])


def downgrade() -> None:
    op.drop_table("obligations")
    op.drop_table("enrolment_codes")
    op.drop_table("devices")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("device_id")
