"""SQL implementations of consent's ports (SQLAlchemy Core), the in-memory face gallery
and the enrolment encoder.

Every change of who may be shown is written together with its ``ConsentChanged``
envelope in the outbox, in one transaction; the worker's relay publishes it.
Biometric data (face encodings) lives only in ``face_encodings``; withdrawal, objection
or leaving deletes a pupil's rows in the same transaction as the change.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from services.consent import changes, domain, importing
from services.consent.domain import (
    BiometricConsent,
    ConsentRecord,
    Pupil,
    School,
    Scope,
    Standing,
    TargetAccount,
)
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
from shared.errors import ConflictError, InvalidInputError, NotFoundError

logger = logging.getLogger(__name__)
metadata = sa.MetaData()
ENCODING_DIMS = 128

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

outbox = outbox_table(metadata)

_PUPIL_FIELDS = tuple(Pupil.__dataclass_fields__)


def _pupil(row: Any) -> Pupil:
    m = row._mapping
    return Pupil(**{k: m[k] for k in _PUPIL_FIELDS})


def _consent(row: Any) -> ConsentRecord:
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


def _school(row: Any) -> School:
    return School(row.slug, row.name, row.expiry_month, row.expiry_day)


@dataclass(frozen=True)
class NeverPublish:
    active: bool
    category: str = ""
    note: str = ""
    version: int = 0
    recorded_by: str = ""
    recorded_at: datetime | None = None


class SqlConsentStore:
    """Schools, pupils, consent, never-publish flags, biometric consent, encodings and
    the outbox (implements the SchoolDirectory, PupilRoll, ConsentRegister,
    Safeguarding, Biometrics and Outbox ports)."""

    def __init__(
        self,
        engine: Engine,
        now: Callable[[], datetime] = utcnow,
        *,
        take_down_on_leaving: bool = False,
        take_down_on_expiry: bool = False,
    ):
        self.engine = engine
        self.now = now
        # The trust's choice for live posts of a pupil who left or whose consent
        # expired: take them down, or keep what was published while consent was
        # valid (the default; listed for the DPO). Withdrawal and never-publish always
        # take them down.
        self.take_down_on_leaving = take_down_on_leaving
        self.take_down_on_expiry = take_down_on_expiry
        # Per-school caches, checked against the school's roll_version on every use.
        self._names: dict[str, tuple[int | None, domain.NameIndex]] = {}
        self._standings_cache: dict[str, tuple[int, dict[str, Standing]]] = {}

    # Schools.

    def add_school(self, school: School) -> bool:
        with self.engine.begin() as conn:
            if conn.execute(
                sa.select(schools.c.slug).where(schools.c.slug == school.slug)
            ).first():
                return False
            try:
                conn.execute(
                    schools.insert().values(
                        slug=school.slug,
                        name=school.name,
                        created_at=self.now(),
                        expiry_month=school.expiry_month,
                        expiry_day=school.expiry_day,
                    )
                )
            except IntegrityError:
                return False
        return True

    def schools(self) -> list[School]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(schools).order_by(schools.c.slug))
            return [_school(r) for r in rows]

    def school(self, slug: str) -> School:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(schools).where(schools.c.slug == slug)).first()
        if row is None:
            raise NotFoundError(f"no school {slug}")
        return _school(row)

    # Pupils.

    def add_pupil(self, pupil: Pupil) -> None:
        with self.engine.begin() as conn:
            self._need_school(conn, pupil.school_slug)
            if self._pupil_row(conn, pupil.school_slug, pupil.pupil_id):
                raise ConflictError(
                    f"pupil {pupil.pupil_id} already exists", code="pupil_exists"
                )
            try:
                conn.execute(pupils.insert().values(**vars(pupil)))
            except IntegrityError:  # added by someone else in the meantime
                raise ConflictError(
                    f"pupil {pupil.pupil_id} already exists", code="pupil_exists"
                ) from None
            self._bump(conn, pupil.school_slug, roll=True)

    def update_pupil(self, pupil: Pupil, by: str, today: date) -> int:
        """Replace a pupil's roll details; leaving deletes their encodings and says
        so with ConsentChanged(restricted). The number of encodings deleted."""
        with self.engine.begin() as conn:
            old = self._pupil_row(conn, pupil.school_slug, pupil.pupil_id, lock=True)
            if old is None:
                raise NotFoundError(f"no pupil {pupil.pupil_id} in {pupil.school_slug}")
            before = _pupil(old)
            conn.execute(
                pupils.update()
                .where(
                    pupils.c.school_slug == pupil.school_slug,
                    pupils.c.pupil_id == pupil.pupil_id,
                )
                .values(**vars(pupil))
            )
            self._bump(conn, pupil.school_slug, roll=True)
            deleted = 0
            if before.on_roll != pupil.on_roll:
                if not pupil.on_roll:
                    deleted = self._forget(conn, pupil.school_slug, pupil.pupil_id)
                cause = "unrestricted" if pupil.on_roll else "restricted"
                self._emit_standing(
                    conn,
                    pupil.school_slug,
                    pupil.pupil_id,
                    cause,
                    today,
                    take_down=self.take_down_on_leaving,
                )
            return deleted

    def pupils(
        self, school_slug: str, query: str = "", class_name: str | None = None
    ) -> list[Pupil]:
        stmt = sa.select(pupils).where(pupils.c.school_slug == school_slug)
        if query:
            like = (
                "%"
                + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                + "%"
            )
            stmt = stmt.where(
                sa.or_(
                    pupils.c.forename.ilike(like, escape="\\"),
                    pupils.c.surname.ilike(like, escape="\\"),
                    pupils.c.preferred_name.ilike(like, escape="\\"),
                    pupils.c.pupil_id.ilike(like, escape="\\"),
                    pupils.c.class_name.ilike(like, escape="\\"),
                )
            )
        if class_name is not None:
            stmt = stmt.where(pupils.c.class_name == class_name)
        stmt = stmt.order_by(pupils.c.surname, pupils.c.forename, pupils.c.pupil_id)
        with self.engine.connect() as conn:
            return [_pupil(r) for r in conn.execute(stmt)]

    def pupil(self, school_slug: str, pupil_id: str) -> Pupil:
        with self.engine.connect() as conn:
            row = self._pupil_row(conn, school_slug, pupil_id)
        if row is None:
            raise NotFoundError(f"no pupil {pupil_id} in {school_slug}")
        return _pupil(row)

    def classes(self, school_slug: str) -> list[str]:
        stmt = (
            sa.select(pupils.c.class_name)
            .where(pupils.c.school_slug == school_slug)
            .distinct()
            .order_by(pupils.c.class_name)
        )
        with self.engine.connect() as conn:
            return [r.class_name for r in conn.execute(stmt)]

    def name_index(self, school_slug: str) -> domain.NameIndex:
        """The school's pupil names for text matching (cached per roll version)."""
        with self.engine.connect() as conn:
            version = conn.execute(
                sa.select(schools.c.roll_version).where(schools.c.slug == school_slug)
            ).scalar()
            cached = self._names.get(school_slug)
            if cached is not None and cached[0] == version:
                return cached[1]
            rows = conn.execute(
                sa.select(pupils.c.surname).where(pupils.c.school_slug == school_slug)
            )
            index = domain.NameIndex.of(
                Pupil(school_slug, "", "", r.surname) for r in rows
            )
        self._names[school_slug] = (version, index)
        return index

    # Photo consent.

    def standings(
        self, school_id: str, pupil_ids: Iterable[str]
    ) -> dict[str, Standing]:
        """From an in-memory copy of the school's standings, reloaded whenever the
        school's ``roll_version`` has moved (every change bumps it in the same
        transaction): one small query per photo, whatever the school's size."""
        wanted = set(pupil_ids)
        if not wanted:
            return {}
        with self.engine.connect() as conn:
            version = conn.execute(
                sa.select(schools.c.roll_version).where(schools.c.slug == school_id)
            ).scalar()
            if version is None:
                return {}
            cached = self._standings_cache.get(school_id)
            if cached is None or cached[0] != version:
                cached = (version, self._standings(conn, school_id, None))
                self._standings_cache[school_id] = cached
        return {p: cached[1][p] for p in wanted if p in cached[1]}

    def _standings(
        self, conn: Connection, school_id: str, wanted: Sequence[str] | None
    ) -> dict[str, Standing]:
        """Standings of these pupils (None: every pupil of the school)."""
        out: dict[str, Standing] = {}
        query = sa.select(pupils.c.pupil_id, pupils.c.on_roll).where(
            pupils.c.school_slug == school_id
        )
        if wanted is not None:
            query = query.where(pupils.c.pupil_id.in_(list(wanted)))
        roll = conn.execute(query)
        on_roll = {r.pupil_id: bool(r.on_roll) for r in roll}
        consents: dict[str, dict[tuple[str, str | None], ConsentRecord]] = defaultdict(
            dict
        )
        consent_query = sa.select(consent_records).where(
            consent_records.c.school_slug == school_id
        )
        if wanted is not None:
            consent_query = consent_query.where(
                consent_records.c.pupil_id.in_(list(on_roll))
            )
        for row in conn.execute(
            consent_query.order_by(consent_records.c.version, consent_records.c.id)
        ):
            if row.pupil_id not in on_roll:
                continue
            record = _consent(row)  # later versions replace earlier ones
            consents[row.pupil_id][(record.purpose, record.platform)] = record
        flags = self._never_publish(
            conn, school_id, None if wanted is None else list(on_roll)
        )
        for pupil_id, present in on_roll.items():
            out[pupil_id] = Standing(
                pupil_id,
                on_roll=present,
                never_publish=flags.get(pupil_id, NeverPublish(False)).active,
                consents=dict(consents.get(pupil_id, {})),
            )
        return out

    def history(self, school_id: str, pupil_id: str) -> list[ConsentRecord]:
        query = (
            sa.select(consent_records)
            .where(
                consent_records.c.school_slug == school_id,
                consent_records.c.pupil_id == pupil_id,
            )
            .order_by(consent_records.c.recorded_at, consent_records.c.id)
        )
        with self.engine.connect() as conn:
            return [_consent(r) for r in conn.execute(query)]

    def record_consent(
        self, school_id: str, record: ConsentRecord, today: date
    ) -> ConsentRecord:
        """Add a new version for the record's scope (history is never overwritten)
        and its ConsentChanged; returns it with its id and version."""
        with self.engine.begin() as conn:
            if self._pupil_row(conn, school_id, record.pupil_id, lock=True) is None:
                raise NotFoundError(f"no pupil {record.pupil_id} in {school_id}")
            saved = self._insert_consent(conn, school_id, record)
            self._bump(conn, school_id, roll=True)
            self._emit(
                conn,
                changes.consent_changed(school_id, record.pupil_id, [saved], today),
                actor=record.recorded_by or None,
            )
            return saved

    def _insert_consent(
        self, conn: Connection, school_id: str, record: ConsentRecord
    ) -> ConsentRecord:
        platform = consent_records.c.platform
        same_scope = (
            platform.is_(None)
            if record.platform is None
            else platform == record.platform
        )
        version = (
            conn.execute(
                sa.select(sa.func.max(consent_records.c.version)).where(
                    consent_records.c.school_slug == school_id,
                    consent_records.c.pupil_id == record.pupil_id,
                    consent_records.c.purpose == record.purpose,
                    same_scope,
                )
            ).scalar()
            or 0
        ) + 1
        at = self.now()
        new_id = conn.execute(
            consent_records.insert()
            .values(
                school_slug=school_id,
                pupil_id=record.pupil_id,
                purpose=record.purpose,
                platform=record.platform,
                status=record.status,
                given_by=record.given_by,
                relationship=record.relationship,
                method=record.method,
                evidence_ref=record.evidence_ref,
                expires_on=record.expires_on,
                recorded_by=record.recorded_by,
                recorded_at=at,
                version=version,
            )
            .returning(consent_records.c.id)
        ).scalar_one()
        return replace(record, record_id=new_id, version=version, recorded_at=at)

    # Never-publish (admins only; never revealed outside this service).

    def set_never_publish(
        self,
        school_id: str,
        pupil_id: str,
        flag: NeverPublish,
        by: str,
        today: date,
    ) -> NeverPublish:
        with self.engine.begin() as conn:
            if self._pupil_row(conn, school_id, pupil_id, lock=True) is None:
                raise NotFoundError(f"no pupil {pupil_id} in {school_id}")
            current = self._never_publish(conn, school_id, [pupil_id]).get(pupil_id)
            version = (current.version if current else 0) + 1
            at = self.now()
            conn.execute(
                never_publish.insert().values(
                    school_slug=school_id,
                    pupil_id=pupil_id,
                    active=flag.active,
                    category=flag.category,
                    note=flag.note,
                    recorded_by=by,
                    recorded_at=at,
                    version=version,
                )
            )
            self._bump(conn, school_id, roll=True)
            was = current.active if current else False
            if was != flag.active:
                cause = "restricted" if flag.active else "unrestricted"
                self._emit_standing(conn, school_id, pupil_id, cause, today, by)
            return replace(flag, version=version, recorded_by=by, recorded_at=at)

    def never_publish_history(
        self, school_id: str, pupil_id: str
    ) -> list[NeverPublish]:
        stmt = (
            sa.select(never_publish)
            .where(
                never_publish.c.school_slug == school_id,
                never_publish.c.pupil_id == pupil_id,
            )
            .order_by(never_publish.c.version)
        )
        with self.engine.connect() as conn:
            return [
                NeverPublish(
                    r.active,
                    r.category,
                    r.note,
                    r.version,
                    r.recorded_by,
                    r.recorded_at,
                )
                for r in conn.execute(stmt)
            ]

    def _never_publish(
        self, conn: Connection, school_id: str, pupil_ids: Sequence[str] | None
    ) -> dict[str, NeverPublish]:
        if pupil_ids is not None and not pupil_ids:
            return {}
        out: dict[str, NeverPublish] = {}
        query = sa.select(never_publish).where(never_publish.c.school_slug == school_id)
        if pupil_ids is not None:
            query = query.where(never_publish.c.pupil_id.in_(list(pupil_ids)))
        for r in conn.execute(query.order_by(never_publish.c.version)):
            out[r.pupil_id] = NeverPublish(
                r.active, r.category, r.note, r.version, r.recorded_by, r.recorded_at
            )
        return out

    # Biometric consent and enrolment.

    def biometric(self, school_id: str, pupil_id: str) -> BiometricConsent | None:
        with self.engine.connect() as conn:
            return self._biometric(conn, school_id, [pupil_id]).get(pupil_id)

    def biometric_history(self, school_id: str, pupil_id: str) -> list[dict[str, Any]]:
        stmt = (
            sa.select(biometric_consents)
            .where(
                biometric_consents.c.school_slug == school_id,
                biometric_consents.c.pupil_id == pupil_id,
            )
            .order_by(biometric_consents.c.version)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def _biometric(
        self, conn: Connection, school_id: str, pupil_ids: Sequence[str]
    ) -> dict[str, BiometricConsent]:
        out: dict[str, BiometricConsent] = {}
        for r in conn.execute(
            sa.select(biometric_consents)
            .where(
                biometric_consents.c.school_slug == school_id,
                biometric_consents.c.pupil_id.in_(list(pupil_ids)),
            )
            .order_by(biometric_consents.c.version)
        ):
            out[r.pupil_id] = BiometricConsent(
                r.pupil_id, r.status, bool(r.pupil_objects), r.version
            )
        return out

    def record_biometric(
        self,
        school_id: str,
        consent: BiometricConsent,
        by: str,
        given_by: str = "",
        relationship: str = "",
        method: str = "",
        evidence_ref: str = "",
    ) -> int:
        """A new biometric consent version; if it no longer permits enrolment the
        pupil's encodings are deleted at once. The number deleted."""
        with self.engine.begin() as conn:
            if self._pupil_row(conn, school_id, consent.pupil_id, lock=True) is None:
                raise NotFoundError(f"no pupil {consent.pupil_id} in {school_id}")
            self._insert_biometric(
                conn,
                school_id,
                consent,
                by,
                given_by=given_by,
                relationship=relationship,
                method=method,
                evidence_ref=evidence_ref,
            )
            if consent.permits_enrolment:
                return 0
            return self._forget(conn, school_id, consent.pupil_id)

    def _insert_biometric(
        self,
        conn: Connection,
        school_id: str,
        consent: BiometricConsent,
        by: str,
        **details: str,
    ) -> None:
        current = self._biometric(conn, school_id, [consent.pupil_id]).get(
            consent.pupil_id
        )
        conn.execute(
            biometric_consents.insert().values(
                school_slug=school_id,
                pupil_id=consent.pupil_id,
                status=consent.status,
                pupil_objects=consent.pupil_objects,
                recorded_by=by,
                recorded_at=self.now(),
                version=(current.version if current else 0) + 1,
                **details,
            )
        )

    def enrol(
        self,
        school_id: str,
        pupil_id: str,
        encodings: Sequence[Sequence[float]],
        by: str,
    ) -> int:
        """Store encodings if the pupil may be enrolled (checked in the same
        transaction); ConflictError saying why not. The pupil's number enrolled."""
        for e in encodings:
            if len(e) != ENCODING_DIMS or not np.all(np.isfinite(e)):
                raise InvalidInputError("an encoding is 128 finite numbers")
        with self.engine.begin() as conn:
            row = self._pupil_row(conn, school_id, pupil_id, lock=True)
            pupil = _pupil(row) if row is not None else None
            consent = self._biometric(conn, school_id, [pupil_id]).get(pupil_id)
            refusal = domain.may_enrol(pupil, consent)
            if refusal is not None:
                if pupil is None:
                    raise NotFoundError(f"no pupil {pupil_id} in {school_id}")
                raise ConflictError(
                    f"{pupil_id} may not be enrolled: {refusal}", code="not_enrollable"
                )
            at = self.now()
            if encodings:
                conn.execute(
                    face_encodings.insert(),
                    [
                        {
                            "school_slug": school_id,
                            "pupil_id": pupil_id,
                            "encoding": np.asarray(e, dtype="<f8").tobytes(),
                            "enrolled_by": by,
                            "enrolled_at": at,
                        }
                        for e in encodings
                    ],
                )
                self._bump(conn, school_id, gallery=True)
            return self._enrolled(conn, school_id, pupil_id)

    def forget_faces(self, school_id: str, pupil_id: str) -> int:
        """Delete a pupil's encodings; the number deleted."""
        with self.engine.begin() as conn:
            return self._forget(conn, school_id, pupil_id)

    def enrolled(self, school_id: str, pupil_id: str) -> int:
        with self.engine.connect() as conn:
            return self._enrolled(conn, school_id, pupil_id)

    def _enrolled(self, conn: Connection, school_id: str, pupil_id: str) -> int:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    face_encodings.c.school_slug == school_id,
                    face_encodings.c.pupil_id == pupil_id,
                )
            ).scalar_one()
        )

    def _forget(self, conn: Connection, school_id: str, pupil_id: str) -> int:
        deleted = conn.execute(
            face_encodings.delete().where(
                face_encodings.c.school_slug == school_id,
                face_encodings.c.pupil_id == pupil_id,
            )
        ).rowcount
        if deleted:
            self._bump(conn, school_id, gallery=True)
            logger.info("deleted %d face encoding(s) of a pupil", deleted)
        return int(deleted or 0)

    # CSV import and export.

    def apply_import(
        self,
        school_id: str,
        rows: Sequence[importing.ImportRow],
        by: str,
        today: date,
        dry_run: bool,
    ) -> importing.ImportReport:
        """Apply parsed rows in one transaction (or only count, for a dry run).

        Idempotent on pupil id: a row that changes nothing writes nothing.
        """
        report = importing.ImportReport(rows=len(rows))
        with self.engine.begin() as conn:
            self._need_school(conn, school_id)
            existing = {
                r.pupil_id: _pupil(r)
                for r in conn.execute(
                    sa.select(pupils).where(pupils.c.school_slug == school_id)
                )
            }
            current = self._current_wide(conn, school_id)
            bio = self._biometric_all(conn, school_id)
            enrolled = self._enrolled_pupils(conn, school_id)
            new_pupils, updates, new_consents, new_bio, forget = [], [], [], [], []
            events: list[contracts.ConsentChanged] = []
            announce: list[tuple[str, list[ConsentRecord]]] = []
            for row in rows:
                before = existing.get(row.pupil.pupil_id)
                if before is None:
                    new_pupils.append(vars(row.pupil))
                    report.pupils_added += 1
                elif before != row.pupil:
                    updates.append(row.pupil)
                    report.pupils_updated += 1
                else:
                    report.pupils_unchanged += 1
                changed: list[ConsentRecord] = []
                for purpose, status in row.consents.items():
                    old = current.get((row.pupil.pupil_id, purpose))
                    if old is None and status == "not_returned":
                        continue  # a blank cell and nothing recorded: nothing to say
                    if old is not None and old.status == status:
                        continue
                    changed.append(
                        ConsentRecord(
                            pupil_id=row.pupil.pupil_id,
                            purpose=purpose,
                            platform=None,
                            status=status,
                            version=(old.version if old else 0) + 1,
                            expires_on=row.expires_on,
                            given_by=row.given_by,
                            relationship=row.relationship,
                            method="mis_import",
                            evidence_ref=row.evidence_ref,
                            recorded_by=by,
                        )
                    )
                new_consents.extend(changed)
                report.consents_changed += len(changed)
                old_bio = bio.get(row.pupil.pupil_id)
                if row.biometric is not None and (
                    old_bio is None
                    or (old_bio.status, old_bio.pupil_objects)
                    != (row.biometric, row.pupil_objects)
                ):
                    new_bio.append(
                        BiometricConsent(
                            row.pupil.pupil_id,
                            row.biometric,
                            row.pupil_objects,
                            (old_bio.version if old_bio else 0) + 1,
                        )
                    )
                    report.biometric_changed += 1
                permits = (
                    BiometricConsent("", row.biometric, row.pupil_objects)
                    if row.biometric is not None
                    else old_bio
                )
                left = before is not None and before.on_roll and not row.pupil.on_roll
                if row.pupil.pupil_id in enrolled and (
                    not row.pupil.on_roll
                    or permits is None
                    or not permits.permits_enrolment
                ):
                    forget.append(row.pupil.pupil_id)
                    report.encodings_deleted += enrolled[row.pupil.pupil_id]
                if left:
                    events.append(
                        changes.restricted(
                            school_id,
                            row.pupil.pupil_id,
                            today,
                            take_down=self.take_down_on_leaving,
                        )
                    )
                elif changed:
                    # announced once the records are stored (their ids are cited)
                    announce.append((row.pupil.pupil_id, changed))
            if dry_run:
                conn.rollback()
                return report
            at = self.now()
            if new_pupils:
                conn.execute(pupils.insert(), new_pupils)
            for p in updates:
                conn.execute(
                    pupils.update()
                    .where(
                        pupils.c.school_slug == school_id,
                        pupils.c.pupil_id == p.pupil_id,
                    )
                    .values(**vars(p))
                )
            if new_consents:
                conn.execute(
                    consent_records.insert(),
                    [
                        {
                            "school_slug": school_id,
                            "pupil_id": c.pupil_id,
                            "purpose": c.purpose,
                            "platform": None,
                            "status": c.status,
                            "given_by": c.given_by,
                            "relationship": c.relationship,
                            "method": c.method,
                            "evidence_ref": c.evidence_ref,
                            "expires_on": c.expires_on,
                            "recorded_by": by,
                            "recorded_at": at,
                            "version": c.version,
                        }
                        for c in new_consents
                    ],
                )
            if new_bio:
                conn.execute(
                    biometric_consents.insert(),
                    [
                        {
                            "school_slug": school_id,
                            "pupil_id": b.pupil_id,
                            "status": b.status,
                            "pupil_objects": b.pupil_objects,
                            "method": "mis_import",
                            "recorded_by": by,
                            "recorded_at": at,
                            "version": b.version,
                        }
                        for b in new_bio
                    ],
                )
            for pupil_id in forget:
                self._forget(conn, school_id, pupil_id)
            if announce:
                ids = self._imported_ids(conn, school_id, at)
                for pupil_id, changed in announce:
                    stored = [
                        replace(c, record_id=ids[(c.pupil_id, c.purpose, c.version)])
                        for c in changed
                    ]
                    events.append(
                        changes.consent_changed(school_id, pupil_id, stored, today)
                    )
            for event in events:
                self._emit(conn, event, actor=by)
            if new_pupils or updates or new_consents or forget:
                self._bump(conn, school_id, roll=True)
            report.applied = True
            return report

    def _imported_ids(
        self, conn: Connection, school_id: str, at: datetime
    ) -> dict[tuple[str, str, int], int]:
        """(pupil, purpose, version) -> id of the purpose-wide records an import
        stored at ``at``."""
        c = consent_records.c
        rows = conn.execute(
            sa.select(c.id, c.pupil_id, c.purpose, c.version).where(
                c.school_slug == school_id,
                c.recorded_at == at,
                c.method == "mis_import",
                c.platform.is_(None),
            )
        )
        return {(r.pupil_id, r.purpose, r.version): r.id for r in rows}

    def export_rows(self, school_id: str) -> list[list[str]]:
        with self.engine.connect() as conn:
            self._need_school(conn, school_id)
            current = self._current_wide(conn, school_id)
            bio = self._biometric_all(conn, school_id)
            rows = conn.execute(
                sa.select(pupils)
                .where(pupils.c.school_slug == school_id)
                .order_by(pupils.c.pupil_id)
            )
            out = []
            for r in rows:
                p = _pupil(r)
                wide = [
                    importing.yes_no(
                        c.status if (c := current.get((p.pupil_id, purpose))) else None
                    )
                    for purpose in domain.PURPOSES
                ]
                b = bio.get(p.pupil_id)
                out.append(
                    [
                        p.pupil_id,
                        p.forename,
                        p.surname,
                        p.preferred_name,
                        p.year_group,
                        p.class_name,
                        p.left_on.isoformat() if p.left_on else "",
                        *wide,
                        importing.yes_no(b.status if b else None),
                    ]
                )
            return out

    def _current_wide(
        self, conn: Connection, school_id: str
    ) -> dict[tuple[str, str], ConsentRecord]:
        out: dict[tuple[str, str], ConsentRecord] = {}
        for row in conn.execute(
            sa.select(consent_records)
            .where(
                consent_records.c.school_slug == school_id,
                consent_records.c.platform.is_(None),
            )
            .order_by(consent_records.c.version, consent_records.c.id)
        ):
            out[(row.pupil_id, row.purpose)] = _consent(row)
        return out

    def _biometric_all(
        self, conn: Connection, school_id: str
    ) -> dict[str, BiometricConsent]:
        out: dict[str, BiometricConsent] = {}
        for r in conn.execute(
            sa.select(biometric_consents)
            .where(biometric_consents.c.school_slug == school_id)
            .order_by(biometric_consents.c.version)
        ):
            out[r.pupil_id] = BiometricConsent(
                r.pupil_id, r.status, bool(r.pupil_objects), r.version
            )
        return out

    def _enrolled_pupils(self, conn: Connection, school_id: str) -> dict[str, int]:
        rows = conn.execute(
            sa.select(face_encodings.c.pupil_id, sa.func.count())
            .where(face_encodings.c.school_slug == school_id)
            .group_by(face_encodings.c.pupil_id)
        )
        return {r[0]: int(r[1]) for r in rows}

    # The grid: who may appear where, at a glance.

    def grid(self, school_id: str, class_name: str | None) -> list[dict[str, Any]]:
        roll = self.pupils(school_id, class_name=class_name)
        ids = [p.pupil_id for p in roll]
        with self.engine.connect() as conn:
            standings = self._standings(conn, school_id, ids) if ids else {}
            bio = self._biometric(conn, school_id, ids) if ids else {}
            enrolled = self._enrolled_pupils(conn, school_id)
        return [
            {
                "pupil": p,
                "standing": standings.get(p.pupil_id, Standing(p.pupil_id)),
                "biometric": bio.get(p.pupil_id),
                "enrolled": enrolled.get(p.pupil_id, 0),
            }
            for p in roll
        ]

    # Outbox and the expiry sweep.

    def pending(self, limit: int = 500) -> list[contracts.Envelope]:
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

    def sweep_expired(self, today: date) -> int:
        """ConsentChanged(expired) once for every consent version in force whose
        expiry has passed; the number newly announced."""
        r, n = consent_records.alias("r"), consent_records.alias("n")
        newer = (
            sa.select(n.c.id)
            .where(
                n.c.school_slug == r.c.school_slug,
                n.c.pupil_id == r.c.pupil_id,
                n.c.purpose == r.c.purpose,
                sa.func.coalesce(n.c.platform, "")
                == sa.func.coalesce(r.c.platform, ""),
                n.c.version > r.c.version,
            )
            .exists()
        )
        stmt = sa.select(r).where(
            r.c.status == "granted", r.c.expires_on < today, ~newer
        )
        count = 0
        with self.engine.begin() as conn:
            for row in conn.execute(stmt).all():
                record = _consent(row)
                event = changes.expired(
                    row.school_slug, record, take_down=self.take_down_on_expiry
                )
                envelope = changes.seal(event, key=("expired", str(record.record_id)))
                if conn.execute(
                    sa.select(outbox.c.envelope_id).where(
                        outbox.c.envelope_id == envelope.id
                    )
                ).first():
                    continue
                conn.execute(outbox.insert().values(**self._outbox_row(envelope)))
                count += 1
        return count

    # Helpers.

    def _emit(
        self,
        conn: Connection,
        event: contracts.ConsentChanged,
        actor: str | None = None,
    ) -> None:
        envelope = changes.seal(event, actor=actor)
        conn.execute(outbox.insert().values(**self._outbox_row(envelope)))

    def _emit_standing(
        self,
        conn: Connection,
        school_id: str,
        pupil_id: str,
        cause: str,
        today: date,
        actor: str | None = None,
        take_down: bool = True,
    ) -> None:
        if cause == "restricted":
            self._emit(
                conn,
                changes.restricted(school_id, pupil_id, today, take_down),
                actor,
            )
            return
        standing = self._standings(conn, school_id, [pupil_id]).get(pupil_id)
        records = list(standing.consents.values()) if standing else []
        self._emit(
            conn,
            changes.consent_changed(school_id, pupil_id, records, today, cause=cause),
            actor,
        )

    def _outbox_row(self, envelope: contracts.Envelope) -> dict[str, Any]:
        return outbox_row(envelope, self.now())

    def _bump(
        self,
        conn: Connection,
        school_id: str,
        gallery: bool = False,
        roll: bool = False,
    ) -> None:
        values: dict[str, Any] = {}
        if gallery:
            values["gallery_version"] = schools.c.gallery_version + 1
        if roll:
            values["roll_version"] = schools.c.roll_version + 1
        conn.execute(schools.update().where(schools.c.slug == school_id).values(values))

    def _need_school(self, conn: Connection, school_id: str) -> None:
        if not conn.execute(
            sa.select(schools.c.slug).where(schools.c.slug == school_id)
        ).first():
            raise NotFoundError(f"no school {school_id}")

    def _pupil_row(
        self, conn: Connection, school_id: str, pupil_id: str, lock: bool = False
    ) -> Any:
        stmt = sa.select(pupils).where(
            pupils.c.school_slug == school_id, pupils.c.pupil_id == pupil_id
        )
        if lock:
            stmt = stmt.with_for_update()
        return conn.execute(stmt).first()


