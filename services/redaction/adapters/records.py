"""Redaction's records: its SQL tables (photos, outbox), the photo records on them
(or in memory), and its unit of work."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, RowMapping

from services.redaction import domain
from shared.db import Repository, UtcDateTime, outbox_table, utcnow
from shared.uow import SqlUnitOfWork

logger = logging.getLogger(__name__)

metadata = sa.MetaData()

photos = sa.Table(
    "photos",
    metadata,
    sa.Column("photo_id", sa.String(64), primary_key=True),
    sa.Column("post_id", sa.String(64), nullable=False, index=True),
    sa.Column("school_id", sa.String(64), nullable=False, index=True),
    sa.Column("original_key", sa.String(512), nullable=False),
    sa.Column("purpose", sa.String(64), nullable=False),
    sa.Column("platforms", sa.JSON, nullable=False),
    sa.Column("publish_on", sa.Date, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    # boxes and scores only: encodings are biometric and never stored here
    sa.Column("faces", sa.JSON, nullable=False),
    sa.Column("refusal_reason", sa.String(64), nullable=True),
    sa.Column("refusal_detail", sa.Text, nullable=True),
    sa.Column("redacted_key", sa.String(512), nullable=True),
    sa.Column("preview_key", sa.String(512), nullable=True),
    sa.Column("redacted_sha256", sa.String(64), nullable=True),
    sa.Column("redacted_width", sa.Integer, nullable=True),
    sa.Column("redacted_height", sa.Integer, nullable=True),
    sa.Column("report", sa.JSON, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # 0002: text regions (boxes only: the words are never stored), revisions, retention
    sa.Column("texts", sa.JSON, nullable=True),
    sa.Column("ocr", sa.String(16), nullable=True),
    sa.Column("revision", sa.Integer, nullable=True),
    sa.Column("extra_masks", sa.JSON, nullable=True),
    sa.Column("named", sa.JSON, nullable=True),
    sa.Column("redacted_revision", sa.Integer, nullable=True),
    sa.Column("text_report", sa.JSON, nullable=True),
    sa.Column("added_report", sa.JSON, nullable=True),
    sa.Column("closed_reason", sa.String(32), nullable=True),
    sa.Column("closed_at", UtcDateTime, nullable=True, index=True),
    sa.Column("original_deleted_at", UtcDateTime, nullable=True),
)

# 0003: what redaction's use cases emit, written in their transaction (shared.uow)
outbox = outbox_table(metadata)


class SqlPhotoRecords(Repository):
    """PhotoRecords and Retention on redaction's own database: on a unit of work's
    connection (its use cases' writes) or on the engine (the API's reads)."""

    def __init__(self, bind: Engine | Connection):
        super().__init__(bind)

    def find(self, photo_id: str) -> domain.PhotoRecord | None:
        with self._begin() as conn:
            return _find(conn, photo_id)

    def add(self, record: domain.PhotoRecord) -> domain.PhotoRecord:
        now = utcnow()
        values = {
            "photo_id": record.photo_id,
            "post_id": record.post_id,
            "school_id": record.school_id,
            "original_key": record.original_key,
            "purpose": record.purpose,
            "platforms": list(record.platforms),
            "publish_on": record.publish_on,
            "status": record.status,
            "width": record.width,
            "height": record.height,
            "faces": [
                {"index": f.index, "box": list(f.box), "score": f.score}
                for f in record.faces
            ],
            "refusal_reason": record.refusal.reason if record.refusal else None,
            "refusal_detail": record.refusal.detail if record.refusal else None,
            "texts": [list(box) for box in record.texts],
            "ocr": record.ocr,
            "revision": record.revision,
            "extra_masks": [list(box) for box in record.extra_masks],
            "named": [[i, p] for i, p in record.named],
            "created_at": now,
            "updated_at": now,
        }
        with self._begin() as conn:
            # Not an IntegrityError caught: on PostgreSQL that would abort the unit's
            # transaction. A concurrent insert of the same photo waits, then yields.
            inserted = conn.execute(_insert_new(conn, values)).rowcount
            if not inserted:
                logger.info("photo %s already recorded", record.photo_id)
            stored = _find(conn, record.photo_id)
        assert stored is not None
        return stored

    def finish(self, photo_id: str, redaction: domain.Redaction) -> None:
        with self._begin() as conn:
            conn.execute(
                photos.update()
                .where(photos.c.photo_id == photo_id)
                .values(
                    status="redacted",
                    redacted_key=redaction.redacted_key,
                    preview_key=redaction.preview_key,
                    redacted_sha256=redaction.sha256,
                    redacted_width=redaction.width,
                    redacted_height=redaction.height,
                    report=[_outcome_json(o) for o in redaction.faces],
                    redacted_revision=redaction.revision,
                    text_report=[
                        {
                            "index": t.index,
                            "box": list(t.box),
                            "masked": t.masked,
                            "reason": t.reason,
                        }
                        for t in redaction.texts
                    ],
                    added_report=[list(b) for b in redaction.added_masks],
                    updated_at=utcnow(),
                )
            )

    def revise(
        self,
        photo_id: str,
        revision: int,
        extra_masks: Sequence[domain.Box],
        named: Sequence[tuple[int, str]],
    ) -> None:
        with self._begin() as conn:
            conn.execute(
                photos.update()
                .where(photos.c.photo_id == photo_id)
                .where(sa.func.coalesce(photos.c.revision, 0) < revision)
                .values(
                    revision=revision,
                    extra_masks=[list(b) for b in extra_masks],
                    named=[[i, p] for i, p in named],
                    updated_at=utcnow(),
                )
            )

    def close_post(self, post_id: str, closure: domain.Closure) -> None:
        with self._begin() as conn:
            conn.execute(
                photos.update()
                .where(photos.c.post_id == post_id)
                .where(photos.c.closed_at.is_(None))
                .values(
                    closed_reason=closure.reason,
                    closed_at=closure.at,
                    updated_at=utcnow(),
                )
            )

    def due(self, now: datetime, retention_days: int) -> list[domain.PhotoRecord]:
        cutoff = now - timedelta(days=retention_days)
        query = (
            sa.select(photos)
            .where(photos.c.closed_at.is_not(None))
            .where(photos.c.closed_at <= cutoff)
            .where(photos.c.original_deleted_at.is_(None))
            .order_by(photos.c.closed_at)
            .limit(500)
        )
        with self._begin() as conn:
            rows = conn.execute(query).mappings().all()
        return [_record(row) for row in rows]

    def mark_deleted(self, photo_id: str) -> None:
        with self._begin() as conn:
            conn.execute(
                photos.update()
                .where(photos.c.photo_id == photo_id)
                .values(original_deleted_at=utcnow(), updated_at=utcnow())
            )


def _find(conn: Connection, photo_id: str) -> domain.PhotoRecord | None:
    query = sa.select(photos).where(photos.c.photo_id == photo_id)
    row = conn.execute(query).mappings().first()
    return None if row is None else _record(row)


def _insert_new(conn: Connection, values: dict[str, Any]) -> Any:
    """INSERT that leaves an existing photo as it is (PostgreSQL and SQLite)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(photos).values(**values).on_conflict_do_nothing()
    return sqlite.insert(photos).values(**values).on_conflict_do_nothing()


