"""SQL implementations of intake's ports: posts, photos, devices, obligations."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.intake import domain
from services.intake.ports import EventFor, HeldPhoto, NewPost, ObligationEvent
from shared import contracts
from shared.db import (
    UtcDateTime,
    outbox_claim,
    outbox_mark_sent,
    outbox_pending,
    outbox_row,
    outbox_table,
    utcnow,
)

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
    sa.Column("device_id", sa.String(36), nullable=True),
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

outbox = outbox_table(metadata)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("device_id", sa.String(36), primary_key=True),
    sa.Column("school_id", sa.String(40), nullable=False, index=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False, index=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
    sa.Column("registered_by", sa.String(64), nullable=False),
    sa.Column("registered_at", UtcDateTime, nullable=False),
    sa.Column("approved_by", sa.String(64), nullable=True),
    sa.Column("approved_at", UtcDateTime, nullable=True),
    sa.Column("revoked_by", sa.String(64), nullable=True),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
    sa.Column("enrolled_at", UtcDateTime, nullable=True),
    sa.Column("last_seen_at", UtcDateTime, nullable=True),
)

enrolment_codes = sa.Table(
    "enrolment_codes",
    metadata,
    sa.Column("code_hash", sa.String(64), primary_key=True),
    sa.Column(
        "device_id",
        sa.String(36),
        sa.ForeignKey("devices.device_id"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("used_at", UtcDateTime, nullable=True),
)

obligation_table = sa.Table(
    "obligations",
    metadata,
    sa.Column("receipt_id", sa.String(36), primary_key=True),
    sa.Column("post_id", sa.String(36), nullable=False),
    sa.Column("school_id", sa.String(40), nullable=False),
    sa.Column("device_id", sa.String(36), nullable=False, index=True),
    sa.Column("owner", sa.String(64), nullable=False, index=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("filename", sa.String(200), nullable=False),
    sa.Column("opened_at", UtcDateTime, nullable=False),
    sa.Column("due_at", UtcDateTime, nullable=False, index=True),
    sa.Column("closed_at", UtcDateTime, nullable=True),
    sa.Column("deleted_at", UtcDateTime, nullable=True),
    sa.Column("method", sa.String(40), nullable=True),
    sa.Column("confirmed_by", sa.String(64), nullable=True),
    sa.Column("overdue_at", UtcDateTime, nullable=True),
)


class SqlPostLedger:
    def __init__(self, engine: Engine, now: Callable[[], datetime] = utcnow):
        self.engine = engine
        self.now = now

    def record(
        self,
        post: NewPost,
        envelope: contracts.Envelope,
        *,
        events: Sequence[contracts.Envelope] = (),
        obligations: Sequence[domain.Obligation] = (),
    ) -> None:
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
            conn.execute(
                outbox.insert(), [outbox_row(e, at) for e in (envelope, *events)]
            )
            if obligations:
                conn.execute(
                    obligation_table.insert(),
                    [_obligation_row(o) for o in obligations],
                )

    def pending(self, limit: int = 100) -> list[contracts.Envelope]:
        envelopes: list[contracts.Envelope] = outbox_pending(self.engine, outbox, limit)
        return envelopes

    def mark_sent(self, envelope_ids: Sequence[str]) -> None:
        outbox_mark_sent(self.engine, outbox, envelope_ids, self.now())

    def claim(
        self,
        publish: Callable[[contracts.Envelope], bool],
        limit: int = 100,
        only: Sequence[str] | None = None,
    ) -> tuple[int, bool]:
        return outbox_claim(self.engine, outbox, publish, limit, self.now, only)

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
        with self.engine.connect() as conn:
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


def _obligation_row(o: domain.Obligation) -> dict[str, Any]:
    return {
        "receipt_id": o.receipt_id,
        "post_id": o.post_id,
        "school_id": o.school_id,
        "device_id": o.device_id,
        "owner": o.owner,
        "sha256": o.sha256,
        "filename": o.filename,
        "opened_at": o.opened_at,
        "due_at": o.due_at,
        "closed_at": o.closed_at,
        "deleted_at": o.deleted_at,
        "method": o.method,
        "confirmed_by": o.confirmed_by,
        "overdue_at": o.overdue_at,
    }


def _device(row: Any) -> domain.Device:
    return domain.Device(
        device_id=row.device_id,
        school_id=row.school_id,
        name=row.name,
        owner=row.owner,
        kind=row.kind,
        status=row.status,
        registered_by=row.registered_by,
        registered_at=row.registered_at,
        approved_by=row.approved_by,
        approved_at=row.approved_at,
        revoked_by=row.revoked_by,
        revoked_at=row.revoked_at,
        last_seen_at=row.last_seen_at,
        enrolled_at=row.enrolled_at,
    )


def _obligation(row: Any) -> domain.Obligation:
    return domain.Obligation(
        **{c.name: getattr(row, c.name) for c in obligation_table.columns}
    )


DEVICE_COLUMNS = [c for c in devices.columns if c.name != "token_hash"]


class SqlDeviceRegister:
    """Devices, enrolment codes and deletion obligations in intake's database."""

    def __init__(self, engine: Engine, now: Callable[[], datetime] = utcnow):
        self.engine = engine
        self.now = now

    # -- devices --------------------------------------------------------------------

    def add(self, device: domain.Device, event: contracts.Envelope) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                devices.insert().values(
                    device_id=device.device_id,
                    school_id=device.school_id,
                    name=device.name,
                    owner=device.owner,
                    kind=device.kind,
                    status=device.status,
                    registered_by=device.registered_by,
                    registered_at=device.registered_at,
                )
            )
            conn.execute(outbox.insert().values(outbox_row(event, self.now())))

    def get(self, device_id: str) -> domain.Device | None:
        return self._one(devices.c.device_id == device_id)

    def by_token(self, token_hash: str) -> domain.Device | None:
        return self._one(devices.c.token_hash == token_hash)

    def _one(self, where: Any) -> domain.Device | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*DEVICE_COLUMNS).where(where)).first()
        return _device(row) if row is not None else None

    def listing(self, schools: Collection[str] | None) -> list[domain.Device]:
        query = sa.select(*DEVICE_COLUMNS).order_by(
            devices.c.registered_at.desc(), devices.c.device_id
        )
        if schools is not None:
            query = query.where(devices.c.school_id.in_(list(schools)))
        with self.engine.connect() as conn:
            return [_device(r) for r in conn.execute(query).all()]

    def change(
        self, device_id: str, status: str, by: str, at: datetime, event: EventFor
    ) -> domain.Device:
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(*DEVICE_COLUMNS).where(devices.c.device_id == device_id)
            ).first()
            if row is None:
                raise domain.DeviceStateError(
                    f"no device {device_id}", code="not_found", status=404
                )
            device = _device(row)
            domain.check_transition(device, status)
            values: dict[str, Any] = {"status": status}
            if status == domain.APPROVED:
                values.update(approved_by=by, approved_at=at)
            else:
                values.update(
                    revoked_by=by, revoked_at=at
                )  # the hash stays: named refusals
            conn.execute(
                devices.update()
                .where(devices.c.device_id == device_id)
                .where(devices.c.status == device.status)
                .values(**values)
            )
            changed = _device(
                conn.execute(
                    sa.select(*DEVICE_COLUMNS).where(devices.c.device_id == device_id)
                ).one()
            )
            conn.execute(outbox.insert().values(outbox_row(event(changed), at)))
        return changed

    def issue_code(
        self,
        device_id: str,
        code_hash: str,
        by: str,
        at: datetime,
        expires_at: datetime,
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                enrolment_codes.insert().values(
                    code_hash=code_hash,
                    device_id=device_id,
                    created_by=by,
                    created_at=at,
                    expires_at=expires_at,
                )
            )

    def redeem(
        self, code_hash: str, token_hash: str, at: datetime, event: EventFor
    ) -> domain.Device:
        with self.engine.begin() as conn:
            code = conn.execute(
                sa.select(enrolment_codes).where(
                    enrolment_codes.c.code_hash == code_hash
                )
            ).first()
            problem = domain.enrolment_refusal(
                code.device_id if code else None,
                code.expires_at if code else None,
                code.used_at if code else None,
                at,
            )
            if problem is not None:
                raise problem
            assert code is not None
            used = conn.execute(
                enrolment_codes.update()
                .where(enrolment_codes.c.code_hash == code_hash)
                .where(enrolment_codes.c.used_at.is_(None))
                .values(used_at=at)
            )
            if used.rowcount != 1:  # a concurrent exchange of the same code won
                raise domain.EnrolmentError(
                    "that enrolment code has been used already",
                    code="enrolment_code_used",
                )
            row = conn.execute(
                sa.select(*DEVICE_COLUMNS).where(devices.c.device_id == code.device_id)
            ).one()
            if row.status == domain.REVOKED:
                raise domain.EnrolmentError(
                    "that device has been revoked", code="device_revoked"
                )
            conn.execute(
                devices.update()
                .where(devices.c.device_id == code.device_id)
                .values(token_hash=token_hash, enrolled_at=at)
            )
            device = _device(
                conn.execute(
                    sa.select(*DEVICE_COLUMNS).where(
                        devices.c.device_id == code.device_id
                    )
                ).one()
            )
            conn.execute(outbox.insert().values(outbox_row(event(device), at)))
        return device

    def seen(self, device_id: str, at: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                devices.update()
                .where(devices.c.device_id == device_id)
                .values(last_seen_at=at)
            )

    def note(self, event: contracts.Envelope) -> None:
        with self.engine.begin() as conn:
            conn.execute(outbox.insert().values(outbox_row(event, self.now())))

    # -- deletion obligations -------------------------------------------------------

    def overdue_count(self, device_id: str, now: datetime) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(obligation_table)
            .where(obligation_table.c.device_id == device_id)
            .where(obligation_table.c.closed_at.is_(None))
            .where(obligation_table.c.due_at <= now)
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def obligations(
        self,
        *,
        device_ids: Collection[str] | None = None,
        owner: str | None = None,
        receipt_id: str | None = None,
        open_only: bool = True,
    ) -> list[domain.Obligation]:
        query = sa.select(obligation_table).order_by(
            obligation_table.c.due_at, obligation_table.c.receipt_id
        )
        if device_ids is not None:
            query = query.where(obligation_table.c.device_id.in_(list(device_ids)))
        if owner is not None:
            query = query.where(obligation_table.c.owner == owner)
        if receipt_id is not None:
            query = query.where(obligation_table.c.receipt_id == receipt_id)
        if open_only:
            query = query.where(obligation_table.c.closed_at.is_(None))
        with self.engine.connect() as conn:
            return [_obligation(r) for r in conn.execute(query).all()]

    def close(
        self,
        receipt_id: str,
        deleted_at: datetime,
        at: datetime,
        method: str,
        by: str,
        event: ObligationEvent,
    ) -> domain.Obligation | None:
        with self.engine.begin() as conn:
            done = conn.execute(
                obligation_table.update()
                .where(obligation_table.c.receipt_id == receipt_id)
                .where(obligation_table.c.closed_at.is_(None))
                .values(
                    closed_at=at, deleted_at=deleted_at, method=method, confirmed_by=by
                )
            )
            if done.rowcount != 1:
                return None
            closed = _obligation(
                conn.execute(
                    sa.select(obligation_table).where(
                        obligation_table.c.receipt_id == receipt_id
                    )
                ).one()
            )
            conn.execute(outbox.insert().values(outbox_row(event(closed), at)))
        return closed

    def mark_overdue(self, now: datetime, event: ObligationEvent) -> int:
        with self.engine.begin() as conn:
            due = conn.execute(
                sa.select(obligation_table)
                .where(obligation_table.c.closed_at.is_(None))
                .where(obligation_table.c.overdue_at.is_(None))
                .where(obligation_table.c.due_at <= now)
            ).all()
            for row in due:
                flagged = conn.execute(
                    obligation_table.update()
                    .where(obligation_table.c.receipt_id == row.receipt_id)
                    .where(obligation_table.c.overdue_at.is_(None))
                    .values(overdue_at=now)
                )
                if flagged.rowcount == 1:
                    conn.execute(
                        outbox.insert().values(outbox_row(event(_obligation(row)), now))
                    )
        return len(due)
