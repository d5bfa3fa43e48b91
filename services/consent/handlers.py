"""Consent's message handlers: one function per incoming message type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from services.consent import domain
from services.consent.ports import ConsentRegister, FaceGallery, PupilNames
from shared import contracts


def decide_faces(
    event: contracts.FacesDetected,
    *,
    gallery: FaceGallery,
    register: ConsentRegister,
    names: PupilNames,
    today: Callable[[], date],
) -> list[contracts.Message]:
    """One decision per face and per text region. Default deny: a face is shown only
    if it is one pupil (identified, or named by an approver) whose consent is current
    for the purpose and every platform, today and on the publish date."""
    encodings = {f.index: f.encoding for f in event.faces if f.encoding is not None}
    nearest = gallery.nearest(event.school_id, encodings) if encodings else {}
    matches = {
        f.index: domain.classify(nearest.get(f.index, domain.Nearest(None)))
        for f in event.faces
    }
    wanted = {m.pupil_id for m in matches.values() if m.pupil_id}
    wanted |= set(event.named.values())
    standings = register.standings(event.school_id, wanted) if wanted else {}
    now = today()
    days = sorted({now, event.publish_on or now})
    decisions = [
        domain.decide_face(
            f.index,
            matches[f.index],
            event.named.get(f.index),
            standings,
            event.purpose,
            event.platforms,
            days,
        )
        for f in event.faces
    ]
    texts = []
    if event.texts:
        index = names.name_index(event.school_id)
        for t in event.texts:
            mask, reason = domain.text_verdict(t.text, index)
            texts.append(
                contracts.TextDecision(index=t.index, mask=mask, reason=reason)
            )
    return [
        contracts.FacesDecided(
            photo_id=event.photo_id,
            post_id=event.post_id,
            school_id=event.school_id,
            decisions=[_to_contract(d) for d in decisions],
            texts=texts,
            revision=event.revision,
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