def _outcome_json(o: domain.FaceOutcome) -> dict[str, Any]:
    return {
        "index": o.index,
        "box": list(o.box),
        "masked": o.masked,
        "reason": o.reason,
        "pupil_id": o.pupil_id,
        "consent_versions": list(o.consent_versions),
    }


def _box(values: Sequence[int]) -> domain.Box:
    left, top, right, bottom = (int(v) for v in values)
    return left, top, right, bottom


def _boxes(values: Sequence[Sequence[int]] | None) -> tuple[domain.Box, ...]:
    return tuple(_box(b) for b in values or ())


def _refusal(row: RowMapping) -> domain.Refusal | None:
    if row["refusal_reason"] is None:
        return None
    return domain.Refusal(row["refusal_reason"], row["refusal_detail"] or "")


def _closure(row: RowMapping) -> domain.Closure | None:
    if row["closed_at"] is None:
        return None
    return domain.Closure(row["closed_reason"] or "", row["closed_at"])


def _face_outcome(o: dict[str, Any]) -> domain.FaceOutcome:
    return domain.FaceOutcome(
        index=o["index"],
        box=_box(o["box"]),
        masked=o["masked"],
        reason=o["reason"],
        pupil_id=o["pupil_id"],
        consent_versions=tuple(o.get("consent_versions", ())),
    )


