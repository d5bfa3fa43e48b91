"""Messages produced by the consent service."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from pydantic import Field

from shared.contracts.base import Command, Event, Message, Model


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
    # Live posts showing the pupil must come down (for the scopes that are not
    # granted; ``restricted``: everywhere). Withdrawal and never-publish always say
    # so; expiry and leaving only where the trust chose to take posts down (else
    # what was published while consent was valid stays, listed for the DPO).
    take_down: bool = False
    changed_at: datetime | None = None  # when the change was saved (takedown timing)


class ShownPupil(Model):
    """A pupil shown (unmasked) in an approved photo, with the consent records the
    decision rested on (``FaceDecision.consent_versions``): what the approver saw."""

    photo_id: str
    pupil_id: str
    consent_versions: list[str] = []


class VerifyPostConsent(Command):
    """Publishing's final gate: are the consent decisions this approved post rests on
    still the ones in force, for every target account? Handled only by consent."""

    TYPE: ClassVar[str] = "consent.verify_post"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    round: int = Field(ge=1)  # which approval of the post (a re-approval is the next)
    accounts: list[str] = Field(min_length=1)
    shown: list[ShownPupil] = []


class StalePupil(Model):
    pupil_id: str
    reason: str  # withdrawn | no_consent | expired | changed | unknown_account


class PostConsentVerified(Event):
    """Consent's answer to ``VerifyPostConsent``: ``current`` only if every shown
    pupil's decision, made again now for every target account, is the same show with
    the same consent records. Otherwise the stale pupils (ids only) and why."""

    TYPE: ClassVar[str] = "consent.post_verified"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    round: int
    current: bool
    stale: list[StalePupil] = []
    checked_on: date


# Every message class this producer defines (the registry in __init__ collects them).
CONTRACTS: tuple[type[Message], ...] = (
    FacesDecided,
    ConsentChanged,
    VerifyPostConsent,
    PostConsentVerified,
)

__all__ = [
    "PostConsentVerified",
    "ShownPupil",
    "StalePupil",
    "VerifyPostConsent",
    "ConsentChanged",
    "ConsentScope",
    "TextDecision",
    "FaceDecision",
    "FacesDecided",
]
