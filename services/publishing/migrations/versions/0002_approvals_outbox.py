"""Approval rounds kept until consent clears them (the final gate), and an outbox
for ``account.changed`` (every existing account announced once, so consent learns
the purpose and platform of accounts made before this revision).

Revision ID: 0002
Revises: 0001
"""

import json
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SOCIAL = ("facebook", "instagram", "x", "linkedin")


def upgrade() -> None:
    op.create_table(
        "approval_rounds",
        sa.Column("post_id", sa.String(36), primary_key=True),
        sa.Column("round", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("school_id", sa.String(40), nullable=False, index=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("event", sa.JSON, nullable=True),
        sa.Column("updated_at", UtcDateTime, nullable=False),
    )
    outbox = op.create_table(
        "outbox",
        sa.Column("envelope_id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(80), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False, index=True),
        sa.Column("sent_at", UtcDateTime, nullable=True),
    )
    accounts = sa.table(
        "accounts",
        sa.column("account_id"),
        sa.column("school_id"),
        sa.column("kind"),
        sa.column("config", sa.JSON),
        sa.column("enabled"),
    )
    now = datetime.now(UTC)
    rows = []
    for a in op.get_bind().execute(sa.select(accounts)).mappings():
        config = a["config"] if isinstance(a["config"], dict) else {}
        social = a["kind"] in SOCIAL
        purpose = (
            "social_media"
            if social
            else config.get("purpose")
            or ("website" if a["kind"] == "webhook" else "social_media")
        )
        envelope_id = str(uuid.uuid4())
        body = {
            "id": envelope_id,
            "type": "account.changed",
            "version": 1,
            "producer": "publishing",
            "occurred_at": now.isoformat(),
            "correlation_id": envelope_id,
            "causation_id": None,
            "actor": None,
            "data": {
                "account_id": a["account_id"],
                "school_id": a["school_id"],
                "platform": a["kind"],
                "purpose": purpose,
                "consent_platform": a["kind"]
                if social
                else config.get("consent_platform"),
                "status": "active" if a["enabled"] else "disabled",
            },
        }
        rows.append(
            {
                "envelope_id": envelope_id,
                "type": "account.changed",
                "body": json.dumps(body),
                "created_at": now,
                "sent_at": None,
            }
        )
    if rows:
        op.bulk_insert(outbox, rows)


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("approval_rounds")
