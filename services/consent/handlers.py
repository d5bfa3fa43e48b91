"""Consent's message handlers: one function per incoming message type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from services.consent import domain
from services.consent.ports import ConsentRegister, FaceGallery
from shared import contracts


def decide_faces(
    event: contracts.FacesDetected,
    *,
    gallery: FaceGallery,
    register: ConsentRegister,
    today: Callable[[], date],
) -> list[contracts.Message]:
    """Show identified pupils with a current yes; every other face is masked."""
    encodings = {f.index: f.encoding for f in event.faces if f.encoding is not None}
    matches = gallery.identify(event.school_id, encodings) if encodings else {}
    pupils = {p for p in matches.values() if p}
    consents = register.find(event.school_id, pupils, event.purpose) if pupils else {}
    days = {today()} | ({event.publish_on} if event.publish_on else set())
    faces = [f.index for f in event.faces]
    decisions = domain.decide(faces, matches, consents, days)
    return [
        contracts.FacesDecided(
            photo_id=event.photo_id,
            post_id=event.post_id,
            school_id=event.school_id,
            decisions=[_to_contract(d) for d in decisions],
        )
    ]


def _to_contract(d: domain.Decision) -> contracts.FaceDecision:
    return contracts.FaceDecision(
        index=d.index,
        show=d.show,
        pupil_id=d.pupil_id,
        reason=d.reason,
        consent_versions=list(d.consent_versions),
    )
