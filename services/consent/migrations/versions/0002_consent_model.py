"""Consent model: school expiry and cache versions, preferred names, never-publish
flags, biometric consent, face encodings and the outbox.

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
    with op.batch_alter_table("schools") as batch:
        batch.add_column(
            sa.Column("expiry_month", sa.Integer, nullable=False, server_default="8")
        )
        batch.add_column(
            sa.Column("expiry_day", sa.Integer, nullable=False, server_default="31")
        )
        batch.add_column(
            sa.Column("gallery_version", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("roll_version", sa.Integer, nullable=False, server_default="0")
        )
    with op.batch_alter_table("pupils") as batch:
        batch.add_column(
            sa.Column(
                "preferred_name", sa.String(100), nullable=False, server_default=""
            )
        )
    op.create_table(
        "never_publish",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "school_slug", sa.String(40), sa.ForeignKey("schools.slug"), nullable=False
        ),
        sa.Column("pupil_id", sa.String(64), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("category", sa.String(40), nullable=False, server_default=""),
        sa.Column("note", sa.String(500), nullable=False, server_default=""),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_never_publish_pupil", "never_publish", ["school_slug", "pupil_id"]
    )
    op.create_table(
        "biometric_consents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "school_slug", sa.String(40), sa.ForeignKey("schools.slug"), nullable=False
        ),
        sa.Column("pupil_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column(
            "pupil_objects", sa.Boolean, nullable=False, server_default=sa.false()
        ),
        sa.Column("given_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("relationship", sa.String(40), nullable=False, server_default=""),
        sa.Column("method", sa.String(40), nullable=False, server_default=""),
        sa.Column("evidence_ref", sa.String(200), nullable=False, server_default=""),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.CheckConstraint(
            "status IN ('granted', 'refused', 'withdrawn', 'not_returned')",
            name="ck_biometric_consents_status",
        ),
    )
    op.create_index(
        "ix_biometric_consents_pupil",
        "biometric_consents",
        ["school_slug", "pupil_id"],
    )
    op.create_table(
        "face_encodings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "school_slug", sa.String(40), sa.ForeignKey("schools.slug"), nullable=False
        ),
        sa.Column("pupil_id", sa.String(64), nullable=False),
        sa.Column("encoding", sa.LargeBinary, nullable=False),
        sa.Column("enrolled_by", sa.String(100), nullable=False),
        sa.Column("enrolled_at", UtcDateTime(), nullable=False),
    )
    op.create_index(
        "ix_face_encodings_pupil", "face_encodings", ["school_slug", "pupil_id"]
    )
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
    op.drop_index("ix_outbox_created_at", "outbox")
    op.drop_table("outbox")
    op.drop_index("ix_face_encodings_pupil", "face_encodings")
    op.drop_table("face_encodings")
    op.drop_index("ix_biometric_consents_pupil", "biometric_consents")
    op.drop_table("biometric_consents")
    op.drop_index("ix_never_publish_pupil", "never_publish")
    op.drop_table("never_publish")
    with op.batch_alter_table("pupils") as batch:
        batch.drop_column("preferred_name")
    with op.batch_alter_table("schools") as batch:
        for column in ("roll_version", "gallery_version", "expiry_day", "expiry_month"):
            batch.drop_column(column)
