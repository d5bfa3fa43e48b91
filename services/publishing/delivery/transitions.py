"""A delivery's transitions and the messages each owes, written in the use case's unit
of work: the marker, ``delivery.updated`` for the pages and ``post.published`` /
``post.publish_failed``, with ids fixed by the transition (the same transition written
twice is sent once)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from services.publishing import domain
from services.publishing.delivery.engine import Engine, settling
from services.publishing.platforms.base import LivePost
from services.publishing.ports import Unit
from shared import contracts

logger = logging.getLogger(__name__)

PRODUCER = "publishing"


def owe(
    unit: Unit, delivery: domain.Delivery, messages: Sequence[contracts.Message] = ()
) -> None:
    """Record the delivery's new state and what it owes: ``messages`` then the
    pages' ``delivery.updated``."""
    unit.deliveries.record(delivery)
    emit_owed(unit, delivery, [*messages, updated(delivery)])


def emit_owed(
    unit: Unit, delivery: domain.Delivery, messages: Sequence[contracts.Message]
) -> None:
    """Emit ``messages`` with ids fixed by the delivery's transition."""
    for n, message in enumerate(messages):
        unit.emit(
            message,
            message_id=contracts.deterministic_id(
                PRODUCER,
                message.TYPE,
                delivery.post_id,
                delivery.account_id,
                str(delivery.round),
                delivery.status,
                str(delivery.attempts),
                delivery.at.isoformat(),
                str(n),
            ),
        )


def claim(
    engine: Engine,
    expected: domain.Delivery,
    claimed: domain.Delivery,
    *,
    announce: bool,
) -> bool:
    """Replace ``expected`` by ``claimed`` if the row is still exactly ``expected``
    (one worker wins), in its own unit of work committed before any platform is
    called; ``announce``: tell the pages too."""
    with engine.unit() as unit:
        if not unit.deliveries.claim(expected, claimed):
            return False  # another worker has it
        if announce:
            emit_owed(unit, claimed, [updated(claimed)])
        unit.commit()
    return True


def settle(
    engine: Engine,
    delivery: domain.Delivery,
    messages: Sequence[contracts.Message] = (),
) -> None:
    """One transition in its own unit of work."""
    with settling(engine) as unit:
        owe(unit, delivery, messages)


def updated(delivery: domain.Delivery) -> contracts.DeliveryUpdated:
    """What the pages are told of a delivery (never a server path: a folder's
    location is only said to be the school's folder)."""
    url = delivery.url if delivery.url.startswith(("http://", "https://")) else ""
    return contracts.DeliveryUpdated(
        post_id=delivery.post_id,
        school_id=delivery.school_id,
        account_id=delivery.account_id,
        platform=delivery.target,
        state=delivery.status,
        reason=delivery.reason.split(":", 1)[0],
        detail=delivery.detail[:2000],
        url=url,
        attempts=delivery.attempts,
        retry_at=delivery.next_attempt_at
        if delivery.status == domain.WAITING
        else None,
        at=delivery.at,
    )


def went_live(
    unit: Unit,
    engine: Engine,
    delivery: domain.Delivery,
    account: domain.Account,
    live: LivePost,
) -> None:
    now = engine.now()
    done = replace(
        delivery,
        status=domain.LIVE,
        external_id=live.external_id,
        url=live.url,
        location=live.url or live.external_id,
        target=account.kind,
        reason="",
        detail="",
        live_at=now,
        at=now,
        next_attempt_at=None,
    )
    owe(unit, done, [published(done, account)])
    logger.info("post %s live on %s", delivery.post_id, account.account_id)
    if done.takedown_id:  # consent changed while it was being sent: down it comes
        owe(unit, coming_down(done, now, engine.now()))


def coming_down(live: domain.Delivery, due: datetime, at: datetime) -> domain.Delivery:
    """A live copy whose takedown was asked for while it was being sent."""
    return replace(
        live, status=domain.TAKING_DOWN, reason="try:0", next_attempt_at=due, at=at
    )


def published(
    delivery: domain.Delivery, account: domain.Account | None
) -> contracts.PostPublished:
    return contracts.PostPublished(
        post_id=delivery.post_id,
        school_id=delivery.school_id,
        account=delivery.account_id,
        target=account.kind if account else delivery.target,
        location=delivery.url or delivery.location,
    )


def wait(
    unit: Unit,
    engine: Engine,
    delivery: domain.Delivery,
    reason: str,
    now: datetime,
    detail: str = "",
    until: datetime | None = None,
) -> None:
    owe(
        unit,
        replace(
            delivery,
            status=domain.WAITING,
            reason=reason,
            detail=detail,
            sending_since=None,
            next_attempt_at=until or now + engine.policy.every,
            at=now,
        ),
    )


def fail(
    unit: Unit, engine: Engine, delivery: domain.Delivery, reason: str, detail: str
) -> None:
    now = engine.now()
    failed = replace(
        delivery,
        status=domain.FAILED,
        reason=reason,
        detail=detail,
        sending_since=None,
        next_attempt_at=None,
        at=now,
    )
    owe(
        unit,
        failed,
        [
            contracts.PublishFailed(
                post_id=failed.post_id,
                school_id=failed.school_id,
                account=failed.account_id,
                reason=reason,
                detail=detail[:2000],
            )
        ],
    )


def unconfirmed(unit: Unit, delivery: domain.Delivery, why: str) -> None:
    owe(
        unit,
        replace(
            delivery,
            status=domain.UNCONFIRMED,
            reason="unconfirmed",
            detail=why,
            next_attempt_at=None,
        ),
    )


def reconciling(
    delivery: domain.Delivery, engine: Engine, now: datetime, detail: str
) -> domain.Delivery:
    """A create whose answer was lost: looked for before anything is sent again."""
    return replace(
        delivery,
        status=domain.RECONCILING,
        reason="reconciling:0",
        detail=detail,
        next_attempt_at=now + timedelta(seconds=engine.policy.reconcile_seconds[0]),
        at=now,
    )


# --- scheduling ------------------------------------------------------------------


def schedule(unit: Unit, event: contracts.PostApproved, now: datetime) -> None:
    """Consent cleared the round: every account not live yet gets a pending delivery
    (due now), and the pages are told."""
    for account_id in event.accounts:
        marker = unit.deliveries.get(event.post_id, account_id)
        if marker is not None and marker.status in (
            domain.LIVE,
            domain.SENDING,
            domain.RECONCILING,
            # a copy may exist (its answer was lost and not found again): a person
            # says; sending it again could make a second live copy
            domain.UNCONFIRMED,
        ):
            continue
        if (
            marker is not None
            and marker.status == domain.PENDING
            and marker.round == event.round
        ):  # the same answer again: the same words (the same ids: sent once)
            emit_owed(unit, marker, [updated(marker)])
            continue
        owe(
            unit,
            domain.Delivery(
                event.post_id,
                account_id,
                event.school_id,
                domain.PENDING,
                now,
                target=marker.target if marker else "",
                round=event.round,
                attempts=marker.attempts if marker else 0,
                next_attempt_at=now,
            ),
        )


def verify_request(event: contracts.PostApproved) -> contracts.VerifyPostConsent:
    return contracts.VerifyPostConsent(
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
