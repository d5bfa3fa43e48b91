"""The read side: what the pages, the API's answers and the CLI show (on the engine,
each query its own transaction; the standings and names cached per roll version)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from services.consent import importing
from services.consent.adapters.biometrics import SqlBiometrics, SqlEnrolments
from services.consent.adapters.consents import SqlConsents, SqlNeverPublish
from services.consent.adapters.roll import SqlPupils, SqlSchools
from services.consent.domain import (
    PURPOSES,
    BiometricConsent,
    ConsentRecord,
    GridRow,
    NeverPublish,
    Pupil,
    School,
    Standing,
)
from shared.errors import NotFoundError


class SqlConsentViews:
    def __init__(
        self,
        engine: Engine,
        consents: SqlConsents | None = None,
        pupils: SqlPupils | None = None,
    ):
        self.engine = engine
        self._schools = SqlSchools(engine)
        self._pupils = pupils or SqlPupils(engine)
        self._consents = consents or SqlConsents(engine)
        self._flags = SqlNeverPublish(engine)
        self._biometrics = SqlBiometrics(engine)
        self._enrolments = SqlEnrolments(engine)

    def schools(self) -> list[School]:
        return self._schools.all()

    def school(self, slug: str) -> School:
        school = self._schools.get(slug)
        if school is None:
            raise NotFoundError(f"no school {slug}")
        return school

    def pupils(
        self, school_id: str, query: str = "", class_name: str | None = None
    ) -> list[Pupil]:
        return self._pupils.search(school_id, query, class_name)

    def pupil(self, school_id: str, pupil_id: str) -> Pupil:
        pupil = self._pupils.get(school_id, pupil_id)
        if pupil is None:
            raise NotFoundError(f"no pupil {pupil_id} in {school_id}")
        return pupil

    def classes(self, school_id: str) -> list[str]:
        return self._pupils.classes(school_id)

    def standing(self, school_id: str, pupil_id: str) -> Standing | None:
        return self._consents.standings(school_id, [pupil_id]).get(pupil_id)

    def history(self, school_id: str, pupil_id: str) -> list[ConsentRecord]:
        return self._consents.history(school_id, pupil_id)

    def never_publish_history(
        self, school_id: str, pupil_id: str
    ) -> list[NeverPublish]:
        return self._flags.history(school_id, pupil_id)

    def biometric(self, school_id: str, pupil_id: str) -> BiometricConsent | None:
        return self._biometrics.current(school_id, pupil_id)

    def enrolled(self, school_id: str, pupil_id: str) -> int:
        return self._enrolments.count(school_id, pupil_id)

    def grid(self, school_id: str, class_name: str | None) -> list[GridRow]:
        roll = self._pupils.search(school_id, class_name=class_name)
        ids = [p.pupil_id for p in roll]
        standings = self._consents.standings(school_id, ids)
        bio = self._biometrics.of_pupils(school_id, ids)
        enrolled = self._enrolments.counts(school_id) if ids else {}
        return [
            GridRow(
                p,
                standings.get(p.pupil_id, Standing(p.pupil_id)),
                bio.get(p.pupil_id),
                enrolled.get(p.pupil_id, 0),
            )
            for p in roll
        ]

    def export_rows(self, school_id: str) -> list[list[str]]:
        """The school's pupils and consents as the CSV export's rows."""
        self.school(school_id)
        current = self._consents.current_wide(school_id)
        bio = self._biometrics.of_school(school_id)
        roll = self._pupils.of_school(school_id).values()  # by pupil id
        return [
            importing.export_row(
                p,
                [current.get((p.pupil_id, purpose)) for purpose in PURPOSES],
                bio.get(p.pupil_id),
            )
            for p in roll
        ]
