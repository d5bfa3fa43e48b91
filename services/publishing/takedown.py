"""Taking live posts down: when a parent withdraws, a pupil is flagged never to be
published (or leaves, or consent expires, where the trust chose it), or a person asks.

Per copy: ``live -> taking_down -> taken_down (time)``; a platform that answers
"not now" -> ``takedown_failed`` (retried on schedule); a platform that cannot or will
not delete it (no API for it, a refusal, an expired token) ->
``manual_takedown_required``: a task for the account's designated owner and the
approver, with the link, escalated when still open after ``ESCALATE_AFTER``; closing it
asks for a confirmation and is in the trail. Deleting is idempotent on every platform
(a post already gone counts as deleted), so a worker killed mid-delete just deletes
again: no lost takedown, no double-delete error.

Copies not live yet are held (never sent); a copy whose creation answer is still being
looked for is taken down as soon as it is found.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from services.publishing import domain
from services.publishing.delivery import (
    Engine,
    _every,
    needs_reconnect,
    updated,
)
from services.publishing.platforms.base import (
    AmbiguousError,
    AuthError,
    PermanentError,
    PlatformError,
    RateLimitedError,
)
from services.publishing.ports import (
    AccountDirectory,
    DeliveryLog,
    Takedowns,
)
from shared import contracts, metrics

logger = logging.getLogger(__name__)

ESCALATE_AFTER = timedelta(hours=24)
REASONS = {
    "recorded": "withdrawn",
    "restricted": "no_longer_shown",  # never-publish or left: never said which
    "expired": "expired",
}


class TakedownError(Exception):
    """The post has no live copy to take down, or the task is not open."""


def scopes_of(event: contracts.ConsentChanged) -> list[domain.Scope]:
    """The consent scopes whose live copies must come down: each answer that is
    not a yes (the whole purpose, or one platform of it)."""
    return [(s.purpose, s.platform) for s in event.scopes if s.state != "granted"]


def consent_changed(
    event: contracts.ConsentChanged,
    *,
    takedowns: Takedowns,
    deliveries: DeliveryLog,
    accounts: AccountDirectory,
    now: datetime,
) -> list[contracts.Message]:
    """Every live copy showing the pupil, on an account the change concerns, starts
    coming down; copies not sent yet are held. What it announces."""
    if not event.take_down:
        return []
    shown = takedowns.posts_showing(event.school_id, event.pupil_id)
    if not shown:
        return []
    scopes = scopes_of(event)
    reason = REASONS.get(event.cause, event.cause)
    takedown_id = contracts.deterministic_id(
        "takedown",
        event.school_id,
        event.pupil_id,
        event.cause,
        (event.changed_at.isoformat() if event.changed_at else str(event.effective_on)),
        *sorted(f"{p}/{pl or '*'}" for p, pl in scopes),
    )
    out: list[contracts.Message] = []
    opened = False
    for post_id, round_ in shown:
        affected = []
        for marker in deliveries.for_post(post_id):
            if marker.round != round_:
                continue
            if not domain.affected(accounts.get(marker.account_id), scopes):
                continue
            changed = _mark(marker, takedown_id, now)
            if changed is None:
                continue
            if not opened:
                takedowns.open(
                    domain.Takedown(
                        takedown_id,
                        event.school_id,
                        reason,
                        now,
                        pupil_id=event.pupil_id,
                        changed_at=event.changed_at,
                    )
                )
                opened = True
            if changed != marker:
                deliveries.settle(changed, [updated(changed)])
            affected.append(marker.account_id)
        if affected:
            out.append(
                contracts.TakedownRequested(
                    takedown_id=takedown_id,
                    post_id=post_id,
                    school_id=event.school_id,
                    accounts=sorted(affected),
                    reason=reason,
                    pupil_id=event.pupil_id,
                )
            )
    if out:
        logger.info("takedown %s: %d post(s) showing a pupil", takedown_id, len(out))
    return out


def on_request(
    post_id: str,
    reason: str,
    by: str,
    *,
    takedowns: Takedowns,
    deliveries: DeliveryLog,
    now: datetime,
) -> list[domain.Delivery]:
    """A person takes a post down (the policies: staff may be required to remove
    postings): every live copy comes down, nothing more is sent."""
    if not reason.strip():
        raise TakedownError("say why the post is taken down")
    markers = deliveries.for_post(post_id)
    takedown_id = contracts.deterministic_id("takedown", post_id, by, now.isoformat())
    changed = [(m, _mark(m, takedown_id, now)) for m in markers]
    coming_down = [(m, c) for m, c in changed if c is not None]
    if not any(m.status in domain.UNSETTLED for m, _ in coming_down):
        raise TakedownError("the post has no live copy to take down")
    school = markers[0].school_id
    takedowns.open(
        domain.Takedown(
            takedown_id, school, "on_request", now, detail=reason.strip(), by=by
        )
    )
    request = contracts.TakedownRequested(
        takedown_id=takedown_id,
        post_id=post_id,
        school_id=school,
        accounts=sorted(m.account_id for m, _ in coming_down),
        reason="on_request",
        detail=reason.strip(),
        by=by,
    )
    out = []
    for n, (_, c) in enumerate(coming_down):
        deliveries.settle(c, [updated(c), *([request] if n == 0 else [])])
        out.append(c)
    return out


def _mark(
    marker: domain.Delivery, takedown_id: str, now: datetime
) -> domain.Delivery | None:
    """The copy's new state for a takedown (None: nothing to do with it)."""
    if marker.status == domain.LIVE:
        return replace(
            marker,
            status=domain.TAKING_DOWN,
            takedown_id=takedown_id,
            reason="try:0",
            next_attempt_at=now,
            at=now,
        )
    if marker.status in (domain.SENDING, domain.RECONCILING, domain.UNCONFIRMED):
        # it may be live: taken down as soon as it is found
        return replace(marker, takedown_id=takedown_id)
    if marker.status in (domain.PENDING, domain.WAITING):
        return replace(
            marker,
            status=domain.HELD,
            reason="taken_down_before_live",
            takedown_id=takedown_id,
            next_attempt_at=None,
            at=now,
        )
    if marker.status in (domain.TAKING_DOWN, domain.TAKEDOWN_FAILED, domain.MANUAL):
        return marker  # already coming down: announce it again, change nothing
    return None  # taken down, failed, held: nothing live


