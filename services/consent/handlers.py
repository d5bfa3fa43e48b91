"""Consent's message handlers: one function per incoming message type."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import date

from services.consent import domain
from services.consent.names import text_verdict
from services.consent.ports import (
    ConsentRegister,
    FaceGallery,
    PupilNames,
    TargetAccounts,
)
from shared import contracts

logger = logging.getLogger(__name__)


def decide_faces(
    event: contracts.FacesDetected,
    *,
    gallery: FaceGallery,
    register: ConsentRegister,
    names: PupilNames,
    accounts: TargetAccounts,
    today: Callable[[], date],
) -> list[contracts.Message]:
    """One decision per face and per text region. Default deny: a face is shown only
    if it is one pupil (identified, or named by an approver) whose consent is current
    for every target account's purpose and platform, today and on the publish date.

    The accounts' purposes and platforms come from consent's own copy of publishing's
    accounts; a target account consent has not been told of masks every face."""
    scopes = accounts.scopes(event.school_id, event.accounts)
    missing = [a for a in dict.fromkeys(event.accounts) if a not in scopes]
    if missing or not event.accounts:
        logger.warning(
            "photo %s: target account(s) %s unknown to consent: every face masked",
            event.photo_id,
            ", ".join(missing) or "(none given)",
        )
        return decide_with_scopes(
            event, [], gallery=gallery, register=register, names=names, today=today
        )
    return decide_with_scopes(
        event,
        list(scopes.values()),
        gallery=gallery,
        register=register,
        names=names,
        today=today,
    )


def decide_with_scopes(
    event: contracts.FacesDetected,
    scopes: Sequence[domain.Scope],
    *,
    gallery: FaceGallery,
    register: ConsentRegister,
    names: PupilNames,
    today: Callable[[], date],
) -> list[contracts.Message]:
    """The decision for these consent scopes (no scope: every face masked)."""
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
        _unknown_account(f.index)
        if not scopes
        else domain.decide_face(
            f.index,
            matches[f.index],
            event.named.get(f.index),
            standings,
            scopes,
            days,
        )
        for f in event.faces
    ]
    texts = []
    if event.texts:
        index = names.name_index(event.school_id)
        for t in event.texts:
            mask, reason = text_verdict(t.text, index)
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


def account_changed(
    event: contracts.AccountChanged, *, accounts: TargetAccounts
) -> list[contracts.Message]:
    """Keep publishing's word on an account's school, purpose and platform."""
    accounts.record(
        domain.TargetAccount(
            account_id=event.account_id,
            school_id=event.school_id,
            platform=event.platform,
            purpose=event.purpose,
            consent_platform=event.consent_platform,
            status=event.status,
        )
    )
    return []


def verify_post(
    command: contracts.VerifyPostConsent,
    *,
    register: ConsentRegister,
    accounts: TargetAccounts,
    today: Callable[[], date],
) -> list[contracts.Message]:
    """Publishing's final gate: each shown pupil decided again now, for every target
    account, must be shown on the very consent records the approver saw."""
    now = today()
    scopes = accounts.scopes(command.school_id, command.accounts)
    stale: dict[str, str] = {}
    if any(a not in scopes for a in command.accounts):
        stale.update({s.pupil_id: domain.UNKNOWN_ACCOUNT for s in command.shown})
    else:
        pupils = {s.pupil_id for s in command.shown}
        standings = register.standings(command.school_id, pupils) if pupils else {}
        for shown in command.shown:
            why = domain.still_current(
                standings.get(shown.pupil_id),
                list(scopes.values()),
                now,
                shown.consent_versions,
            )
            if why is not None:
                stale.setdefault(shown.pupil_id, why)
    if stale:
        logger.info(
            "post %s round %d: consent changed for %d pupil(s)",
            command.post_id,
            command.round,
            len(stale),
        )
    return [
        contracts.PostConsentVerified(
            post_id=command.post_id,
            school_id=command.school_id,
            round=command.round,
            current=not stale and bool(scopes),
            stale=[
                contracts.StalePupil(pupil_id=p, reason=r)
                for p, r in sorted(stale.items())
            ],
            checked_on=now,
        )
    ]


def _unknown_account(index: int) -> domain.Decision:
    return domain.Decision(index, False, None, domain.UNKNOWN_ACCOUNT)


def _to_contract(d: domain.Decision) -> contracts.FaceDecision:
    return contracts.FaceDecision(
        index=d.index,
        show=d.show,
        pupil_id=d.pupil_id,
        reason=d.reason,
        consent_versions=list(d.consent_versions),
    )
