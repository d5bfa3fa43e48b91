"""Publishing's handler: each approved post goes to each of its accounts once."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from services.publishing import domain
from services.publishing.ports import (
    AccountDirectory,
    Approvals,
    DeliveryLog,
    Target,
)
from shared import contracts
from shared.storage import BlobNotFoundError, BlobStore

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]


class ImageProblemError(Exception):
    """A redacted image is missing or is not the one the approver saw."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


def publish_post(
    event: contracts.PostApproved,
    *,
    approvals: Approvals,
    deliveries: DeliveryLog,
) -> list[contracts.Message]:
    """An approved post is not sent yet: first the final gate asks consent whether
    the decisions the approver saw are still current (``consent.verify_post``).
    Until consent answers, nothing is sent (a consent outage means waiting).
    An older round than one already known, or a recalled round, sends nothing."""
    if event.round < approvals.newest_round(event.post_id):
        logger.info("post %s: approval round %d is stale", event.post_id, event.round)
        return []
    kept = approvals.open(event)
    if kept.state in (domain.RECALLED, domain.ROUND_HELD):
        logger.info("post %s round %d was %s", event.post_id, event.round, kept.state)
        return []
    markers = [deliveries.get(event.post_id, a) for a in event.accounts]
    if all(m is not None and m.status == domain.DONE for m in markers):
        # Live everywhere: announced when delivered (a redelivered consent answer
        # announces again with the same ids); nothing new to say.
        return []
    return [
        contracts.VerifyPostConsent(
            post_id=event.post_id,
            school_id=event.school_id,
            round=event.round,
            accounts=list(event.accounts),
            shown=[
                contracts.ShownPupil(
                    photo_id=image.photo_id,
                    pupil_id=face.pupil_id,
                    consent_versions=list(face.consent_versions),
                )
                for image in event.images
                for face in image.shown
            ],
        )
    ]


def consent_verified(
    event: contracts.PostConsentVerified,
    *,
    approvals: Approvals,
    accounts: AccountDirectory,
    deliveries: DeliveryLog,
    redacted: BlobStore,
    targets: Mapping[str, Target],
    now: Clock,
) -> list[contracts.Message]:
    """Consent answered the final gate. Current: deliver to every account. Changed:
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
    if kept.state != domain.CLEARED:
        approvals.settle(event.post_id, event.round, domain.CLEARED, event.school_id)
    return deliver(
        approved,
        accounts=accounts,
        deliveries=deliveries,
        redacted=redacted,
        targets=targets,
        now=now,
    )


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
    """Every delivery of the post not yet live is held (never sent in this round)."""
    for account_id in event.accounts:
        marker = deliveries.get(event.post_id, account_id)
        if marker is not None and marker.status == domain.DONE:
            continue
        deliveries.record(
            domain.Delivery(
                event.post_id,
                account_id,
                event.school_id,
                domain.HELD,
                now(),
                reason=reason,
            )
        )


def deliver(
    event: contracts.PostApproved,
    *,
    accounts: AccountDirectory,
    deliveries: DeliveryLog,
    redacted: BlobStore,
    targets: Mapping[str, Target],
    now: Clock,
) -> list[contracts.Message]:
    """For each account: re-announce a done delivery, refuse a bad account, else
    mark started, write from the redacted store only, mark done."""
    out: list[contracts.Message] = []
    publication: domain.Publication | None = None
    for account_id in event.accounts:
        marker = deliveries.get(event.post_id, account_id)
        if marker is not None and marker.status == domain.DONE:
            out.append(_published(event, marker))
            continue
        account = accounts.get(account_id)
        reason = domain.refusal(account, account_id, event.school_id)
        if reason is None and account is not None and account.kind not in targets:
            reason = "unsupported_target"
        if reason is not None or account is None:
            out.append(
                _failed(
                    event,
                    account_id,
                    reason or "unknown_account",
                    deliveries=deliveries,
                    now=now,
                )
            )
            continue
        try:
            publication = publication or _publication(event, redacted)
        except ImageProblemError as problem:
            out.append(
                _failed(
                    event,
                    account_id,
                    problem.reason,
                    str(problem),
                    deliveries=deliveries,
                    now=now,
                )
            )
            continue
        out.append(
            _deliver(
                publication,
                account,
                targets[account.kind],
                deliveries=deliveries,
                now=now,
            )
        )
    return out


def _deliver(
    publication: domain.Publication,
    account: domain.Account,
    target: Target,
    *,
    deliveries: DeliveryLog,
    now: Clock,
) -> contracts.Message:
    started = domain.Delivery(
        publication.post_id,
        account.account_id,
        publication.school_id,
        domain.STARTED,
        now(),
        target=account.kind,
    )
    deliveries.record(started)
    location = target.publish(publication, account)
    done = domain.Delivery(
        publication.post_id,
        account.account_id,
        publication.school_id,
        domain.DONE,
        now(),
        target=account.kind,
        location=location,
    )
    deliveries.record(done)
    logger.info("post %s published to %s", publication.post_id, account.account_id)
    return contracts.PostPublished(
        post_id=done.post_id,
        school_id=done.school_id,
        account=done.account_id,
        target=done.target,
        location=done.location,
    )


def _publication(
    event: contracts.PostApproved, redacted: BlobStore
) -> domain.Publication:
    images = []
    for image in event.images:
        try:
            data = redacted.get(image.redacted_key)
        except BlobNotFoundError:
            raise ImageProblemError(
                "image_missing", f"no redacted image {image.photo_id}"
            ) from None
        if hashlib.sha256(data).hexdigest() != image.sha256:
            raise ImageProblemError(
                "image_changed",
                f"redacted image {image.photo_id} is not the approved one",
            )
        images.append(domain.Image(image.photo_id, data))
    return domain.Publication(
        post_id=event.post_id,
        school_id=event.school_id,
        author_id=event.author_id,
        approved_by=event.approved_by,
        caption=event.caption,
        images=tuple(images),
    )


def _published(
    event: contracts.PostApproved, marker: domain.Delivery
) -> contracts.PostPublished:
    return contracts.PostPublished(
        post_id=event.post_id,
        school_id=event.school_id,
        account=marker.account_id,
        target=marker.target,
        location=marker.location,
    )


def _failed(
    event: contracts.PostApproved,
    account_id: str,
    reason: str,
    detail: str = "",
    *,
    deliveries: DeliveryLog,
    now: Clock,
) -> contracts.PublishFailed:
    logger.warning("post %s not published to %s: %s", event.post_id, account_id, reason)
    deliveries.record(
        domain.Delivery(
            event.post_id,
            account_id,
            event.school_id,
            domain.FAILED,
            now(),
            reason=reason,
        )
    )
    return contracts.PublishFailed(
        post_id=event.post_id,
        school_id=event.school_id,
        account=account_id,
        reason=reason,
        detail=detail,
    )
