"""Publishing's tables (SQLAlchemy Core): accounts and their tokens, the register of
approved sites, pending OAuth authorisations, approval rounds, deliveries, who each
round shows, takedowns and manual tasks, and the outbox. The migrations create them
(``tests/unit/publishing/test_adapters.py`` checks they match)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shared.db import UtcDateTime, outbox_table

metadata = sa.MetaData()

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(40), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("config", sa.JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    # 0003
    sa.Column("external_id", sa.String(300), nullable=False, server_default=""),
    sa.Column("owner", sa.String(64), nullable=False, server_default=""),
    sa.Column("footer", sa.Text, nullable=False, server_default=""),
    sa.Column("connection", sa.String(20), nullable=False, server_default="active"),
    sa.Column("status_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("token_expires_at", UtcDateTime, nullable=True),
    sa.Column("api_base", sa.String(300), nullable=False, server_default=""),
    sa.Column("token", sa.Text, nullable=True),
    sa.Column("refreshing_until", UtcDateTime, nullable=True),
    sa.Column("connected_by", sa.String(64), nullable=True),
    sa.Column("connected_at", UtcDateTime, nullable=True),
)

approved_sites = sa.Table(
    "approved_sites",
    metadata,
    sa.Column("platform", sa.String(20), primary_key=True),
    sa.Column("approved", sa.Boolean, nullable=False),
    sa.Column("answers", sa.JSON, nullable=False),
    sa.Column("approved_by", sa.String(64), nullable=True),
    sa.Column("approved_at", UtcDateTime, nullable=True),
    sa.Column("withdrawn_by", sa.String(64), nullable=True),
    sa.Column("withdrawn_at", UtcDateTime, nullable=True),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
)

oauth_states = sa.Table(
    "oauth_states",
    metadata,
    sa.Column("state", sa.String(100), primary_key=True),
    sa.Column("account_id", sa.String(64), nullable=False),
    sa.Column("user", sa.String(64), nullable=False),
    sa.Column("code_verifier", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("post_id", sa.String(36), primary_key=True),
    sa.Column("account_id", sa.String(200), primary_key=True),
    sa.Column("school_id", sa.String(40), nullable=False, index=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("target", sa.String(20), nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    # 0003
    sa.Column("round", sa.Integer, nullable=False, server_default="1"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UtcDateTime, nullable=True),
    sa.Column("external_id", sa.String(300), nullable=False, server_default=""),
    sa.Column("url", sa.String(1000), nullable=False, server_default=""),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("sending_since", UtcDateTime, nullable=True),
    sa.Column("live_at", UtcDateTime, nullable=True),
    sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
    # 0004
    sa.Column("takedown_id", sa.String(36), nullable=True),
    sa.Column("taken_down_at", UtcDateTime, nullable=True),
    sa.Index("ix_deliveries_takedown", "takedown_id"),
)

shown_pupils = sa.Table(
    "shown_pupils",
    metadata,
    sa.Column("post_id", sa.String(36), primary_key=True),
    sa.Column("round", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("pupil_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(40), nullable=False),
    sa.Index("ix_publishing_shown_pupil", "school_id", "pupil_id"),
)

takedowns = sa.Table(
    "takedowns",
    metadata,
    sa.Column("takedown_id", sa.String(36), primary_key=True),
    sa.Column("school_id", sa.String(40), nullable=False, index=True),
    sa.Column("pupil_id", sa.String(64), nullable=True, index=True),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("by", sa.String(64), nullable=True),
    sa.Column("changed_at", UtcDateTime, nullable=True),
    sa.Column("requested_at", UtcDateTime, nullable=False),
    sa.Column("completed_at", UtcDateTime, nullable=True),
)

manual_takedowns = sa.Table(
    "manual_takedowns",
    metadata,
    sa.Column("post_id", sa.String(36), primary_key=True),
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(40), nullable=False, index=True),
    sa.Column("owner", sa.String(64), nullable=False, server_default=""),
    sa.Column("url", sa.String(1000), nullable=False, server_default=""),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("escalated_at", UtcDateTime, nullable=True),
    sa.Column("closed_at", UtcDateTime, nullable=True),
    sa.Column("closed_by", sa.String(64), nullable=True),
    sa.Column("confirmation", sa.Text, nullable=False, server_default=""),
)


approval_rounds = sa.Table(
    "approval_rounds",
    metadata,
    sa.Column("post_id", sa.String(36), primary_key=True),
    sa.Column("round", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("school_id", sa.String(40), nullable=False, index=True),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("event", sa.JSON, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

outbox = outbox_table(metadata)


def insert_new(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """Insert the row unless its key is taken; True if it was inserted. No error and
    no savepoint, so it is safe inside a unit of work on PostgreSQL and SQLite (a
    failed insert would abort PostgreSQL's transaction; SQLite's driver commits a
    released outermost savepoint)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(table).values(**values).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table).values(**values).on_conflict_do_nothing()
    return bool(conn.execute(statement).rowcount)
