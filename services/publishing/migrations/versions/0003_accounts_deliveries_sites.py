"""Real accounts (platform id, designated owner, footer, connection state, encrypted
token), the register of approved sites, OAuth states, and deliveries that retry,
reconcile and survive restarts.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from shared.db import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("external_id", sa.String(300), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("owner", sa.String(64), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("footer", sa.Text, nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column(
                "connection", sa.String(20), nullable=False, server_default="active"
            )
        )
        batch.add_column(
            sa.Column("status_reason", sa.Text, nullable=False, server_default="")
        )
        batch.add_column(sa.Column("token_expires_at", UtcDateTime, nullable=True))
        batch.add_column(
            sa.Column("api_base", sa.String(300), nullable=False, server_default="")
        )
        # Fernet ciphertext of the account's tokens (never logged, never sent)
        batch.add_column(sa.Column("token", sa.Text, nullable=True))
        batch.add_column(sa.Column("refreshing_until", UtcDateTime, nullable=True))
        batch.add_column(sa.Column("connected_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("connected_at", UtcDateTime, nullable=True))
    sites = op.create_table(
        "approved_sites",
        sa.Column("platform", sa.String(20), primary_key=True),
        sa.Column("approved", sa.Boolean, nullable=False),
        sa.Column("answers", sa.JSON, nullable=False),  # due-diligence checklist
        sa.Column("approved_by", sa.String(64), nullable=True),
        sa.Column("approved_at", UtcDateTime, nullable=True),
        sa.Column("withdrawn_by", sa.String(64), nullable=True),
        sa.Column("withdrawn_at", UtcDateTime, nullable=True),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
    )
    op.create_table(
        "oauth_states",
        sa.Column("state", sa.String(100), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("code_verifier", sa.Text, nullable=True),  # encrypted (PKCE)
        sa.Column("created_at", UtcDateTime, nullable=False),
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(
            sa.Column("round", sa.Integer, nullable=False, server_default="1")
        )
        batch.add_column(
            sa.Column("attempts", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("next_attempt_at", UtcDateTime, nullable=True))
        batch.add_column(
            sa.Column("external_id", sa.String(300), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("url", sa.String(1000), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("detail", sa.Text, nullable=False, server_default="")
        )
        batch.add_column(sa.Column("sending_since", UtcDateTime, nullable=True))
        batch.add_column(sa.Column("live_at", UtcDateTime, nullable=True))
        batch.create_index("ix_deliveries_due", ["status", "next_attempt_at"])
    op.execute("UPDATE deliveries SET status = 'live' WHERE status = 'done'")
    op.execute("UPDATE deliveries SET status = 'sending' WHERE status = 'started'")
    # Every existing account is on an existing platform: approve the ones in use
    # (folder) so nothing that worked stops; social platforms wait for IT.
    kinds = op.get_bind().execute(sa.text("SELECT DISTINCT kind FROM accounts"))
    rows = [
        {
            "platform": kind,
            "approved": True,
            "answers": {},
            "approved_by": "migration",
            "note": "in use before the register existed",
        }
        for (kind,) in kinds
    ]
    if rows:
        op.bulk_insert(sites, rows)


def downgrade() -> None:
    op.drop_table("oauth_states")
    op.drop_table("approved_sites")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_due")
        for column in (
            "live_at",
            "sending_since",
            "detail",
            "url",
            "external_id",
            "next_attempt_at",
            "attempts",
            "round",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("accounts") as batch:
        for column in (
            "connected_at",
            "connected_by",
            "refreshing_until",
            "token",
            "api_base",
            "token_expires_at",
            "status_reason",
            "connection",
            "footer",
            "owner",
            "external_id",
        ):
            batch.drop_column(column)
