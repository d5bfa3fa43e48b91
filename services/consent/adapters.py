"""SQL implementations of consent's ports (SQLAlchemy Core)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from services.consent.domain import PhotoConsent, Pupil, School
from shared.db import UtcDateTime, utcnow
from shared.errors import ConflictError, NotFoundError

metadata = sa.MetaData()

schools = sa.Table(
    "schools",
    metadata,
    sa.Column("slug", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
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


class SqlConsentStore:
    """Schools, pupils and consent records; implements SchoolDirectory, PupilRoll and
    ConsentRegister."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def add_school(self, school: School) -> bool:
        with self.engine.begin() as conn:
            if conn.execute(
                sa.select(schools.c.slug).where(schools.c.slug == school.slug)
            ).first():
                return False
            try:
                conn.execute(
                    schools.insert().values(
                        slug=school.slug, name=school.name, created_at=utcnow()
                    )
                )
            except IntegrityError:
                return False
        return True

    def schools(self) -> list[School]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(schools).order_by(schools.c.slug))
            return [School(r.slug, r.name) for r in rows]

    def add_pupil(self, pupil: Pupil) -> None:
        with self.engine.begin() as conn:
            if not conn.execute(
                sa.select(schools.c.slug).where(schools.c.slug == pupil.school_slug)
            ).first():
                raise NotFoundError(f"no school {pupil.school_slug}")
            taken = conn.execute(
                sa.select(pupils.c.pupil_id).where(
                    pupils.c.school_slug == pupil.school_slug,
                    pupils.c.pupil_id == pupil.pupil_id,
                )
            ).first()
            if taken:
                raise ConflictError(
                    f"pupil {pupil.pupil_id} already exists", code="pupil_exists"
                )
            try:
                conn.execute(pupils.insert().values(**vars(pupil)))
            except IntegrityError:  # added by someone else in the meantime
                raise ConflictError(
                    f"pupil {pupil.pupil_id} already exists", code="pupil_exists"
                ) from None

    def pupils(self, school_slug: str) -> list[Pupil]:
        cols = [pupils.c[name] for name in Pupil.__dataclass_fields__]
        query = (
            sa.select(*cols)
            .where(pupils.c.school_slug == school_slug)
            .order_by(pupils.c.surname, pupils.c.forename, pupils.c.pupil_id)
        )
        with self.engine.connect() as conn:
            return [Pupil(**r._mapping) for r in conn.execute(query)]

    def find(
        self, school_id: str, pupil_ids: Iterable[str], purpose: str
    ) -> dict[str, PhotoConsent]:
        wanted = sorted(set(pupil_ids))
        if not wanted:
            return {}
        query = (
            sa.select(consent_records)
            .where(
                consent_records.c.school_slug == school_id,
                consent_records.c.pupil_id.in_(wanted),
                consent_records.c.purpose == purpose,
                consent_records.c.platform.is_(None),
            )
            .order_by(consent_records.c.version)
        )
        latest: dict[str, Any] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                latest[row.pupil_id] = row  # later versions replace earlier ones
        return {
            p: PhotoConsent(
                p,
                granted=r.status == "granted",
                expires_on=r.expires_on,
                version_ref=f"{r.id}:v{r.version}",
            )
            for p, r in latest.items()
        }

    def history(self, school_id: str, pupil_id: str) -> list[dict[str, Any]]:
        query = (
            sa.select(consent_records)
            .where(
                consent_records.c.school_slug == school_id,
                consent_records.c.pupil_id == pupil_id,
            )
            .order_by(
                consent_records.c.purpose,
                consent_records.c.platform,
                consent_records.c.version,
            )
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


class NoMatchGallery:
    """No pupil is enrolled yet: every face is unknown (identification comes later)."""

    def identify(
        self, school_id: str, encodings: Mapping[int, Sequence[float]]
    ) -> dict[int, str | None]:
        return {index: None for index in encodings}
