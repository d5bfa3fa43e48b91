"""Consent's ports: the repositories its use cases change through a unit of work, the
read side the handlers, pages and CLI read, and the enrolment encoder."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Protocol

from services.consent.domain import (
    BiometricConsent,
    ConsentRecord,
    GridRow,
    Nearest,
    NeverPublish,
    Pupil,
    School,
    Scope,
    Standing,
    TargetAccount,
)
from services.consent.names import NameIndex
from shared.uow import UnitOfWork

# What the handlers read (the read side: cached per school, reloaded on a change).


class FaceGallery(Protocol):
    def nearest(
        self, school_id: str, encodings: Mapping[int, Sequence[float]]
    ) -> dict[int, Nearest]:
        """For each face: the closest enrolled pupil of the school and how close the
        next-closest pupil is (Nearest(None) when nobody is enrolled)."""


class ConsentRegister(Protocol):
    def standings(
        self, school_id: str, pupil_ids: Iterable[str]
    ) -> dict[str, Standing]:
        """Roll status, never-publish flag and the newest consent version of every
        scope, for each of these pupils that exists in the school."""


class PupilNames(Protocol):
    def name_index(self, school_slug: str) -> NameIndex:
        """The school's pupil names, normalised for matching OCR text."""


class TargetAccounts(Protocol):
    def record(self, account: TargetAccount) -> None:
        """Keep what publishing said of one account (the newest word wins)."""

    def scopes(self, school_id: str, account_ids: Sequence[str]) -> dict[str, Scope]:
        """The consent scope of each of these accounts that belongs to the school
        (accounts unknown, or of another school, are missing from the answer)."""


# The repositories a unit of work holds.


class Schools(Protocol):
    def add(self, school: School) -> bool:
        """Add the school unless it exists; True if it was added."""

    def get(self, slug: str) -> School | None: ...

    def all(self) -> list[School]: ...


class Pupils(Protocol):
    def add(self, pupil: Pupil) -> None:
        """ConflictError (``pupil_exists``) if the school has this pupil id."""

    def add_many(self, school_id: str, new: Sequence[Pupil]) -> None: ...

    def get(self, school_id: str, pupil_id: str, *, lock: bool = False) -> Pupil | None:
        """The pupil (``lock``: held until the transaction ends)."""

    def save(self, pupil: Pupil) -> None: ...

    def save_many(self, school_id: str, changed: Sequence[Pupil]) -> None: ...

    def of_school(self, school_id: str) -> dict[str, Pupil]: ...


class Consents(ConsentRegister, Protocol):
    def add(self, school_id: str, record: ConsentRecord) -> ConsentRecord:
        """Store the next version of the record's scope; returned with its id,
        version and time."""

    def add_many(
        self, school_id: str, records: Sequence[ConsentRecord]
    ) -> list[ConsentRecord]:
        """Store records already numbered (an import); returned with their ids."""

    def history(self, school_id: str, pupil_id: str) -> list[ConsentRecord]: ...

    def current_wide(self, school_id: str) -> dict[tuple[str, str], ConsentRecord]:
        """(pupil, purpose) -> the newest purpose-wide record."""

    def expired_in_force(self, today: date) -> list[tuple[str, ConsentRecord]]:
        """(school, record) of each granted version in force that has expired."""


class NeverPublishFlags(Protocol):
    def current(self, school_id: str, pupil_id: str) -> NeverPublish | None: ...

    def add(
        self, school_id: str, pupil_id: str, flag: NeverPublish, by: str
    ) -> NeverPublish:
        """Store the flag's next version; returned with its version."""

    def history(self, school_id: str, pupil_id: str) -> list[NeverPublish]: ...


class Biometrics(Protocol):
    def current(self, school_id: str, pupil_id: str) -> BiometricConsent | None: ...

    def of_school(self, school_id: str) -> dict[str, BiometricConsent]: ...

    def add(
        self, school_id: str, consent: BiometricConsent, by: str, **details: str
    ) -> None:
        """Store the next version (details: given_by, relationship, method,
        evidence_ref)."""

    def add_many(
        self, school_id: str, consents: Sequence[BiometricConsent], by: str, method: str
    ) -> None:
        """Store versions already numbered (an import)."""


class Enrolments(Protocol):
    def add(
        self,
        school_id: str,
        pupil_id: str,
        encodings: Sequence[Sequence[float]],
        by: str,
    ) -> None: ...

    def count(self, school_id: str, pupil_id: str) -> int: ...

    def counts(self, school_id: str) -> dict[str, int]:
        """Pupil -> number of encodings, for the school's enrolled pupils."""

    def forget(self, school_id: str, pupil_id: str) -> int:
        """Delete the pupil's encodings; the number deleted."""


class OutboxLog(Protocol):
    def recorded(self, envelope_ids: Iterable[str]) -> set[str]:
        """Those of these envelope ids already in the outbox."""


class Unit(UnitOfWork, Protocol):
    """Consent's unit of work: its repositories on one transaction."""

    @property
    def schools(self) -> Schools: ...

    @property
    def pupils(self) -> Pupils: ...

    @property
    def consents(self) -> Consents: ...

    @property
    def never_publish(self) -> NeverPublishFlags: ...

    @property
    def biometrics(self) -> Biometrics: ...

    @property
    def enrolments(self) -> Enrolments: ...

    @property
    def accounts(self) -> TargetAccounts: ...

    @property
    def outbox(self) -> OutboxLog: ...


# The read side of the pages, the API's answers and the CLI.


class ConsentViews(Protocol):
    def schools(self) -> list[School]: ...

    def school(self, slug: str) -> School:
        """NotFoundError if there is no such school."""

    def pupils(
        self, school_id: str, query: str = "", class_name: str | None = None
    ) -> list[Pupil]:
        """Pupils whose names, id or class contain ``query``, by name."""

    def pupil(self, school_id: str, pupil_id: str) -> Pupil:
        """NotFoundError if the school has no such pupil."""

    def classes(self, school_id: str) -> list[str]: ...

    def standing(self, school_id: str, pupil_id: str) -> Standing | None: ...

    def history(self, school_id: str, pupil_id: str) -> list[ConsentRecord]: ...

    def never_publish_history(
        self, school_id: str, pupil_id: str
    ) -> list[NeverPublish]: ...

    def biometric(self, school_id: str, pupil_id: str) -> BiometricConsent | None: ...

    def enrolled(self, school_id: str, pupil_id: str) -> int: ...

    def grid(self, school_id: str, class_name: str | None) -> list[GridRow]: ...

    def export_rows(self, school_id: str) -> list[list[str]]:
        """The school's pupils and consents as rows of the CSV export."""


class Enroller(Protocol):
    def encode(self, photo: bytes, name: str = "photo") -> list[float]:
        """The face encoding of a reference photo showing exactly one face."""