# --- the delivery loop's part ------------------------------------------------------


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
    if not engine.deliveries.claim(delivery, claimed):
        return
    engine.deliveries.settle(claimed, [updated(claimed)])
    account = engine.accounts.get(delivery.account_id)
    adapter = engine.platforms.get(account.kind) if account else None
    if account is None or adapter is None or not delivery.external_id:
        _manual(engine, claimed, account, "the account or the post's id is gone")
        return
    credentials = None
    if account.kind != "folder":
        credentials = engine.tokens.get(account.account_id) if engine.tokens else None
        if credentials is None:
            _manual(engine, claimed, account, "the account is not connected")
            return
    dest = engine.destination(account, credentials)
    try:
        adapter.delete(dest, delivery.external_id)
    except AuthError as error:
        needs_reconnect(engine, account, error.message)
        _manual(engine, claimed, account, f"the account's token: {error.message}")
        return
    except PermanentError as error:
        _manual(engine, claimed, account, f"the platform refused: {error.message}")
        return
    except PlatformError as error:
        _retry_later(engine, claimed, account, error, tries + 1)
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
    engine.deliveries.settle(gone, [updated(gone)])
    logger.info("post %s taken down from %s", gone.post_id, gone.account_id)
    maybe_complete(engine, gone.takedown_id)
    _measure(engine, gone, account.kind)


def _tries(delivery: domain.Delivery) -> int:
    if delivery.reason.startswith("try:"):
        try:
            return int(delivery.reason.split(":", 1)[1])
        except ValueError:
            return 0
    return 0


