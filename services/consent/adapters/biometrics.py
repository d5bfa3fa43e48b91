"""Biometric consent (every version kept) and enrolled face encodings.

Face encodings are the only biometric data consent keeps; every write or deletion
moves the school's ``gallery_version`` in its transaction, so every process's gallery
reloads before its next decision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.consent.adapters.tables import (
    biometric_consents,
    biometric_of,
    bump,
    face_encodings,
)
from services.consent.domain import BiometricConsent
from shared.db import Repository, utcnow

logger = logging.getLogger(__name__)


class SqlBiometrics(Repository):
    """Biometric consent (Protection of Freedoms Act 2012 ss.26-28)."""

    def __init__(self, bind: Engine | Connection, now: Callable[[], datetime] = utcnow):
        super().__init__(bind)
        self.now = now

    def current(self, school_id: str, pupil_id: str) -> BiometricConsent | None:
        return self._of(school_id, [pupil_id]).get(pupil_id)

    def of_school(self, school_id: str) -> dict[str, BiometricConsent]:
        return self._of(school_id, None)

    def of_pupils(
        self, school_id: str, pupil_ids: Sequence[str]
    ) -> dict[str, BiometricConsent]:
        return self._of(school_id, pupil_ids) if pupil_ids else {}

    def add(
        self, school_id: str, consent: BiometricConsent, by: str, **details: str
    ) -> None:
        """The next version (``details``: given_by, relationship, method,
        evidence_ref)."""
        with self._begin() as conn:
            current = _of(conn, school_id, [consent.pupil_id]).get(consent.pupil_id)
            version = (current.version if current else 0) + 1
            conn.execute(
                biometric_consents.insert().values(
                    **_row(school_id, consent, version, by, self.now()), **details
                )
            )

    def add_many(
        self, school_id: str, consents: Sequence[BiometricConsent], by: str, method: str
    ) -> None:
        """Versions already numbered (an import), in one go."""
        if not consents:
            return
        at = self.now()
        rows = [
            {**_row(school_id, c, c.version, by, at), "method": method}
            for c in consents
        ]
        with self._begin() as conn:
            conn.execute(biometric_consents.insert(), rows)

    def _of(
        self, school_id: str, pupil_ids: Sequence[str] | None
    ) -> dict[str, BiometricConsent]:
        with self._begin() as conn:
            return _of(conn, school_id, pupil_ids)


class SqlEnrolments(Repository):
    """Enrolled face encodings (128 float64, little-endian)."""

    def __init__(self, bind: Engine | Connection, now: Callable[[], datetime] = utcnow):
        super().__init__(bind)
        self.now = now

    def add(
        self,
        school_id: str,
        pupil_id: str,
        encodings: Sequence[Sequence[float]],
        by: str,
    ) -> None:
        if not encodings:
            return
        at = self.now()
        rows = [
            {
                "school_slug": school_id,
                "pupil_id": pupil_id,
                "encoding": np.asarray(e, dtype="<f8").tobytes(),
                "enrolled_by": by,
                "enrolled_at": at,
            }
            for e in encodings
        ]
        with self._begin() as conn:
            conn.execute(face_encodings.insert(), rows)
            bump(conn, school_id, gallery=True)

    def count(self, school_id: str, pupil_id: str) -> int:
        with self._begin() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(
                        face_encodings.c.school_slug == school_id,
                        face_encodings.c.pupil_id == pupil_id,
                    )
                ).scalar_one()
            )

    def counts(self, school_id: str) -> dict[str, int]:
        """Pupil -> number of encodings, for the school's enrolled pupils."""
        with self._begin() as conn:
            rows = conn.execute(
                sa.select(face_encodings.c.pupil_id, sa.func.count())
                .where(face_encodings.c.school_slug == school_id)
                .group_by(face_encodings.c.pupil_id)
            )
            return {r[0]: int(r[1]) for r in rows}

    def forget(self, school_id: str, pupil_id: str) -> int:
        """Delete a pupil's encodings; the number deleted."""
        with self._begin() as conn:
            deleted = conn.execute(
                face_encodings.delete().where(
                    face_encodings.c.school_slug == school_id,
                    face_encodings.c.pupil_id == pupil_id,
                )
            ).rowcount
            if deleted:
                bump(conn, school_id, gallery=True)
        if deleted:
            logger.info("deleted %d face encoding(s) of a pupil", deleted)
        return int(deleted or 0)


def _of(
    conn: Connection, school_id: str, pupil_ids: Sequence[str] | None
) -> dict[str, BiometricConsent]:
    query = sa.select(biometric_consents).where(
        biometric_consents.c.school_slug == school_id
    )
    if pupil_ids is not None:
        query = query.where(biometric_consents.c.pupil_id.in_(list(pupil_ids)))
    rows = conn.execute(query.order_by(biometric_consents.c.version))
    return {r.pupil_id: biometric_of(r) for r in rows}


def _row(
    school_id: str, consent: BiometricConsent, version: int, by: str, at: datetime
) -> dict[str, Any]:
    return {
        "school_slug": school_id,
        "pupil_id": consent.pupil_id,
        "status": consent.status,
        "pupil_objects": consent.pupil_objects,
        "recorded_by": by,
        "recorded_at": at,
        "version": version,
    }
