"""Ports the consent handlers need (the views use the SQL store's wider surface)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from services.consent.domain import NameIndex, Nearest, Scope, Standing, TargetAccount


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
