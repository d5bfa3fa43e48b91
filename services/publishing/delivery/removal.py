"""The delivery loop's part of a takedown: delete one live copy on its platform
(claimed first, the platform called outside any transaction, its answer settled),
open a task for a person when the platform cannot or will not, and say when the last
copy of a takedown is gone."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from services.publishing import accounts, domain
from services.publishing.delivery.engine import Engine, settling
from services.publishing.delivery.transitions import claim, owe
from services.publishing.platforms.base import (
    AmbiguousError,
    AuthError,
    PermanentError,
    PlatformError,
    RateLimitedError,
)
from services.publishing.ports import Unit
from shared import contracts, metrics

logger = logging.getLogger(__name__)

GONE = (domain.TAKEN_DOWN, domain.HELD, domain.FAILED)  # nothing of it is live


def take_down(engine: Engine, delivery: domain.Delivery) -> None:
    """Delete one live copy on its platform."""
    now = engine.now()
    tries = _tries(delivery)
    claimed = replace(
        delivery,
        status=domain.TAKING_DOWN,
        reason=f"try:{tries + 1}",
        next_attempt_at=now + engine.policy.lease,  # the claim's lease
        at=now,
    )
    if not claim(engine, delivery, claimed, announce=True):
        return
    account = engine.accounts.get(delivery.account_id)
    adapter = engine.platforms.get(account.kind) if account else None
    if account is None or adapter is None or not delivery.external_id:
        _by_hand(engine, claimed, account, "the account or the post's id is gone")
        return
    credentials = None
    if account.kind != "folder":
        credentials = engine.tokens.get(account.account_id) if engine.tokens else None
        if credentials is None:
            _by_hand(engine, claimed, account, "the account is not connected")
            return
    dest = engine.destination(account, credentials)
    try:
        adapter.delete(dest, delivery.external_id)
    except AuthError as error:
        with settling(engine) as unit:
            accounts.needs_reconnect(unit, account, error.message)
            manual(
                unit, engine, claimed, account, f"the account's token: {error.message}"
            )
        return
    except PermanentError as error:
        _by_hand(engine, claimed, account, f"the platform refused: {error.message}")
        return
    except PlatformError as error:
        with settling(engine) as unit:
            _retry_later(unit, engine, claimed, account, error, tries + 1)
        return
    done_at = engine.now()  # after the platform's answer: later than the claim
    gone = replace(
        claimed,
        status=domain.TAKEN_DOWN,
        reason="",
        detail="",
        taken_down_at=done_at,
        next_attempt_at=None,
        at=done_at,
    )
    with settling(engine) as unit:
        owe(unit, gone)
    logger.info("post %s taken down from %s", gone.post_id, gone.account_id)
    maybe_complete(engine, gone.takedown_id)
    measure(engine, gone, account.kind)


def _tries(delivery: domain.Delivery) -> int:
    if delivery.reason.startswith("try:"):
        try:
            return int(delivery.reason.split(":", 1)[1])
        except ValueError:
            return 0
    return 0


def _retry_later(
    unit: Unit,
    engine: Engine,
    delivery: domain.Delivery,
    account: domain.Account,
    error: PlatformError,
    tries: int,
) -> None:
    now = engine.now()
    seconds = engine.policy.retry_seconds
    if tries > len(seconds):
        manual(unit, engine, delivery, account, f"still failing: {error.message}")
        return
    retry_at = now + timedelta(seconds=seconds[tries - 1])
    if isinstance(error, RateLimitedError) and error.retry_at:
        retry_at = max(retry_at, error.retry_at)
    if isinstance(error, AmbiguousError):
        retry_at = now + engine.policy.every  # deleting again is harmless
    owe(
        unit,
        replace(
            delivery,
            status=domain.TAKEDOWN_FAILED,
            reason=f"try:{tries}",
            detail=error.message,
            next_attempt_at=retry_at,
            at=now,
        ),
    )


def _by_hand(
    engine: Engine,
    delivery: domain.Delivery,
    account: domain.Account | None,
    why: str,
) -> None:
    with settling(engine) as unit:
        manual(unit, engine, delivery, account, why)


def manual(
    unit: Unit,
    engine: Engine,
    delivery: domain.Delivery,
    account: domain.Account | None,
    why: str,
) -> None:
    """A person must remove it: a task for the account's owner and the approver."""
    now = engine.now()
    task = replace(
        delivery,
        status=domain.MANUAL,
        reason="manual",
        detail=why,
        next_attempt_at=None,
        at=now,
    )
    owe(unit, task)
    if unit.takedowns is not None and unit.takedowns.open_manual(
        domain.ManualTask(
            task.post_id,
            task.account_id,
            task.school_id,
            why,
            now,
            owner=account.owner if account else "",
            url=task.url,
        )
    ):
        unit.emit(
            contracts.ManualTakedownOpened(
                post_id=task.post_id,
                school_id=task.school_id,
                account_id=task.account_id,
                platform=account.kind if account else task.target,
                owner=account.owner if account else "",
                url=task.url,
                reason="manual",
                detail=why,
            )
        )
    logger.warning(
        "post %s on %s must be taken down by hand: %s",
        task.post_id,
        task.account_id,
        why,
    )


def maybe_complete(engine: Engine, takedown_id: str | None) -> None:
    """Once every copy of a takedown is gone (or never went out), say so with the
    time from the change being saved to the last copy gone. Its own unit of work,
    after the copy's: it then sees every other worker's copies as committed."""
    if not takedown_id or engine.takedowns is None:
        return
    with settling(engine) as unit:
        takedowns = unit.takedowns
        copies = unit.deliveries.with_takedown(takedown_id)
        if takedowns is None or not copies or any(c.status not in GONE for c in copies):
            return
        takedown = takedowns.get(takedown_id)
        if takedown is None or takedown.completed_at is not None:
            return
        now = engine.now()
        if not takedowns.complete(takedown_id, now):
            return
        start = takedown.changed_at or takedown.requested_at
        gone = [c for c in copies if c.status == domain.TAKEN_DOWN]
        unit.emit(
            contracts.TakedownCompleted(
                takedown_id=takedown_id,
                school_id=takedown.school_id,
                pupil_id=takedown.pupil_id,
                reason=takedown.reason,
                posts=sorted({c.post_id for c in copies}),
                copies=len(gone),
                manual=sum(1 for c in gone if c.detail.startswith("removed by hand")),
                requested_at=takedown.requested_at,
                completed_at=now,
                seconds=max(0.0, (now - start).total_seconds()),
            )
        )


def measure(engine: Engine, gone: domain.Delivery, platform: str) -> None:
    """The copy's time from the change being saved (or the request) to gone, for
    the takedown-time metric. Never changes what happened: a failure is only logged."""
    if not gone.takedown_id or engine.takedowns is None or gone.taken_down_at is None:
        return
    try:
        takedown = engine.takedowns.get(gone.takedown_id)
        if takedown is not None:
            start = takedown.changed_at or takedown.requested_at
            seconds = (gone.taken_down_at - start).total_seconds()
            metrics.takedown_seconds(platform, seconds)
    except Exception:  # noqa: BLE001 - the copy is gone; only the metric is lost
        logger.warning("takedown %s: time not measured", gone.takedown_id)
