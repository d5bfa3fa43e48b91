"""SQL implementations of approval's ports: posts, their transitions, photo reports,
and what publishing answers about each post per account (fit checks, delivery states).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from services.approval.domain import (
    Delivery,
    Face,
    Fit,
    Notice,
    PhotoReport,
    Post,
    Text,
    Transition,
    newer,
)
from shared.db import Repository, UtcDateTime, outbox_table, utcnow
from shared.errors import ConcurrentUpdateError
from shared.uow import SqlUnitOfWork

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
    # 0005: optimistic concurrency (two workers must not overwrite each other)
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
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
    # 0007: who named a face in it as a pupil (may not approve the post)
    sa.Column("named_by", sa.JSON, nullable=True),
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


# 0004: publishing's answer per (post, account): does it fit? (``fits`` NULL: asked,
# not answered yet), and the post's newest state on the account.
post_fits = sa.Table(
    "post_fits",
    metadata,
    sa.Column("post_id", sa.String(36), primary_key=True),
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("fits", sa.Boolean, nullable=True),
    sa.Column("platform", sa.String(20), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("problems", sa.JSON, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

outbox = outbox_table(metadata)

post_deliveries = sa.Table(
    "post_deliveries",
    metadata,
    sa.Column("post_id", sa.String(36), primary_key=True),
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("school_id", sa.String(40), nullable=False),
    sa.Column("platform", sa.String(20), nullable=False),
    sa.Column("state", sa.String(40), nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("retry_at", UtcDateTime, nullable=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("timed", sa.Boolean, nullable=False),
)


class SqlPostBook(Repository):
    def __init__(self, bind: Engine | Connection, now: Callable[[], datetime] = utcnow):
        super().__init__(bind)
        self.now = now

    def get(self, post_id: str) -> Post | None:
        with self._begin() as conn:
            row = conn.execute(posts.select().where(posts.c.post_id == post_id)).first()
            if row is None:
                return None
            return _post(row._mapping, _history(conn, [post_id]).get(post_id, ()))

    def save(self, post: Post) -> Post:
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
        values["version"] = post.version + 1
        with self._begin() as conn:
            if post.version == 0:  # new: a concurrent insert fails on the key
                conn.execute(
                    posts.insert().values(
                        post_id=post.post_id, created_at=post.created_at, **values
                    )
                )
            else:
                updated = conn.execute(
                    posts.update()
                    .where(posts.c.post_id == post.post_id)
                    .where(posts.c.version == post.version)
                    .values(**values)
                )
                if updated.rowcount == 0:
                    raise ConcurrentUpdateError(
                        f"post {post.post_id} changed since it was read; "
                        "read it again and redo"
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
        return replace(post, version=post.version + 1)

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
        with self._begin() as conn:
            rows = conn.execute(query).all()
            history = _history(conn, [r.post_id for r in rows])
        return [_post(r._mapping, history.get(r.post_id, ())) for r in rows]

    def ask_fit(self, post_id: str, accounts: Sequence[str]) -> None:
        asked: dict[str, Any] = {
            "fits": None,
            "problems": [],
            "note": "",
            "updated_at": self.now(),
        }
        with self._begin() as conn:
            for account_id in dict.fromkeys(accounts):
                key = (post_fits.c.post_id == post_id) & (
                    post_fits.c.account_id == account_id
                )
                _upsert(
                    conn,
                    post_fits,
                    key,
                    asked,
                    {
                        "post_id": post_id,
                        "account_id": account_id,
                        "platform": "",
                        "name": "",
                    },
                )

    def answer_fit(self, post_id: str, fits: Sequence[Fit]) -> None:
        with self._begin() as conn:
            for fit in fits:
                key = (post_fits.c.post_id == post_id) & (
                    post_fits.c.account_id == fit.account_id
                )
                values = {
                    "fits": fit.fits,
                    "platform": fit.platform,
                    "name": fit.name,
                    "problems": list(fit.problems),
                    "note": fit.note,
                    "updated_at": self.now(),
                }
                _upsert(
                    conn,
                    post_fits,
                    key,
                    values,
                    {"post_id": post_id, "account_id": fit.account_id},
                )

    def fits(self, post_ids: Sequence[str]) -> dict[str, dict[str, Fit]]:
        if not post_ids:
            return {}
        query = post_fits.select().where(post_fits.c.post_id.in_(sorted(post_ids)))
        out: dict[str, dict[str, Fit]] = {}
        with self._begin() as conn:
            for r in conn.execute(query):
                out.setdefault(r.post_id, {})[r.account_id] = Fit(
                    r.account_id,
                    r.fits,
                    r.platform,
                    r.name,
                    tuple(r.problems or ()),
                    r.note,
                )
        return out

    def record_delivery(self, delivery: Delivery) -> bool:
        key = (post_deliveries.c.post_id == delivery.post_id) & (
            post_deliveries.c.account_id == delivery.account_id
        )
        values = {
            "school_id": delivery.school_id,
            "platform": delivery.platform,
            "state": delivery.state,
            "reason": delivery.reason[:200],
            "detail": delivery.detail,
            "url": delivery.url[:2000],
            "attempts": delivery.attempts,
            "retry_at": delivery.retry_at,
            "at": delivery.at,
            "timed": delivery.timed,
        }
        for _ in range(2):  # a second time if another worker inserted it first
            with self._begin() as conn:
                row = conn.execute(
                    post_deliveries.select().where(key).with_for_update()
                ).first()
                kept = _delivery(row._mapping) if row is not None else None
                if not newer(kept, delivery):
                    return False
                if kept is not None:
                    conn.execute(post_deliveries.update().where(key).values(**values))
                    return True
                try:
                    with conn.begin_nested():
                        conn.execute(
                            post_deliveries.insert().values(
                                post_id=delivery.post_id,
                                account_id=delivery.account_id,
                                **values,
                            )
                        )
                except IntegrityError:
                    continue
                return True
        return False

    def deliveries(self, post_ids: Sequence[str]) -> dict[str, dict[str, Delivery]]:
        if not post_ids:
            return {}
        query = post_deliveries.select().where(
            post_deliveries.c.post_id.in_(sorted(post_ids))
        )
        out: dict[str, dict[str, Delivery]] = {}
        with self._begin() as conn:
            for r in conn.execute(query):
                out.setdefault(r.post_id, {})[r.account_id] = _delivery(r._mapping)
        return out


def _upsert(
    conn: Connection,
    table: sa.Table,
    key: Any,
    values: dict[str, Any],
    new: dict[str, Any],
) -> None:
    """Update the row under ``key``, or insert it (``new`` adds its key and the
    columns only an insert sets); a concurrent insert is updated instead."""
    if conn.execute(table.update().where(key).values(**values)).rowcount:
        return
    try:
        with conn.begin_nested():
            conn.execute(table.insert().values(**{**new, **values}))
    except IntegrityError:
        conn.execute(table.update().where(key).values(**values))


def _delivery(row: Any) -> Delivery:
    return Delivery(
        post_id=row["post_id"],
        account_id=row["account_id"],
        school_id=row["school_id"],
        state=row["state"],
        at=row["at"],
        platform=row["platform"],
        reason=row["reason"],
        detail=row["detail"],
        url=row["url"],
        attempts=row["attempts"],
        retry_at=row["retry_at"],
        timed=row["timed"],
    )


class SqlPhotoReports(Repository):
    def __init__(self, bind: Engine | Connection):
        super().__init__(bind)

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
            "named_by": list(report.named_by),
        }
        with self._begin() as conn:
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
        with self._begin() as conn:
            return [r.post_id for r in conn.execute(query)]

    def for_post(self, post_id: str) -> dict[str, PhotoReport]:
        query = photo_reports.select().where(photo_reports.c.post_id == post_id)
        with self._begin() as conn:
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
                named_by=tuple(r.named_by or ()),
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
        version=row["version"],
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


class ApprovalUnit(SqlUnitOfWork):
    """Approval's unit of work: its posts and photo reports on one transaction, and
    the messages its use cases emit (``shared.uow``)."""

    posts: SqlPostBook
    reports: SqlPhotoReports

    def bind(self, conn: Connection) -> None:
        self.posts = SqlPostBook(conn, self.now)
        self.reports = SqlPhotoReports(conn)
