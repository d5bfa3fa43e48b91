"""Publishing's handlers: an approved post passes the final gate (consent asked again),
then its deliveries are scheduled; the delivery loop (``delivery.py``) sends them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from services.publishing import delivery, domain
from services.publishing.ports import Approvals, DeliveryLog, Takedowns
from shared import contracts

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def publish_post(
    event: contracts.PostApproved,
    *,
    approvals: Approvals,
    deliveries: DeliveryLog,
    takedowns: Takedowns | None = None,
) -> list[contracts.Message]:
    """An approved post is not sent yet: first the final gate asks consent whether
    the decisions the approver saw are still current (``consent.verify_post``).
    Until consent answers, nothing is sent (a consent outage means waiting).
    An older round than one already known, or a recalled round, sends nothing."""
    if event.round < approvals.newest_round(event.post_id):
        logger.info("post %s: approval round %d is stale", event.post_id, event.round)
        return []
    kept = approvals.open(event)
    if takedowns is not None:  # who this round shows, for takedowns (ids only)
        takedowns.show(
            event.post_id,
            event.round,
            event.school_id,
            [face.pupil_id for image in event.images for face in image.shown],
        )
    if kept.state in (domain.RECALLED, domain.ROUND_HELD):
        logger.info("post %s round %d was %s", event.post_id, event.round, kept.state)
        return []
    markers = [deliveries.get(event.post_id, a) for a in event.accounts]
    if all(m is not None and m.status == domain.LIVE for m in markers):
        # Live everywhere: announced when delivered (a redelivered consent answer
        # announces again with the same ids); nothing new to say.
        return []
    return [delivery.verify_request(event)]


def consent_verified(
    event: contracts.PostConsentVerified,
    *,
    approvals: Approvals,
    deliveries: DeliveryLog,
    now: Clock,
) -> list[contracts.Message]:
    """Consent answered the final gate. Current: every account not live yet gets a
    pending delivery, which the delivery loop sends. Changed:
    hold the round (no platform is called) and tell approval, which returns the post
    to the approver re-rendered. A recalled or superseded round does nothing."""
    kept = approvals.get(event.post_id, event.round)
    if kept is None or kept.event is None:
        logger.warning("consent answer for unknown round of post %s", event.post_id)
        return []
    if kept.state in (domain.RECALLED, domain.ROUND_HELD):
        return []
    if event.round < approvals.newest_round(event.post_id):
        return []
    approved = kept.event
    if not event.current:
        approvals.settle(event.post_id, event.round, domain.ROUND_HELD, event.school_id)
        _hold(approved, "consent_changed", deliveries=deliveries, now=now)
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
    approvals.settle(event.post_id, event.round, domain.CLEARED, event.school_id)
    return delivery.schedule(approved, deliveries, now())


def post_recalled(
    event: contracts.PostRecalled,
    *,
    approvals: Approvals,
    deliveries: DeliveryLog,
    now: Clock,
) -> list[contracts.Message]:
    """Approval took the round back (consent changed after approval): nothing more of
    it is sent. Accounts already live stay so (taking them down is another step)."""
    kept = approvals.get(event.post_id, event.round)
    approvals.settle(event.post_id, event.round, domain.RECALLED, event.school_id)
    if kept is not None and kept.event is not None:
        _hold(kept.event, "recalled", deliveries=deliveries, now=now)
    logger.info("post %s round %d recalled", event.post_id, event.round)
    return []


def _hold(
    event: contracts.PostApproved,
    reason: str,
    *,
    deliveries: DeliveryLog,
    now: Clock,
) -> None:
    """Every delivery of the post not sent yet is held (never sent in this round).
    One being sent, or whose answer is being looked for, is left to the delivery
    loop: it may be live, and the loop holds it once it knows it is not."""
    for account_id in event.accounts:
        marker = deliveries.get(event.post_id, account_id)
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
        deliveries.settle(held, [delivery.updated(held)])