@dataclass(frozen=True)
class _Gallery:
    version: int
    matrix: np.ndarray  # rows of 128-d encodings (float32), grouped by pupil
    squares: np.ndarray  # squared norm of each row
    owners: np.ndarray  # row -> index into pupil_ids
    starts: np.ndarray  # pupil index -> first row; rows of a pupil are contiguous
    ends: np.ndarray
    pupil_ids: tuple[str, ...]


class SqlFaceGallery:
    """The enrolled encodings of each school as one in-memory matrix.

    Loaded per school and reloaded whenever the school's ``gallery_version`` has moved
    (one small query per photo), so a deletion in any process is seen by the next
    decision in every process.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self._cache: dict[str, _Gallery] = {}

    def nearest(
        self, school_id: str, encodings: Mapping[int, Sequence[float]]
    ) -> dict[int, domain.Nearest]:
        return nearest(self._gallery(school_id), encodings)

    def _gallery(self, school_id: str) -> _Gallery:
        with self.engine.connect() as conn:
            version = conn.execute(
                sa.select(schools.c.gallery_version).where(schools.c.slug == school_id)
            ).scalar()
            if version is None:
                return _EMPTY
            cached = self._cache.get(school_id)
            if cached is not None and cached.version == version:
                return cached
            rows = conn.execute(
                sa.select(face_encodings.c.pupil_id, face_encodings.c.encoding)
                .join(
                    pupils,
                    sa.and_(
                        pupils.c.school_slug == face_encodings.c.school_slug,
                        pupils.c.pupil_id == face_encodings.c.pupil_id,
                    ),
                )
                .where(face_encodings.c.school_slug == school_id, pupils.c.on_roll)
                .order_by(face_encodings.c.pupil_id, face_encodings.c.id)
            ).all()
        gallery = build_gallery(
            version, [(r.pupil_id, np.frombuffer(r.encoding, "<f8")) for r in rows]
        )
        self._cache[school_id] = gallery
        return gallery


def build_gallery(version: int, rows: Sequence[tuple[str, np.ndarray]]) -> _Gallery:
    """A gallery from (pupil id, encoding) rows, grouped by pupil id."""
    rows = sorted(rows, key=lambda r: r[0])
    ids = tuple(dict.fromkeys(p for p, _ in rows))
    position = {p: i for i, p in enumerate(ids)}
    matrix = (
        np.ascontiguousarray(np.vstack([e for _, e in rows]), dtype=np.float32)
        if rows
        else np.zeros((0, ENCODING_DIMS), dtype=np.float32)
    )
    owners = np.array([position[p] for p, _ in rows], dtype=np.int64)
    starts = np.searchsorted(owners, np.arange(len(ids)), side="left")
    ends = np.searchsorted(owners, np.arange(len(ids)), side="right")
    squares = (matrix.astype(np.float64) ** 2).sum(axis=1).astype(np.float32)
    return _Gallery(version, matrix, squares, owners, starts, ends, ids)


_EMPTY = build_gallery(-1, [])


def nearest(
    gallery: _Gallery, encodings: Mapping[int, Sequence[float]]
) -> dict[int, domain.Nearest]:
    """For each face: the closest pupil (over all their encodings) and the distance
    to the closest *other* pupil. One float32 matrix product for all faces finds the
    candidates; the two distances reported are recomputed exactly (float64)."""
    out = {i: domain.Nearest(None) for i in encodings}  # malformed or none: nobody
    faces = [
        i
        for i, e in encodings.items()
        if len(e) == ENCODING_DIMS and bool(np.isfinite(np.asarray(e, float)).all())
    ]
    if not faces or gallery.matrix.shape[0] == 0:
        return out
    probe = np.asarray([encodings[i] for i in faces], dtype=np.float64)
    squared = (
        gallery.squares[None, :]
        + (probe.astype(np.float32) ** 2).sum(axis=1)[:, None]
        - 2.0 * (probe.astype(np.float32) @ gallery.matrix.T)
    )
    best_rows = squared.argmin(axis=1)
    for k, face in enumerate(faces):
        row = int(best_rows[k])
        owner = int(gallery.owners[row])
        rest = squared[k].copy()
        rest[gallery.starts[owner] : gallery.ends[owner]] = np.inf
        second_row = int(rest.argmin())
        second = (
            _distance(probe[k], gallery.matrix[second_row])
            if np.isfinite(rest[second_row])
            else float("inf")
        )
        own = gallery.matrix[gallery.starts[owner] : gallery.ends[owner]]
        best = min(_distance(probe[k], e) for e in own)
        out[face] = domain.Nearest(gallery.pupil_ids[owner], best, second)
    return out


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b.astype(np.float64)))


# Enrolment: reference photo -> encoding (the photo is never stored).

MAX_REFERENCE_PIXELS = 40_000_000


class EnrolmentError(InvalidInputError):
    code = "bad_reference_photo"


class FaceRecognitionEnroller:
    """One 128-d face_recognition encoding per reference photo (exactly one face)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._api: Any = None

    def _module(self) -> Any:
        with self._lock:
            if self._api is None:
                self._api = _import_face_recognition()
            return self._api

    def encode(self, photo: bytes, name: str = "photo") -> list[float]:
        rgb = _decode_reference(photo, name)
        api = self._module()
        with self._lock:
            locations = api.face_locations(rgb, number_of_times_to_upsample=1)
            if not locations:
                locations = api.face_locations(rgb, number_of_times_to_upsample=2)
            if len(locations) != 1:
                found = "no face" if not locations else f"{len(locations)} faces"
                raise EnrolmentError(
                    f"{name}: {found} found; a reference photo must show exactly one"
                )
            [encoding] = api.face_encodings(rgb, known_face_locations=locations)
        return [float(x) for x in encoding]


