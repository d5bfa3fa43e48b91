"""Photo-consent rules. Pure: no I/O, no frameworks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

SLUG = re.compile(r"^[a-z0-9-]{2,40}$")
STATUSES = ("granted", "refused", "withdrawn", "not_returned")


@dataclass(frozen=True)
class School:
    slug: str
    name: str


@dataclass(frozen=True)
class Pupil:
    school_slug: str
    pupil_id: str
    forename: str
    surname: str
    year_group: str = ""
    class_name: str = ""
    on_roll: bool = True
    left_on: date | None = None


@dataclass(frozen=True)
class PhotoConsent:
    """The newest consent record of one pupil for one purpose (and platform)."""

    pupil_id: str
    granted: bool
    expires_on: date | None = None
    withdrawn_on: date | None = None
    version_ref: str = ""

    def permits_on(self, day: date) -> bool:
        withdrawn = self.withdrawn_on is not None and day >= self.withdrawn_on
        expired = self.expires_on is not None and day > self.expires_on
        return self.granted and not withdrawn and not expired


@dataclass(frozen=True)
class Decision:
    index: int
    show: bool
    pupil_id: str | None
    reason: str
    consent_versions: tuple[str, ...] = ()


def faces_to_show(
    matches: Mapping[int, str | None], consents: Mapping[str, PhotoConsent], day: date
) -> dict[int, str]:
    """Default deny: a face is shown only if it is a known pupil with a current yes."""
    return {
        face: pupil
        for face, pupil in matches.items()
        if pupil is not None and pupil in consents and consents[pupil].permits_on(day)
    }


def decide(
    faces: Iterable[int],
    matches: Mapping[int, str | None],
    consents: Mapping[str, PhotoConsent],
    days: Iterable[date],
) -> list[Decision]:
    """One decision per face; shown only if consent permits on every given day."""
    days = list(days)
    shown_each = [faces_to_show(matches, consents, day) for day in days]
    out = []
    for face in faces:
        pupil = matches.get(face)
        if pupil is not None and days and all(face in s for s in shown_each):
            out.append(
                Decision(face, True, pupil, "consented", (consents[pupil].version_ref,))
            )
        else:
            out.append(
                Decision(face, False, pupil, _mask_reason(pupil, consents, days))
            )
    return out


def _mask_reason(
    pupil: str | None, consents: Mapping[str, PhotoConsent], days: list[date]
) -> str:
    if pupil is None:
        return "unknown"
    consent = consents.get(pupil)
    if consent is None or not consent.granted:
        return "no_consent"
    if any(
        consent.withdrawn_on is not None and d >= consent.withdrawn_on for d in days
    ):
        return "withdrawn"
    return "expired"
