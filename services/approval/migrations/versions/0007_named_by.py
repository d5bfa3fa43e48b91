"""Who named a face in a photo as a pupil: they may not also approve the post.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("photo_reports") as batch:
        batch.add_column(sa.Column("named_by", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("photo_reports") as batch:
        batch.drop_column("named_by")