def _decode_reference(photo: bytes, name: str) -> np.ndarray:
    from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

    ImageFile.LOAD_TRUNCATED_IMAGES = False  # face_recognition turns it on; refuse
    try:
        with Image.open(io.BytesIO(photo)) as img:
            if img.width * img.height > MAX_REFERENCE_PIXELS:
                raise EnrolmentError(f"{name}: the image is too large")
            img.load()
            upright = ImageOps.exif_transpose(img).convert("RGB")
            return np.asarray(upright, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, EnrolmentError):
            raise
        raise EnrolmentError(f"{name}: not a readable image") from None
    except Image.DecompressionBombError:
        raise EnrolmentError(f"{name}: the image is too large") from None


def _import_face_recognition() -> Any:
    from PIL import ImageFile

    # face_recognition calls quit() when its models are missing: look first.
    if importlib.util.find_spec("face_recognition_models") is None:
        raise EnrolmentError("face recognition is not installed here", status=503)
    try:
        import face_recognition
    except ImportError:
        raise EnrolmentError(
            "face recognition is not installed here", status=503
        ) from None
    finally:
        # face_recognition sets this on import; never rely on it.
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    return face_recognition


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


class SqlTargetAccounts:
    """Consent's copy of publishing's accounts (TargetAccounts port)."""

    def __init__(self, engine: Engine, now: Callable[[], datetime] = utcnow):
        self.engine = engine
        self.now = now

    def record(self, account: TargetAccount) -> None:
        values = {
            "school_slug": account.school_id,
            "platform": account.platform,
            "purpose": account.purpose,
            "consent_platform": account.consent_platform,
            "status": account.status,
            "updated_at": self.now(),
        }
        key = target_accounts.c.account_id == account.account_id
        with self.engine.begin() as conn:
            if conn.execute(
                target_accounts.update().where(key).values(**values)
            ).rowcount:
                return
            try:
                with conn.begin_nested():
                    conn.execute(
                        target_accounts.insert().values(
                            account_id=account.account_id, **values
                        )
                    )
            except IntegrityError:  # inserted concurrently: ours is as new
                conn.execute(target_accounts.update().where(key).values(**values))

    def scopes(self, school_id: str, account_ids: Sequence[str]) -> dict[str, Scope]:
        if not account_ids:
            return {}
        query = sa.select(
            target_accounts.c.account_id,
            target_accounts.c.purpose,
            target_accounts.c.consent_platform,
        ).where(
            target_accounts.c.school_slug == school_id,
            target_accounts.c.account_id.in_(sorted(set(account_ids))),
        )
        with self.engine.connect() as conn:
            return {
                r.account_id: (r.purpose, r.consent_platform)
                for r in conn.execute(query)
            }
