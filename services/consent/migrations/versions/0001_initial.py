"""Schools, pupils and consent records (history kept: a change is a new version).

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
        "schools",
        sa.Column("slug", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "pupils",
        sa.Column(
            "school_slug",
            sa.String(40),
            sa.ForeignKey("schools.slug"),
            primary_key=True,
        ),
        sa.Column("pupil_id", sa.String(64), primary_key=True),
        sa.Column("forename", sa.String(100), nullable=False),
        sa.Column("surname", sa.String(100), nullable=False),
        sa.Column("year_group", sa.String(20), nullable=False, server_default=""),
        sa.Column("class_name", sa.String(40), nullable=False, server_default=""),
        sa.Column("on_roll", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("left_on", sa.Date, nullable=True),
    )
    op.create_table(
        "consent_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "school_slug", sa.String(40), sa.ForeignKey("schools.slug"), nullable=False
        ),
        sa.Column("pupil_id", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("platform", sa.String(40), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("given_by", sa.String(200), nullable=False, server_default=""),
        sa.Column("relationship", sa.String(40), nullable=False, server_default=""),
        sa.Column("method", sa.String(40), nullable=False, server_default=""),
        sa.Column("evidence_ref", sa.String(200), nullable=False, server_default=""),
        sa.Column("expires_on", sa.Date, nullable=True),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.CheckConstraint(
            "status IN ('granted', 'refused', 'withdrawn', 'not_returned')",
            name="ck_consent_records_status",
        ),
    )
    op.create_index(
        "ix_consent_records_pupil",
        "consent_records",
        ["school_slug", "pupil_id", "purpose"],
    )


def downgrade() -> None:
    op.drop_index("ix_consent_records_pupil", "consent_records")
    op.drop_table("consent_records")
    op.drop_table("pupils")
    op.drop_table("schools")
