"""Ports the consent handlers and views need."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from services.consent.domain import PhotoConsent, Pupil, School


class FaceGallery(Protocol):
    def identify(
        self, school_id: str, encodings: Mapping[int, Sequence[float]]
    ) -> dict[int, str | None]:
        """The enrolled pupil each face encoding matches, or None (unknown)."""


class ConsentRegister(Protocol):
    def find(
        self, school_id: str, pupil_ids: Iterable[str], purpose: str
    ) -> dict[str, PhotoConsent]:
        """The current purpose-wide consent of each pupil that has one."""

    def history(self, school_id: str, pupil_id: str) -> list[dict[str, Any]]:
        """Every consent record version of one pupil, oldest first."""


class SchoolDirectory(Protocol):
    def add_school(self, school: School) -> bool:
        """Create the school; False if the slug already exists (nothing changes)."""

    def schools(self) -> list[School]:
        """Every school, by slug."""


class PupilRoll(Protocol):
    def add_pupil(self, pupil: Pupil) -> None:
        """Add a pupil; ConflictError if (school, pupil_id) exists; NotFoundError if
        the school does not."""

    def pupils(self, school_slug: str) -> list[Pupil]:
        """The school's pupils by surname, forename."""
