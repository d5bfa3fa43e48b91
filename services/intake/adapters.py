"""SQL implementation of intake's ledger (posts, photos, outbox)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.intake.ports import NewPost
from shared import contracts
from shared.db import UtcDateTime, utcnow

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

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("envelope_id", sa.String(36), primary_key=True),
    sa.Column("type", sa.String(80), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False, index=True),
    sa.Column("sent_at", UtcDateTime, nullable=True),
)


class SqlPostLedger:
    def __init__(self, engine: Engine, now: Callable[[], datetime] = utcnow):
        self.engine = engine
        self.now = now

    def record(self, post: NewPost, envelope: contracts.Envelope) -> None:
        at = self.now()
        draft = post.draft
        with self.engine.begin() as conn:
            conn.execute(
                posts.insert().values(
                    post_id=post.post_id,
                    school_id=draft.school_id,
                    author_id=draft.author_id,
                    caption=draft.caption,
                    purpose=draft.purpose,
                    accounts=list(draft.accounts),
                    publish_on=draft.publish_on,
                    created_at=at,
                )
            )
            conn.execute(
                photos.insert(),
                [
                    {
                        "photo_id": p.photo_id,
                        "post_id": post.post_id,
                        "receipt_id": p.receipt_id,
                        "original_key": p.key,
                        "sha256": p.photo.sha256,
                        "bytes": p.photo.size,
                        "content_type": p.photo.kind.content_type,
                        "filename": p.photo.filename,
                    }
                    for p in post.photos
                ],
            )
            conn.execute(
                outbox.insert().values(
                    envelope_id=envelope.id,
                    type=envelope.type,
                    body=envelope.model_dump_json(),
                    created_at=at,
                )
            )

    def pending(self, limit: int = 100) -> list[contracts.Envelope]:
        query = (
            sa.select(outbox.c.body)
            .where(outbox.c.sent_at.is_(None))
            .order_by(outbox.c.created_at, outbox.c.envelope_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).scalars().all()
        return [contracts.Envelope.model_validate_json(body) for body in rows]

    def mark_sent(self, envelope_ids: Sequence[str]) -> None:
        if not envelope_ids:
            return
        with self.engine.begin() as conn:
            conn.execute(
                outbox.update()
                .where(outbox.c.envelope_id.in_(list(envelope_ids)))
                .where(outbox.c.sent_at.is_(None))
                .values(sent_at=self.now())
            )
