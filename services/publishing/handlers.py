"""Publishing's use cases for the messages it handles: an approved post passes the
final gate (consent asked again), then its deliveries are scheduled; the delivery loop
(``delivery``) sends them. Each runs in one unit of work (``bootstrap.handler_map``):
its changes, the transitions' messages and the messages it returns commit together."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from services.publishing import domain
from services.publishing.delivery.transitions import owe, schedule, verify_request
from services.publishing.ports import Unit
from shared import contracts

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def publish_post(unit: Unit, event: contracts.PostApproved) -> list[contracts.Message]:
    """An approved post is not sent yet: first the final gate asks consent whether
    the decisions the approver saw are still current (``consent.verify_post``).
    Until consent answers, nothing is sent (a consent outage means waiting).
    An older round than one already known, or a recalled round, sends nothing."""
    approvals = unit.approvals
    if event.round < approvals.newest_round(event.post_id):
        logger.info("post %s: approval round %d is stale", event.post_id, event.round)
        return []
    kept = approvals.open(event)
    if unit.takedowns is not None:  # who this round shows, for takedowns (ids only)
        unit.takedowns.show(
            event.post_id,
            event.round,
            event.school_id,
            [face.pupil_id for image in event.images for face in image.shown],
        )
    if kept.state in (domain.RECALLED, domain.ROUND_HELD):
        logger.info("post %s round %d was %s", event.post_id, event.round, kept.state)
        return []
    markers = [unit.deliveries.get(event.post_id, a) for a in event.accounts]
    if all(m is not None and m.status == domain.LIVE for m in markers):
        # Live everywhere: announced when delivered (a redelivered consent answer
        # announces again with the same ids); nothing new to say.
        return []
    return [verify_request(event)]


def consent_verified(
    unit: Unit, event: contracts.PostConsentVerified, *, now: Clock
) -> list[contracts.Message]:
    """Consent answered the final gate. Current: every account not live yet gets a
    pending delivery, which the delivery loop sends. Changed:
    hold the round (no platform is called) and tell approval, which returns the post
    to the approver re-rendered. A recalled or superseded round does nothing."""
    approvals = unit.approvals
    kept = approvals.get(event.post_id, event.round)
    if kept is None or kept.event is None:
        logger.warning("consent answer for unknown round of post %s", event.post_id)
        return []
    if kept.state in (domain.RECALLED, domain.ROUND_HELD):
        return []
    if event.round < approvals.newest_round(event.post_id):
        return []
    approved = kept.event
    if event.current:
        approvals.settle(event.post_id, event.round, domain.CLEARED, event.school_id)
        schedule(unit, approved, now())
        return []
    approvals.settle(event.post_id, event.round, domain.ROUND_HELD, event.school_id)
    _hold(unit, approved, "consent_changed", now=now)
    reasons = {s.reason for s in event.stale}
    return [
        contracts.PublicationHeld(
            post_id=event.post_id,
            school_id=event.school_id,
            round=event.round,
            reason=(
                "consent_unknown_account"
                if reasons == {"unknown_account"}
                else "consent_changed"
            ),
            pupils=sorted({s.pupil_id for s in event.stale}),
        )
    ]


def post_recalled(
    unit: Unit, event: contracts.PostRecalled, *, now: Clock
) -> list[contracts.Message]:
    """Approval took the round back (consent changed after approval): nothing more of
    it is sent. Accounts already live stay so (taking them down is another step)."""
    kept = unit.approvals.get(event.post_id, event.round)
    unit.approvals.settle(event.post_id, event.round, domain.RECALLED, event.school_id)
    if kept is not None and kept.event is not None:
        _hold(unit, kept.event, "recalled", now=now)
    logger.info("post %s round %d recalled", event.post_id, event.round)
    return []


def _hold(
    unit: Unit, event: contracts.PostApproved, reason: str, *, now: Clock
) -> None:
    """Every delivery of the post not sent yet is held (never sent in this round).
    One being sent, or whose answer is being looked for, is left to the delivery
    loop: it may be live, and the loop holds it once it knows it is not."""
    for account_id in event.accounts:
        marker = unit.deliveries.get(event.post_id, account_id)
        if marker is not None and marker.status in domain.UNSETTLED:
            continue
        at = now()
        held = domain.Delivery(
            event.post_id,
            account_id,
            event.school_id,
            domain.HELD,
            at,
            reason=reason,
            round=event.round,
        )
        if marker is not None:
            held = replace(
                marker, status=domain.HELD, reason=reason, at=at, next_attempt_at=None
            )
        owe(unit, held)
