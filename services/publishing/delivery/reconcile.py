"""Reconciliation: a create whose answer was lost (or whose worker died after the
platform answered) is looked for on the platform before anything is sent again."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from services.publishing import accounts, domain, limits
from services.publishing.delivery.attempt import RESEND
from services.publishing.delivery.engine import Engine, settling
from services.publishing.delivery.removal import maybe_complete
from services.publishing.delivery.transitions import (
    claim,
    fail,
    owe,
    unconfirmed,
    went_live,
)
from services.publishing.platforms.base import (
    AmbiguousError,
    AuthError,
    LivePost,
    PlatformError,
    RecentPost,
    find_ours,
)
from services.publishing.ports import Approval, Unit

logger = logging.getLogger(__name__)

MAX_FAILED_LOOKS = 10  # the platform would not show its recent posts: ask a person


def reconcile(engine: Engine, delivery: domain.Delivery, approval: Approval) -> None:
    """Find a post whose creation answer was lost, before anything is sent again."""
    assert approval.event is not None
    now = engine.now()
    looks, failed = _counts(delivery)
    claimed = replace(
        delivery,
        status=domain.RECONCILING,
        reason=f"reconciling:{looks}:{failed}",
        sending_since=now,
        next_attempt_at=now + engine.policy.lease,
        at=now,
    )
    if not claim(engine, delivery, claimed, announce=False):
        return
    account = engine.accounts.get(delivery.account_id)
    adapter = engine.platforms.get(account.kind) if account else None
    if account is None or adapter is None:
        with settling(engine) as unit:
            unconfirmed(unit, claimed, "the account is gone: check the platform")
        return
    credentials = engine.tokens.get(account.account_id) if engine.tokens else None
    dest = engine.destination(account, credentials)
    caption = limits.with_footer(approval.event.caption, account.footer)
    since = (delivery.sending_since or delivery.at) - timedelta(minutes=10)
    try:
        found = find_ours(
            adapter.recent(dest, since), caption, len(approval.event.images)
        )
    except AmbiguousError as error:  # several posts match: a person must say
        with settling(engine) as unit:
            unconfirmed(unit, claimed, error.message)
        return
    except AuthError as error:
        with settling(engine) as unit:
            accounts.needs_reconnect(unit, account, error.message)
            _look_again(unit, engine, claimed, looks, "needs_reconnect", now)
        return
    except PlatformError as error:
        with settling(engine) as unit:
            _look_again(unit, engine, claimed, looks, error.kind, now)
        return
    _not_lost(engine, claimed, approval, account, found, looks, now)


def _not_lost(
    engine: Engine,
    claimed: domain.Delivery,
    approval: Approval,
    account: domain.Account,
    found: RecentPost | None,
    looks: int,
    now: datetime,
) -> None:
    """What the look found: live; not yet (look again later); not there after
    looking long enough (held if the round stopped, else sent again)."""
    if found is not None:
        logger.info("post %s found live on %s", claimed.post_id, account.account_id)
        with settling(engine) as unit:
            went_live(
                unit, engine, claimed, account, LivePost(found.external_id, found.url)
            )
        return
    if looks + 1 < len(engine.policy.reconcile_seconds):
        wait = engine.policy.reconcile_seconds[looks + 1]
        with settling(engine) as unit:
            owe(
                unit,
                replace(
                    claimed,
                    reason=f"reconciling:{looks + 1}",
                    next_attempt_at=now + timedelta(seconds=wait),
                ),
            )
        return
    # Looked long enough: it was not created. Sending again is safe, unless the
    # round was stopped meanwhile (consent changed): then it is held.
    if approval.state in (domain.RECALLED, domain.ROUND_HELD) or claimed.takedown_id:
        with settling(engine) as unit:
            owe(
                unit,
                replace(
                    claimed, status=domain.HELD, reason="held", next_attempt_at=None
                ),
            )
        maybe_complete(engine, claimed.takedown_id)
        return
    logger.info("post %s not on %s: sending again", claimed.post_id, account.account_id)
    with settling(engine) as unit:
        if claimed.attempts > len(engine.policy.retry_seconds):
            fail(unit, engine, claimed, "not_created", "the platform never created it")
            return
        owe(
            unit,
            replace(
                claimed,
                status=domain.PENDING,
                reason=RESEND,
                sending_since=None,
                next_attempt_at=now,
            ),
        )


def _counts(delivery: domain.Delivery) -> tuple[int, int]:
    """(looks that found nothing, looks the platform would not answer), kept in the
    reason as ``reconciling:<looks>[:<failed>]``."""
    if not delivery.reason.startswith("reconciling:"):
        return 0, 0
    parts = delivery.reason.split(":")[1:]
    try:
        return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return 0, 0


def _look_again(
    unit: Unit,
    engine: Engine,
    delivery: domain.Delivery,
    looks: int,
    why: str,
    now: datetime,
) -> None:
    """The platform would not list its recent posts this time: look again later; after
    ``MAX_FAILED_LOOKS`` a person is asked (never a second copy, never silence)."""
    failed = _counts(delivery)[1] + 1
    if failed >= MAX_FAILED_LOOKS:
        unconfirmed(
            unit,
            delivery,
            f"the platform would not list its recent posts ({why}): check whether "
            "the post is live",
        )
        return
    seconds = engine.policy.reconcile_seconds
    wait = max(seconds[min(looks, len(seconds) - 1)], engine.policy.wait_seconds)
    owe(
        unit,
        replace(
            delivery,
            reason=f"reconciling:{looks}:{failed}",
            detail=why,
            next_attempt_at=now + timedelta(seconds=wait),
        ),
    )