def _redaction(row: RowMapping) -> domain.Redaction | None:
    if row["redacted_key"] is None:
        return None
    return domain.Redaction(
        redacted_key=row["redacted_key"],
        preview_key=row["preview_key"],
        sha256=row["redacted_sha256"],
        width=row["redacted_width"],
        height=row["redacted_height"],
        faces=tuple(_face_outcome(o) for o in row["report"] or []),
        texts=tuple(
            domain.TextOutcome(t["index"], _box(t["box"]), t["masked"], t["reason"])
            for t in row["text_report"] or []
        ),
        ocr=row["ocr"] or domain.OCR_UNAVAILABLE,
        revision=row["redacted_revision"] or 0,
        added_masks=_boxes(row["added_report"]),
    )


def _record(row: RowMapping) -> domain.PhotoRecord:
    publish_on: date | None = row["publish_on"]
    return domain.PhotoRecord(
        photo_id=row["photo_id"],
        post_id=row["post_id"],
        school_id=row["school_id"],
        original_key=row["original_key"],
        purpose=row["purpose"],
        platforms=tuple(row["platforms"]),
        publish_on=publish_on,
        width=row["width"],
        height=row["height"],
        faces=tuple(
            domain.Face(f["index"], _box(f["box"]), float(f["score"]))
            for f in row["faces"]
        ),
        refusal=_refusal(row),
        redaction=_redaction(row),
        texts=_boxes(row["texts"]),
        ocr=row["ocr"] or domain.OCR_UNAVAILABLE,
        revision=row["revision"] or 0,
        extra_masks=_boxes(row["extra_masks"]),
        named=tuple((int(i), str(p)) for i, p in row["named"] or []),
        closed=_closure(row),
        original_deleted=row["original_deleted_at"] is not None,
    )


class MemoryPhotoRecords:
    """Photo records in a dict: for one-shot runs (``safepost redact``) and tests."""

    def __init__(self) -> None:
        self.records: dict[str, domain.PhotoRecord] = {}

    def find(self, photo_id: str) -> domain.PhotoRecord | None:
        return self.records.get(photo_id)

    def add(self, record: domain.PhotoRecord) -> domain.PhotoRecord:
        return self.records.setdefault(record.photo_id, record)

    def finish(self, photo_id: str, redaction: domain.Redaction) -> None:
        self.records[photo_id] = replace(self.records[photo_id], redaction=redaction)

    def revise(
        self,
        photo_id: str,
        revision: int,
        extra_masks: Sequence[domain.Box],
        named: Sequence[tuple[int, str]],
    ) -> None:
        if self.records[photo_id].revision < revision:
            self.records[photo_id] = replace(
                self.records[photo_id],
                revision=revision,
                extra_masks=tuple(extra_masks),
                named=tuple(named),
            )

    def close_post(self, post_id: str, closure: domain.Closure) -> None:
        for key, record in self.records.items():
            if record.post_id == post_id and record.closed is None:
                self.records[key] = replace(record, closed=closure)

    def due(self, now: datetime, retention_days: int) -> list[domain.PhotoRecord]:
        return [
            r
            for r in self.records.values()
            if domain.original_due(r, now, retention_days)
        ]

    def mark_deleted(self, photo_id: str) -> None:
        self.records[photo_id] = replace(self.records[photo_id], original_deleted=True)


class RedactionUnit(SqlUnitOfWork):
    """Redaction's unit of work: its photo records on one transaction, and the
    messages its use cases emit (``shared.uow``; the ``outbox`` table above)."""

    records: SqlPhotoRecords

    def bind(self, conn: Connection) -> None:
        self.records = SqlPhotoRecords(conn)

    @property
    def retention(self) -> SqlPhotoRecords:
        return self.records
