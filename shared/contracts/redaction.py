"""Messages produced by the redaction service."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import Field

from shared.contracts.base import Event, Message, Model

Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive)


class DetectedFace(Model):
    index: int = Field(ge=0)
    box: Box
    score: float = 0.0
    # 128-d face_recognition encoding; None when it could not be computed (masked).
    encoding: list[float] | None = None


class FacesDetected(Event):
    """Faces found in a photo, sent to consent alone for a show/mask decision.

    The encodings are biometric data: only consent reads them; they are never logged
    and audit keeps the message without them.
    """

    TYPE: ClassVar[str] = "faces.detected"
    VERSION: ClassVar[int] = 1
    BIOMETRIC: ClassVar[tuple[str, ...]] = ("faces.encoding",)

    photo_id: str
    post_id: str
    school_id: str
    purpose: str = "social_media"
    platforms: list[str] = []
    publish_on: date | None = None
    width: int
    height: int
    faces: list[DetectedFace] = []


class FaceReport(Model):
    index: int
    box: Box  # the region actually masked, or for a shown face its detected box
    masked: bool
    reason: str | None = None  # why masked: unknown, ambiguous, no_consent, ...
    pupil_id: str | None = None


class PhotoRedacted(Event):
    """A redacted, metadata-free copy is stored; the original is untouched."""

    TYPE: ClassVar[str] = "photo.redacted"
    VERSION: ClassVar[int] = 1

    photo_id: str
    post_id: str
    school_id: str
    redacted_key: str
    preview_key: str
    sha256: str
    width: int
    height: int
    faces: list[FaceReport] = []


class PhotoRefused(Event):
    """A photo could not be processed safely (bad file, unsupported format, ...)."""

    TYPE: ClassVar[str] = "photo.refused"
    VERSION: ClassVar[int] = 1

    photo_id: str
    post_id: str
    school_id: str
    reason: str  # stable code, e.g. unsupported_format, corrupt, too_large
    detail: str = ""


# Every message class this producer defines (the registry in __init__ collects them).
CONTRACTS: tuple[type[Message], ...] = (
    FacesDetected,
    PhotoRedacted,
    PhotoRefused,
)

__all__ = [
    "Box",
    "DetectedFace",
    "FaceReport",
    "FacesDetected",
    "PhotoRedacted",
    "PhotoRefused",
]
