"""Messages produced by the consent service."""

from __future__ import annotations

from datetime import date
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


class ConsentScope(Model):
    """One purpose (or one platform of it) whose answer for a pupil changed."""

    purpose: str
    platform: str | None = None  # None: the purpose-wide answer
    # granted | refused | withdrawn | not_returned | expired | no_consent
    state: str
    expires_on: date | None = None
    version: str = ""  # the consent record version now in force ("" if none)


class ConsentChanged(Event):
    """A pupil's photo consent changed: who may now be shown where.

    ``cause``: ``recorded`` (a new consent version), ``expired`` (the daily sweep),
    ``restricted`` (the pupil may no longer be shown at all: left the school or
    another reason consent never reveals) or ``unrestricted`` (shown again subject
    to their consent). Each scope gives the state now in force for one purpose or
    platform. No names: the pupil id is the school's own id.
    """

    TYPE: ClassVar[str] = "consent.changed"
    VERSION: ClassVar[int] = 1

    school_id: str
    pupil_id: str
    cause: str
    scopes: list[ConsentScope] = []
    effective_on: date


# Every message class this producer defines (the registry in __init__ collects them).
CONTRACTS: tuple[type[Message], ...] = (FacesDecided, ConsentChanged)

__all__ = [
    "ConsentChanged",
    "ConsentScope",
    "TextDecision",
    "FaceDecision",
    "FacesDecided",
]
