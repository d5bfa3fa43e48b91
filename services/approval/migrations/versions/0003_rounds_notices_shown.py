"""Approval rounds, consent notices, and the pupils shown in each photo's newest
rendering (indexed by school and pupil: "every post showing pupil X" is one query).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch:
        batch.add_column(
            sa.Column("round", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("notices", sa.JSON, nullable=True))
    op.create_table(
        "shown_pupils",
        sa.Column("photo_id", sa.String(36), primary_key=True),
        sa.Column("pupil_id", sa.String(64), primary_key=True),
        sa.Column("post_id", sa.String(36), nullable=False, index=True),
        sa.Index("ix_shown_pupils_pupil", "pupil_id"),
    )
    # Posts approved before rounds existed were approved once.
    op.execute(
        "UPDATE posts SET round = 1 WHERE status IN ('approved', 'published', 'failed')"
    )
    # Fill the index from the photo reports already kept.
    conn = op.get_bind()
    reports = sa.table(
        "photo_reports",
        sa.column("photo_id"),
        sa.column("post_id"),
        sa.column("faces", sa.JSON),
    )
    rows = conn.execute(
        sa.select(reports.c.photo_id, reports.c.post_id, reports.c.faces)
    ).all()
    shown = [
        {"photo_id": r.photo_id, "pupil_id": pupil, "post_id": r.post_id}
        for r in rows
        for pupil in sorted(
            {f.get("pupil_id") for f in r.faces or [] if not f.get("masked")} - {None}
        )
    ]
    if shown:
        op.bulk_insert(
            sa.table(
                "shown_pupils",
                sa.column("photo_id"),
                sa.column("pupil_id"),
                sa.column("post_id"),
            ),
            shown,
        )


def downgrade() -> None:
    op.drop_table("shown_pupils")
    with op.batch_alter_table("posts") as batch:
        batch.drop_column("notices")
        batch.drop_column("round")
