"""Consent's tables (SQLAlchemy Core) and the row <-> value conversions.

Biometric data (face encodings) lives only in ``face_encodings``. Each school carries
two counters bumped in the transaction of every change that affects them, so caches in
every process see the change on their next use: ``gallery_version`` (enrolled
encodings) and ``roll_version`` (pupils, consent, never-publish).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.consent.domain import (
    BiometricConsent,
    ConsentRecord,
    NeverPublish,
    Pupil,
    School,
)
from shared.db import UtcDateTime, outbox_table

metadata = sa.MetaData()

schools = sa.Table(
    "schools",
    metadata,
    sa.Column("slug", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expiry_month", sa.Integer, nullable=False, server_default="8"),
    sa.Column("expiry_day", sa.Integer, nullable=False, server_default="31"),
    # Bumped whenever the school's enrolled encodings or pupil names change: caches
    # in every process compare it and reload.
    sa.Column("gallery_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("roll_version", sa.Integer, nullable=False, server_default="0"),
)

pupils = sa.Table(
    "pupils",
    metadata,
    sa.Column(
        "school_slug", sa.String(40), sa.ForeignKey("schools.slug"), primary_key=True
    ),
    sa.Column("pupil_id", sa.String(64), primary_key=True),  # the school's UPN/MIS id
    sa.Column("forename", sa.String(100), nullable=False),
    sa.Column("surname", sa.String(100), nullable=False),
    sa.Column("year_group", sa.String(20), nullable=False, server_default=""),
    sa.Column("class_name", sa.String(40), nullable=False, server_default=""),
    sa.Column("on_roll", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("left_on", sa.Date, nullable=True),
    sa.Column("preferred_name", sa.String(100), nullable=False, server_default=""),
)

consent_records = sa.Table(
    "consent_records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "school_slug", sa.String(40), sa.ForeignKey("schools.slug"), nullable=False
    ),
    sa.Column("pupil_id", sa.String(64), nullable=False),
    sa.Column("purpose", sa.String(40), nullable=False),
    sa.Column("platform", sa.String(40), nullable=True),  # None: the whole purpose
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("given_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("relationship", sa.String(40), nullable=False, server_default=""),
    sa.Column("method", sa.String(40), nullable=False, server_default=""),
    sa.Column("evidence_ref", sa.String(200), nullable=False, server_default=""),
    sa.Column("expires_on", sa.Date, nullable=True),
    sa.Column("recorded_by", sa.String(100), nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.CheckConstraint(
        "status IN ('granted', 'refused', 'withdrawn', 'not_returned')",
        name="ck_consent_records_status",
    ),
    sa.Index("ix_consent_records_pupil", "school_slug", "pupil_id", "purpose"),
)

never_publish = sa.Table(
    "never_publish",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "school_slug", sa.String(40), sa.ForeignKey("schools.slug"), nullable=False
    ),
    sa.Column("pupil_id", sa.String(64), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("category", sa.String(40), nullable=False, server_default=""),
    sa.Column("note", sa.String(500), nullable=False, server_default=""),
    sa.Column("recorded_by", sa.String(100), nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Index("ix_never_publish_pupil", "school_slug", "pupil_id"),
)

biometric_consents = sa.Table(
    "biometric_consents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "school_slug", sa.String(40), sa.ForeignKey("schools.slug"), nullable=False
    ),
    sa.Column("pupil_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("pupil_objects", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("given_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("relationship", sa.String(40), nullable=False, server_default=""),
    sa.Column("method", sa.String(40), nullable=False, server_default=""),
    sa.Column("evidence_ref", sa.String(200), nullable=False, server_default=""),
    sa.Column("recorded_by", sa.String(100), nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.CheckConstraint(
        "status IN ('granted', 'refused', 'withdrawn', 'not_returned')",
        name="ck_biometric_consents_status",
    ),
    sa.Index("ix_biometric_consents_pupil", "school_slug", "pupil_id"),
)

face_encodings = sa.Table(
    "face_encodings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "school_slug", sa.String(40), sa.ForeignKey("schools.slug"), nullable=False
    ),
    sa.Column("pupil_id", sa.String(64), nullable=False),
    sa.Column("encoding", sa.LargeBinary, nullable=False),  # 128 float64, little end
    sa.Column("enrolled_by", sa.String(100), nullable=False),
    sa.Column("enrolled_at", UtcDateTime(), nullable=False),
    sa.Index("ix_face_encodings_pupil", "school_slug", "pupil_id"),
)

target_accounts = sa.Table(
    "target_accounts",
    metadata,
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("school_slug", sa.String(40), nullable=False, index=True),
    sa.Column("platform", sa.String(20), nullable=False),
    sa.Column("purpose", sa.String(40), nullable=False),
    sa.Column("consent_platform", sa.String(40), nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

outbox = outbox_table(metadata)


_PUPIL_FIELDS = tuple(Pupil.__dataclass_fields__)


def pupil_of(row: Any) -> Pupil:
    m = row._mapping
    return Pupil(**{k: m[k] for k in _PUPIL_FIELDS})


def consent_of(row: Any) -> ConsentRecord:
    return ConsentRecord(
        pupil_id=row.pupil_id,
        purpose=row.purpose,
        platform=row.platform,
        status=row.status,
        version=row.version,
        record_id=row.id,
        expires_on=row.expires_on,
        given_by=row.given_by,
        relationship=row.relationship,
        method=row.method,
        evidence_ref=row.evidence_ref,
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
    )


def school_of(row: Any) -> School:
    return School(row.slug, row.name, row.expiry_month, row.expiry_day)


def flag_of(row: Any) -> NeverPublish:
    return NeverPublish(
        row.active,
        row.category,
        row.note,
        row.version,
        row.recorded_by,
        row.recorded_at,
    )


def biometric_of(row: Any) -> BiometricConsent:
    return BiometricConsent(
        row.pupil_id, row.status, bool(row.pupil_objects), row.version
    )


def bump(
    conn: Connection, school_id: str, gallery: bool = False, roll: bool = False
) -> None:
    """Move the school's cache counters (in the caller's transaction)."""
    values: dict[str, Any] = {}
    if gallery:
        values["gallery_version"] = schools.c.gallery_version + 1
    if roll:
        values["roll_version"] = schools.c.roll_version + 1
    conn.execute(schools.update().where(schools.c.slug == school_id).values(values))


def version_of(conn: Connection, school_id: str, column: Any) -> int | None:
    """One of the school's counters (None: no such school)."""
    value = conn.execute(sa.select(column).where(schools.c.slug == school_id)).scalar()
    return None if value is None else int(value)


def insert_new(conn: Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """Insert a row unless one with its key exists (no error, no savepoint: the
    caller's transaction carries on); True if it was inserted."""
    insert: Any
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(table).values(**values).on_conflict_do_nothing()
    key = list(table.primary_key.columns)
    return conn.execute(statement.returning(*key)).first() is not None


def upsert(
    conn: Connection, table: sa.Table, key: dict[str, Any], values: dict[str, Any]
) -> None:
    """Insert the row, or update it if its key exists (the newest word wins)."""
    insert: Any
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(
        insert(table)
        .values(**key, **values)
        .on_conflict_do_update(index_elements=list(key), set_=values)
    )
