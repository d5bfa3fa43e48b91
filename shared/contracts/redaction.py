"""Messages produced by the redaction service."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import Field

from shared.contracts.base import Command, Event, Message, Model

Box = tuple[int, int, int, int]  # left, top, right, bottom (right/bottom exclusive)


class DetectedFace(Model):
    index: int = Field(ge=0)
    box: Box
    score: float = 0.0
    # 128-d face_recognition encoding; None when it could not be computed (masked).
    encoding: list[float] | None = None


class DetectedText(Model):
    """A region of readable text (OCR).

    Only consent reads ``text``, to find pupil names; it is never logged and audit
    keeps the message without it.
    """

    index: int = Field(ge=0)
    box: Box
    text: str


class FacesDetected(Event):
    """Faces (and readable text) found in a photo, sent to consent for a decision.

    The encodings are biometric data and the text may hold names: only consent reads
    them; they are never logged and audit keeps the message without them. ``named`` is
    an approver's assertion that a face is a given pupil (the non-biometric route):
    consent shows it only if that pupil's consent is current. ``revision`` counts
    re-renders requested by an approver (0 for the first pass).
    """

    TYPE: ClassVar[str] = "faces.detected"
    VERSION: ClassVar[int] = 1
    BIOMETRIC: ClassVar[tuple[str, ...]] = ("faces.encoding", "texts.text")

    photo_id: str
    post_id: str
    school_id: str
    purpose: str = "social_media"
    platforms: list[str] = []  # unused: consent decides per account (below)
    # The post's target account ids: consent looks up each account's purpose and
    # platform in its own copy of publishing's accounts (never the uploader's word).
    accounts: list[str] = []
    publish_on: date | None = None
    width: int
    height: int
    faces: list[DetectedFace] = []
    texts: list[DetectedText] = []
    named: dict[int, str] = {}  # face index -> pupil id, asserted by an approver
    revision: int = 0


class FaceReport(Model):
    index: int
    box: Box  # the region actually masked, or for a shown face its detected box
    masked: bool
    reason: str | None = None  # why masked: unknown, ambiguous, no_consent, ...
    pupil_id: str | None = None
    consent_versions: list[str] = []  # a shown face: the consent records it rests on


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
    texts: list[TextReport] = []
    ocr: str = "unavailable"  # ok | unavailable: the approver is told loudly if not ok
    revision: int = 0
    added_masks: list[Box] = []  # an approver's extra mask regions, output pixels


class TextReport(Model):
    index: int
    box: Box  # in the output image's pixels
    masked: bool
    reason: str  # pupil_name (masked) | readable_text (flagged for the approver)


class PhotoRefused(Event):
    """A photo could not be processed safely (bad file, unsupported format, ...)."""

    TYPE: ClassVar[str] = "photo.refused"
    VERSION: ClassVar[int] = 1

    photo_id: str
    post_id: str
    school_id: str
    reason: str  # stable code, e.g. unsupported_format, corrupt, too_large
    detail: str = ""


class OriginalDeleted(Event):
    """A photo's original was deleted from the originals store (retention ended)."""

    TYPE: ClassVar[str] = "original.deleted"
    VERSION: ClassVar[int] = 1

    photo_id: str
    post_id: str
    school_id: str
    original_key: str
    reason: str  # post_published | post_rejected
    closed_on: date  # when the post was published or rejected
    retention_days: int = Field(ge=0)


class ReviseRedaction(Command):
    """An approver's edits to a photo's redaction: extra mask regions (in the redacted
    image's pixels) and faces asserted to be named pupils. Redaction re-renders from the
    original, asking consent again for the named faces."""

    TYPE: ClassVar[str] = "redaction.revise"
    VERSION: ClassVar[int] = 1

    photo_id: str
    post_id: str
    school_id: str
    revision: int = Field(ge=1)
    add_masks: list[Box] = []
    named: dict[int, str] = {}
    requested_by: str


# Every message class this producer defines (the registry in __init__ collects them).
CONTRACTS: tuple[type[Message], ...] = (
    ReviseRedaction,
    FacesDetected,
    PhotoRedacted,
    PhotoRefused,
    OriginalDeleted,
)

__all__ = [
    "DetectedText",
    "OriginalDeleted",
    "ReviseRedaction",
    "TextReport",
    "Box",
    "DetectedFace",
    "FaceReport",
    "FacesDetected",
    "PhotoRedacted",
    "PhotoRefused",
]
