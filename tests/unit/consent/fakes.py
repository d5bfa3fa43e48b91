"""Small working fakes of consent's ports."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from services.consent.bootstrap import Ports
from services.consent.domain import PhotoConsent, Pupil, School
from shared.errors import ConflictError, NotFoundError


class InMemoryFaceGallery:
    """Matches an encoding whose first value is a known key."""

    def __init__(self, known: Mapping[float, str] | None = None):
        self.known = dict(known or {})
        self.asked: list[dict[int, Sequence[float]]] = []

    def identify(
        self, school_id: str, encodings: Mapping[int, Sequence[float]]
    ) -> dict[int, str | None]:
        self.asked.append(dict(encodings))
        return {i: self.known.get(e[0]) for i, e in encodings.items()}


class InMemoryConsentStore:
    def __init__(self, *consents: PhotoConsent):
        self.consents = {c.pupil_id: c for c in consents}
        self.school_list: dict[str, School] = {}
        self.roll: dict[tuple[str, str], Pupil] = {}

    def find(
        self, school_id: str, pupil_ids: Iterable[str], purpose: str
    ) -> dict[str, PhotoConsent]:
        return {p: self.consents[p] for p in pupil_ids if p in self.consents}

    def history(self, school_id: str, pupil_id: str) -> list[dict[str, Any]]:
        return []

    def add_school(self, school: School) -> bool:
        if school.slug in self.school_list:
            return False
        self.school_list[school.slug] = school
        return True

    def schools(self) -> list[School]:
        return sorted(self.school_list.values(), key=lambda s: s.slug)

    def add_pupil(self, pupil: Pupil) -> None:
        if pupil.school_slug not in self.school_list:
            raise NotFoundError(f"no school {pupil.school_slug}")
        key = (pupil.school_slug, pupil.pupil_id)
        if key in self.roll:
            raise ConflictError("exists", code="pupil_exists")
        self.roll[key] = pupil

    def pupils(self, school_slug: str) -> list[Pupil]:
        return [p for (s, _), p in sorted(self.roll.items()) if s == school_slug]


def fake_ports(
    *consents: PhotoConsent, known: Mapping[float, str] | None = None
) -> Ports:
    store = InMemoryConsentStore(*consents)
    return Ports(
        gallery=InMemoryFaceGallery(known),
        register=store,
        schools=store,
        pupils=store,
        today=lambda: date(2025, 3, 3),
    )
