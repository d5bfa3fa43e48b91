"""Schools and pupils (the roll)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from services.consent.adapters.tables import (
    bump,
    insert_new,
    pupil_of,
    pupils,
    school_of,
    schools,
    version_of,
)
from services.consent.domain import Pupil, School
from services.consent.names import NameIndex
from shared.db import Repository, utcnow
from shared.errors import ConflictError


class SqlSchools(Repository):
    def __init__(self, bind: Engine | Connection, now: Callable[[], datetime] = utcnow):
        super().__init__(bind)
        self.now = now

    def add(self, school: School) -> bool:
        values = {
            "slug": school.slug,
            "name": school.name,
            "created_at": self.now(),
            "expiry_month": school.expiry_month,
            "expiry_day": school.expiry_day,
        }
        with self._begin() as conn:
            return insert_new(conn, schools, values)

    def get(self, slug: str) -> School | None:
        with self._begin() as conn:
            row = conn.execute(sa.select(schools).where(schools.c.slug == slug)).first()
        return None if row is None else school_of(row)

    def all(self) -> list[School]:
        with self._begin() as conn:
            rows = conn.execute(sa.select(schools).order_by(schools.c.slug))
            return [school_of(r) for r in rows]


class SqlPupils(Repository):
    """A school's pupils; their names for OCR matching are cached per roll version
    when on the engine (the read side)."""

    def __init__(self, bind: Engine | Connection):
        super().__init__(bind)
        self._names: dict[str, tuple[int | None, NameIndex]] = {}

    def add(self, pupil: Pupil) -> None:
        with self._begin() as conn:
            if self._row(conn, pupil.school_slug, pupil.pupil_id):
                raise _exists(pupil.pupil_id)
            try:
                conn.execute(pupils.insert().values(**vars(pupil)))
            except IntegrityError:  # added by someone else in the meantime
                raise _exists(pupil.pupil_id) from None
            bump(conn, pupil.school_slug, roll=True)

    def add_many(self, school_id: str, new: Sequence[Pupil]) -> None:
        if not new:
            return
        with self._begin() as conn:
            conn.execute(pupils.insert(), [vars(p) for p in new])
            bump(conn, school_id, roll=True)

    def get(self, school_id: str, pupil_id: str, *, lock: bool = False) -> Pupil | None:
        """The pupil (``lock``: held until the transaction ends)."""
        with self._begin() as conn:
            row = self._row(conn, school_id, pupil_id, lock)
        return None if row is None else pupil_of(row)

    def save(self, pupil: Pupil) -> None:
        with self._begin() as conn:
            conn.execute(
                pupils.update()
                .where(
                    pupils.c.school_slug == pupil.school_slug,
                    pupils.c.pupil_id == pupil.pupil_id,
                )
                .values(**vars(pupil))
            )
            bump(conn, pupil.school_slug, roll=True)

    def save_many(self, school_id: str, changed: Sequence[Pupil]) -> None:
        if not changed:
            return
        with self._begin() as conn:
            for pupil in changed:
                conn.execute(
                    pupils.update()
                    .where(
                        pupils.c.school_slug == school_id,
                        pupils.c.pupil_id == pupil.pupil_id,
                    )
                    .values(**vars(pupil))
                )
            bump(conn, school_id, roll=True)

    def of_school(self, school_id: str) -> dict[str, Pupil]:
        with self._begin() as conn:
            rows = conn.execute(
                sa.select(pupils)
                .where(pupils.c.school_slug == school_id)
                .order_by(pupils.c.pupil_id)
            )
            return {r.pupil_id: pupil_of(r) for r in rows}

    def search(
        self, school_id: str, query: str = "", class_name: str | None = None
    ) -> list[Pupil]:
        stmt = sa.select(pupils).where(pupils.c.school_slug == school_id)
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
        with self._begin() as conn:
            return [pupil_of(r) for r in conn.execute(stmt)]

    def classes(self, school_id: str) -> list[str]:
        stmt = (
            sa.select(pupils.c.class_name)
            .where(pupils.c.school_slug == school_id)
            .distinct()
            .order_by(pupils.c.class_name)
        )
        with self._begin() as conn:
            return [r.class_name for r in conn.execute(stmt)]

    def name_index(self, school_slug: str) -> NameIndex:
        """The school's pupil names for text matching (cached per roll version)."""
        with self._begin() as conn:
            version = version_of(conn, school_slug, schools.c.roll_version)
            cached = self._names.get(school_slug)
            if cached is not None and cached[0] == version:
                return cached[1]
            rows = conn.execute(
                sa.select(pupils.c.surname).where(pupils.c.school_slug == school_slug)
            )
            index = NameIndex.of(Pupil(school_slug, "", "", r.surname) for r in rows)
        if isinstance(self.bind, Engine):  # never cache what a transaction saw
            self._names[school_slug] = (version, index)
        return index

    @staticmethod
    def _row(
        conn: Connection, school_id: str, pupil_id: str, lock: bool = False
    ) -> sa.Row[tuple[object, ...]] | None:
        stmt = sa.select(pupils).where(
            pupils.c.school_slug == school_id, pupils.c.pupil_id == pupil_id
        )
        if lock:
            stmt = stmt.with_for_update()
        return conn.execute(stmt).first()


def _exists(pupil_id: str) -> ConflictError:
    return ConflictError(f"pupil {pupil_id} already exists", code="pupil_exists")
