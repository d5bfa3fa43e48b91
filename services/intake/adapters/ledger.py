"""The ledger of posts and their photos, in SQL."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import sqlalchemy as sa

from services.intake.adapters.tables import photos, posts
from services.intake.ports import HeldPhoto, NewPost
from shared.db import Repository


class SqlPostLedger(Repository):
    def add(self, post: NewPost, at: datetime) -> None:
        draft = post.draft
        with self._begin() as conn:
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
                    device_id=post.device_id,
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

    def held(self, author_id: str, sha256s: Collection[str]) -> list[HeldPhoto]:
        if not sha256s:
            return []
        query = (
            sa.select(
                photos.c.post_id,
                photos.c.receipt_id,
                photos.c.sha256,
                photos.c.bytes,
                photos.c.original_key,
                photos.c.filename,
            )
            .join(posts, posts.c.post_id == photos.c.post_id)
            .where(posts.c.author_id == author_id)
            .where(photos.c.sha256.in_(list(sha256s)))
            .order_by(posts.c.created_at)
        )
        with self._begin() as conn:
            rows = conn.execute(query).all()
        found: dict[str, HeldPhoto] = {}
        for r in rows:
            found.setdefault(
                r.sha256,
                HeldPhoto(
                    post_id=r.post_id,
                    receipt_id=r.receipt_id,
                    sha256=r.sha256,
                    bytes=r.bytes,
                    stored_at=r.original_key,
                    filename=r.filename,
                ),
            )
        return list(found.values())