def _retry_later(
    engine: Engine,
    delivery: domain.Delivery,
    account: domain.Account,
    error: PlatformError,
    tries: int,
) -> None:
    now = engine.now()
    seconds = engine.policy.retry_seconds
    if tries > len(seconds):
        _manual(engine, delivery, account, f"still failing: {error.message}")
        return
    retry_at = now + timedelta(seconds=seconds[tries - 1])
    if isinstance(error, RateLimitedError) and error.retry_at:
        retry_at = max(retry_at, error.retry_at)
    if isinstance(error, AmbiguousError):
        retry_at = now + _every(engine)  # deleting again is harmless
    failed = replace(
        delivery,
        status=domain.TAKEDOWN_FAILED,
        reason=f"try:{tries}",
        detail=error.message,
        next_attempt_at=retry_at,
        at=now,
    )
    engine.deliveries.settle(failed, [updated(failed)])


def _manual(
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
    engine.deliveries.settle(task, [updated(task)])
    if engine.takedowns is not None:
        engine.takedowns.open_manual(
            domain.ManualTask(
                task.post_id,
                task.account_id,
                task.school_id,
                why,
                now,
                owner=account.owner if account else "",
                url=task.url,
            ),
            contracts.ManualTakedownOpened(
                post_id=task.post_id,
                school_id=task.school_id,
                account_id=task.account_id,
                platform=account.kind if account else task.target,
                owner=account.owner if account else "",
                url=task.url,
                reason="manual",
                detail=why,
            ),
        )
    logger.warning(
        "post %s on %s must be taken down by hand: %s",
        task.post_id,
        task.account_id,
        why,
    )


def maybe_complete(engine: Engine, takedown_id: str | None) -> None:
    """Once every copy of a takedown is gone (or never went out), say so with the
    time from the change being saved to the last copy gone."""
    if not takedown_id or engine.takedowns is None:
        return
    copies = engine.deliveries.with_takedown(takedown_id)
    done = (domain.TAKEN_DOWN, domain.HELD, domain.FAILED)
    if not copies or any(c.status not in done for c in copies):
        return
    takedown = engine.takedowns.get(takedown_id)
    if takedown is None or takedown.completed_at is not None:
        return
    now = engine.now()
    start = takedown.changed_at or takedown.requested_at
    gone = [c for c in copies if c.status == domain.TAKEN_DOWN]
    engine.takedowns.complete(
        takedown_id,
        now,
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
        ),
    )


def _measure(engine: Engine, gone: domain.Delivery, platform: str) -> None:
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


# --- people's part --------------------------------------------------------------------


def close_manual(
    engine: Engine, post_id: str, account_id: str, by: str, confirmation: str
) -> domain.Delivery:
    """The owner (or the approver) confirms the copy is no longer visible."""
    if not confirmation.strip():
        raise TakedownError("confirm that the post is no longer on the platform")
    if engine.takedowns is None:
        raise TakedownError("takedowns are not kept here")
    now = engine.now()
    task = engine.takedowns.close_manual(post_id, account_id, by, confirmation, now)
    delivery = engine.deliveries.get(post_id, account_id)
    if task is None or delivery is None:
        raise TakedownError("no open manual takedown for this post and account")
    gone = replace(
        delivery,
        status=domain.TAKEN_DOWN,
        reason="",
        detail=f"removed by hand by {by}",
        taken_down_at=now,
        next_attempt_at=None,
        at=now,
    )
    engine.deliveries.settle(
        gone,
        [
            updated(gone),
            contracts.ManualTakedownClosed(
                post_id=post_id,
                school_id=delivery.school_id,
                account_id=account_id,
                closed_by=by,
                confirmation=confirmation.strip()[:500],
            ),
        ],
    )
    maybe_complete(engine, gone.takedown_id)
    _measure(engine, gone, gone.target or "unknown")
    return gone


def escalate_due(engine: Engine, after: timedelta = ESCALATE_AFTER) -> int:
    """Manual takedowns still open after ``after``: escalated once each."""
    if engine.takedowns is None:
        return 0
    now = engine.now()
    count = 0
    for task in engine.takedowns.manual():
        if task.escalated_at is not None or now - task.opened_at < after:
            continue
        if engine.takedowns.escalate(
            task.post_id,
            task.account_id,
            now,
            contracts.ManualTakedownEscalated(
                post_id=task.post_id,
                school_id=task.school_id,
                account_id=task.account_id,
                owner=task.owner,
                opened_at=task.opened_at,
                hours_open=round((now - task.opened_at).total_seconds() / 3600, 1),
            ),
        ):
            count += 1
    return count
