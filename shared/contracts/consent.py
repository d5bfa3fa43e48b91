"""Messages produced by the consent service."""

from __future__ import annotations

from typing import ClassVar

from shared.contracts.base import Event, Message, Model


class FaceDecision(Model):
    index: int
    show: bool
    pupil_id: str | None = None
    # shown: "consented"; masked: unknown, ambiguous, no_consent, expired, withdrawn
    reason: str
    consent_versions: list[str] = []


class TextDecision(Model):
    index: int
    mask: bool
    reason: str  # pupil_name (mask) | readable_text (show, flagged for the approver)


class FacesDecided(Event):
    """Consent's per-face decision for a photo. Default deny: only ``show`` shows."""

    TYPE: ClassVar[str] = "faces.decided"
    VERSION: ClassVar[int] = 1

    photo_id: str
    post_id: str
    school_id: str
    decisions: list[FaceDecision] = []
    texts: list[TextDecision] = []
    revision: int = 0


# Every message class this producer defines (the registry in __init__ collects them).
CONTRACTS: tuple[type[Message], ...] = (FacesDecided,)

__all__ = [
    "TextDecision",
    "FaceDecision",
    "FacesDecided",
]
