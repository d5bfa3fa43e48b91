"""SQL implementations of approval's ports: posts, their transitions, photo reports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.approval.domain import (
    Face,
    Notice,
    PhotoReport,
    Post,
    Text,
    Transition,
)
from shared.db import UtcDateTime, utcnow

metadata = sa.MetaData()

posts = sa.Table(
    "posts",
    metadata,
    sa.Column("post_id", sa.String(36), primary_key=True),
    sa.Column("school_id", sa.String(40), nullable=False, index=True),
    sa.Column("author_id", sa.String(64), nullable=False, index=True),
    sa.Column("caption", sa.Text, nullable=False),
    sa.Column("accounts", sa.JSON, nullable=False),
    sa.Column("photo_ids", sa.JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("decided_by", sa.String(64), nullable=True),
    sa.Column("published_accounts", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # 0003: approval rounds and consent notices
    sa.Column("round", sa.Integer, nullable=False, server_default="0"),
    sa.Column("notices", sa.JSON, nullable=True),
)

transitions = sa.Table(
    "transitions",
    metadata,
    sa.Column(
        "post_id", sa.String(36), sa.ForeignKey("posts.post_id"), primary_key=True
    ),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("from_status", sa.String(20), nullable=True),
    sa.Column("to_status", sa.String(20), nullable=False),
    sa.Column("by", sa.String(64), nullable=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

photo_reports = sa.Table(
    "photo_reports",
    metadata,
    sa.Column("photo_id", sa.String(36), primary_key=True),
    sa.Column("post_id", sa.String(36), nullable=False, index=True),
    sa.Column("redacted_key", sa.String(512), nullable=True),
    sa.Column("preview_key", sa.String(512), nullable=True),
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("faces", sa.JSON, nullable=False),
    sa.Column("refused", sa.String(200), nullable=True),
    # 0002: OCR findings, revisions, the approver's extra masks, the preview's size
    sa.Column("texts", sa.JSON, nullable=True),
    sa.Column("ocr", sa.String(16), nullable=True),
    sa.Column("revision", sa.Integer, nullable=True),
    sa.Column("requested_revision", sa.Integer, nullable=True),
    sa.Column("added_masks", sa.JSON, nullable=True),
    sa.Column("width", sa.Integer, nullable=True),
    sa.Column("height", sa.Integer, nullable=True),
)


# 0003: who each photo's newest rendering shows (ids only), for "every post showing
# pupil X" in one indexed query.
shown_pupils = sa.Table(
    "shown_pupils",
    metadata,
    sa.Column("photo_id", sa.String(36), primary_key=True),
    sa.Column("pupil_id", sa.String(64), primary_key=True),
    sa.Column("post_id", sa.String(36), nullable=False, index=True),
    sa.Index("ix_shown_pupils_pupil", "pupil_id"),
)


class SqlPostBook:
    def __init__(self, engine: Engine, now: Callable[[], datetime] = utcnow):
        self.engine = engine
        self.now = now

    def get(self, post_id: str) -> Post | None:
        with self.engine.connect() as conn:
            row = conn.execute(posts.select().where(posts.c.post_id == post_id)).first()
            if row is None:
                return None
            return _post(row._mapping, _history(conn, [post_id]).get(post_id, ()))

    def save(self, post: Post) -> None:
        values = {
            "school_id": post.school_id,
            "author_id": post.author_id,
            "caption": post.caption,
            "accounts": list(post.accounts),
            "photo_ids": list(post.photo_ids),
            "status": post.status,
            "reason": post.reason,
            "decided_by": post.decided_by,
            "published_accounts": list(post.published_accounts),
            "updated_at": self.now(),
            "round": post.round,
            "notices": [
                {
                    "at": n.at.isoformat(),
                    "pupil_id": n.pupil_id,
                    "cause": n.cause,
                    "stage": n.stage,
                    "changes": list(n.changes),
                }
                for n in post.notices
            ],
        }
        with self.engine.begin() as conn:
            updated = conn.execute(
                posts.update().where(posts.c.post_id == post.post_id).values(**values)
            )
            if updated.rowcount == 0:
                conn.execute(
                    posts.insert().values(
                        post_id=post.post_id, created_at=post.created_at, **values
                    )
                )
            known = conn.execute(
                sa.select(sa.func.count())
                .select_from(transitions)
                .where(transitions.c.post_id == post.post_id)
            ).scalar_one()
            new = [
                {
                    "post_id": post.post_id,
                    "seq": seq,
                    "from_status": t.from_status,
                    "to_status": t.to_status,
                    "by": t.by,
                    "at": t.at,
                    "reason": t.reason,
                }
                for seq, t in enumerate(post.history)
                if seq >= known
            ]
            if new:
                conn.execute(transitions.insert(), new)

    def find(
        self,
        *,
        schools: set[str] | None = None,
        author_id: str | None = None,
        status: str | None = None,
        limit: int = 200,
    ) -> list[Post]:
        query = posts.select().order_by(posts.c.created_at.desc()).limit(limit)
        if schools is not None:
            query = query.where(posts.c.school_id.in_(sorted(schools)))
        if author_id is not None:
            query = query.where(posts.c.author_id == author_id)
        if status is not None:
            query = query.where(posts.c.status == status)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            history = _history(conn, [r.post_id for r in rows])
        return [_post(r._mapping, history.get(r.post_id, ())) for r in rows]


class SqlPhotoReports:
    def __init__(self, engine: Engine):
        self.engine = engine

    def put(self, report: PhotoReport) -> None:
        values = {
            "post_id": report.post_id,
            "redacted_key": report.redacted_key,
            "preview_key": report.preview_key,
            "sha256": report.sha256,
            "faces": [
                {
                    "index": f.index,
                    "masked": f.masked,
                    "reason": f.reason,
                    "box": list(f.box) if f.box else None,
                    "pupil_id": f.pupil_id,
                    "consent_versions": list(f.consent_versions),
                }
                for f in report.faces
            ],
            "refused": report.refused,
            "texts": [
                {
                    "index": t.index,
                    "box": list(t.box),
                    "masked": t.masked,
                    "reason": t.reason,
                }
                for t in report.texts
            ],
            "ocr": report.ocr,
            "revision": report.revision,
            "requested_revision": report.requested_revision,
            "added_masks": [list(b) for b in report.added_masks],
            "width": report.width,
            "height": report.height,
        }
        with self.engine.begin() as conn:
            updated = conn.execute(
                photo_reports.update()
                .where(photo_reports.c.photo_id == report.photo_id)
                .values(**values)
            )
            if updated.rowcount == 0:
                conn.execute(
                    photo_reports.insert().values(photo_id=report.photo_id, **values)
                )
            conn.execute(
                shown_pupils.delete().where(shown_pupils.c.photo_id == report.photo_id)
            )
            shown = sorted(
                {f.pupil_id for f in report.faces if not f.masked and f.pupil_id}
            )
            if shown:
                conn.execute(
                    shown_pupils.insert(),
                    [
                        {
                            "photo_id": report.photo_id,
                            "pupil_id": pupil,
                            "post_id": report.post_id,
                        }
                        for pupil in shown
                    ],
                )

    def posts_showing(self, school_id: str, pupil_id: str) -> list[str]:
        query = (
            sa.select(shown_pupils.c.post_id)
            .distinct()
            .select_from(
                shown_pupils.join(posts, posts.c.post_id == shown_pupils.c.post_id)
            )
            .where(shown_pupils.c.pupil_id == pupil_id, posts.c.school_id == school_id)
            .order_by(shown_pupils.c.post_id)
        )
        with self.engine.connect() as conn:
            return [r.post_id for r in conn.execute(query)]

    def for_post(self, post_id: str) -> dict[str, PhotoReport]:
        query = photo_reports.select().where(photo_reports.c.post_id == post_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {
            r.photo_id: PhotoReport(
                photo_id=r.photo_id,
                post_id=r.post_id,
                redacted_key=r.redacted_key,
                preview_key=r.preview_key,
                sha256=r.sha256,
                refused=r.refused,
                faces=tuple(
                    Face(
                        f["index"],
                        f["masked"],
                        f.get("reason"),
                        tuple(f["box"]) if f.get("box") else None,
                        f.get("pupil_id"),
                        tuple(f.get("consent_versions") or ()),
                    )
                    for f in r.faces
                ),
                texts=tuple(
                    Text(t["index"], _box(t["box"]), t["masked"], t["reason"])
                    for t in r.texts or []
                ),
                ocr=r.ocr or "unavailable",
                revision=r.revision or 0,
                requested_revision=r.requested_revision or 0,
                added_masks=tuple(_box(b) for b in r.added_masks or []),
                width=r.width or 0,
                height=r.height or 0,
            )
            for r in rows
        }


def _box(values: Any) -> tuple[int, int, int, int]:
    left, top, right, bottom = (int(v) for v in values)
    return left, top, right, bottom


def _history(
    conn: Connection, post_ids: list[str]
) -> dict[str, tuple[Transition, ...]]:
    if not post_ids:
        return {}
    query = (
        transitions.select()
        .where(transitions.c.post_id.in_(post_ids))
        .order_by(transitions.c.post_id, transitions.c.seq)
    )
    out: dict[str, list[Transition]] = {}
    for r in conn.execute(query):
        out.setdefault(r.post_id, []).append(
            Transition(r.from_status, r.to_status, r.by, r.at, r.reason)
        )
    return {k: tuple(v) for k, v in out.items()}


def _post(row: Any, history: tuple[Transition, ...]) -> Post:
    return Post(
        post_id=row["post_id"],
        school_id=row["school_id"],
        author_id=row["author_id"],
        caption=row["caption"],
        accounts=tuple(row["accounts"]),
        photo_ids=tuple(row["photo_ids"]),
        status=row["status"],
        reason=row["reason"],
        created_at=row["created_at"],
        history=history,
        decided_by=row["decided_by"],
        published_accounts=tuple(row["published_accounts"]),
        round=row["round"] or 0,
        notices=tuple(
            Notice(
                datetime.fromisoformat(n["at"]),
                n["pupil_id"],
                n["cause"],
                n["stage"],
                tuple(n.get("changes") or ()),
            )
            for n in row["notices"] or []
        ),
    )
