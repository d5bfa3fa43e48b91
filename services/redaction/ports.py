"""Ports the redaction use cases need: a detector, an encoder, OCR, its records and
the unit of work that holds them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import numpy as np

from services.redaction import domain
from shared.uow import UnitOfWork


class FaceDetector(Protocol):
    def detect(self, rgb: np.ndarray) -> list[tuple[domain.Box, float]]:
        """Face boxes (in ``rgb``'s pixels) with scores, best first."""


class FaceEncoder(Protocol):
    def encode(
        self, rgb: np.ndarray, boxes: Sequence[domain.Box]
    ) -> list[list[float] | None]:
        """One 128-d encoding per box, in order; None where none can be computed."""


class TextReader(Protocol):
    def read(self, rgb: np.ndarray) -> list[tuple[domain.Box, str]] | None:
        """Regions of readable text (``rgb``'s pixels) with their words; None when
        OCR is unavailable (never silently: the approver is told)."""


class PhotoRecords(Protocol):
    def find(self, photo_id: str) -> domain.PhotoRecord | None:
        """The stored photo, or None."""

    def add(self, record: domain.PhotoRecord) -> domain.PhotoRecord:
        """Store a new photo (detected or refused); if it exists, keep and return it."""

    def finish(self, photo_id: str, redaction: domain.Redaction) -> None:
        """Record the redacted copy of a stored photo (replacing any earlier one)."""

    def revise(
        self,
        photo_id: str,
        revision: int,
        extra_masks: Sequence[domain.Box],
        named: Sequence[tuple[int, str]],
    ) -> None:
        """Record that ``revision`` was asked for, with the approver's edits so far."""


class Retention(Protocol):
    def close_post(self, post_id: str, closure: domain.Closure) -> None:
        """Start the retention clock of the post's photos (the first closure wins)."""

    def due(self, now: datetime, retention_days: int) -> list[domain.PhotoRecord]:
        """Photos whose original may now be deleted."""

    def mark_deleted(self, photo_id: str) -> None:
        """The photo's original is gone from the originals store."""


class Unit(UnitOfWork, Protocol):
    """Redaction's unit of work: its records on one transaction, and its outbox."""

    @property
    def records(self) -> PhotoRecords: ...

    @property
    def retention(self) -> Retention: ...
