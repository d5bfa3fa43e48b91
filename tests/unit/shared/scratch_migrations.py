"""Throwaway Alembic script folders for the shared.db tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import sqlalchemy as sa

from shared.db import UtcDateTime

metadata = sa.MetaData()
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False),
)


def scratch_migrations(
    root: Path, service: str = "scratch", table: str = "events"
) -> Path:
    """``<root>/<service>/migrations`` with one revision ``0001`` creating ``table``.

    The upgrade is not idempotent (a plain CREATE TABLE), so running it twice, or twice
    at once, fails unless ``migrate`` notices it is done and serialises runs.
    """
    folder = root / service / "migrations"
    (folder / "versions").mkdir(parents=True)
    (folder / "env.py").write_text("from shared.db import run_env\n\nrun_env()\n")
    (folder / "versions" / "0001_initial.py").write_text(
        textwrap.dedent(
            f"""
            import sqlalchemy as sa
            from alembic import op

            from shared.db import UtcDateTime

            revision = "0001"
            down_revision = None
            branch_labels = None
            depends_on = None


            def upgrade() -> None:
                op.create_table(
                    "{table}",
                    sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("at", UtcDateTime, nullable=False),
                )
                if op.get_bind().dialect.name == "postgresql":
                    # widen the race window for the concurrency test
                    op.execute("SELECT pg_sleep(0.3)")
            """
        )
    )
    return folder
