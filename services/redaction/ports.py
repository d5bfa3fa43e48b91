"""Ports the redaction handlers need: a detector, an encoder and its records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from services.redaction import domain


class FaceDetector(Protocol):
    def detect(self, rgb: np.ndarray) -> list[tuple[domain.Box, float]]:
        """Face boxes (in ``rgb``'s pixels) with scores, best first."""


class FaceEncoder(Protocol):
    def encode(
        self, rgb: np.ndarray, boxes: Sequence[domain.Box]
    ) -> list[list[float] | None]:
        """One 128-d encoding per box, in order; None where none can be computed."""


class PhotoRecords(Protocol):
    def find(self, photo_id: str) -> domain.PhotoRecord | None:
        """The stored photo, or None."""

    def add(self, record: domain.PhotoRecord) -> domain.PhotoRecord:
        """Store a new photo (detected or refused); if it exists, keep and return it."""

    def finish(self, photo_id: str, redaction: domain.Redaction) -> None:
        """Record the redacted copy of a stored photo (replacing any earlier one)."""
