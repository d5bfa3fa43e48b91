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
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from services.publishing import domain
from services.publishing.delivery.engine import Engine, settling
from services.publishing.delivery.removal import maybe_complete, measure, take_down
from services.publishing.delivery.transitions import emit_owed, owe, updated
from services.publishing.ports import Takedowns, Unit
from shared import contracts

logger = logging.getLogger(__name__)

ESCALATE_AFTER = timedelta(hours=24)
REASONS = {
    "recorded": "withdrawn",
    "restricted": "no_longer_shown",  # never-publish or left: never said which
    "expired": "expired",
}
__all__ = ["maybe_complete", "take_down"]  # the delivery loop's part, kept here too


class TakedownError(Exception):
    """The post has no live copy to take down, or the task is not open."""


def scopes_of(event: contracts.ConsentChanged) -> list[domain.Scope]:
    """The consent scopes whose live copies must come down: each answer that is
    not a yes (the whole purpose, or one platform of it)."""
    return [(s.purpose, s.platform) for s in event.scopes if s.state != "granted"]


def consent_changed(
    unit: Unit, event: contracts.ConsentChanged, *, now: Callable[[], datetime]
) -> list[contracts.Message]:
    """Every live copy showing the pupil, on an account the change concerns, starts
    coming down; copies not sent yet are held. What it announces."""
    takedowns = unit.takedowns
    if not event.take_down or takedowns is None:
        return []
    shown = takedowns.posts_showing(event.school_id, event.pupil_id)
    if not shown:
        return []
    at = now()
    scopes = scopes_of(event)
    reason = REASONS.get(event.cause, event.cause)
    takedown = domain.Takedown(
        contracts.deterministic_id(
            "takedown",
            event.school_id,
            event.pupil_id,
            event.cause,
            (
                event.changed_at.isoformat()
                if event.changed_at
                else str(event.effective_on)
            ),
            *sorted(f"{p}/{pl or '*'}" for p, pl in scopes),
        ),
        event.school_id,
        reason,
        at,
        pupil_id=event.pupil_id,
        changed_at=event.changed_at,
    )
    out: list[contracts.Message] = []
    for post_id, round_ in shown:
        affected = _mark_post(unit, takedowns, takedown, post_id, round_, scopes)
        if affected:
            out.append(
                contracts.TakedownRequested(
                    takedown_id=takedown.takedown_id,
                    post_id=post_id,
                    school_id=event.school_id,
                    accounts=sorted(affected),
                    reason=reason,
                    pupil_id=event.pupil_id,
                )
            )
    if out:
        logger.info(
            "takedown %s: %d post(s) showing a pupil", takedown.takedown_id, len(out)
        )
    return out


def _mark_post(
    unit: Unit,
    takedowns: Takedowns,
    takedown: domain.Takedown,
    post_id: str,
    round_: int,
    scopes: list[domain.Scope],
) -> list[str]:
    """The post's copies of that round on the accounts concerned, marked; their
    account ids. The takedown is kept with its first copy."""
    affected = []
    for marker in unit.deliveries.for_post(post_id):
        if marker.round != round_:
            continue
        if not domain.affected(unit.accounts.get(marker.account_id), scopes):
            continue
        changed = _mark(marker, takedown.takedown_id, takedown.requested_at)
        if changed is None:
            continue
        takedowns.open(takedown)  # once: a known takedown is left as it is
        if changed != marker:
            owe(unit, changed)
        affected.append(marker.account_id)
    return affected


def on_request(
    engine: Engine, post_id: str, reason: str, by: str
) -> list[domain.Delivery]:
    """A person takes a post down (the policies: staff may be required to remove
    postings): every live copy comes down, nothing more is sent."""
    if not reason.strip():
        raise TakedownError("say why the post is taken down")
    now = engine.now()
    with settling(engine) as unit:
        if unit.takedowns is None:
            raise TakedownError("takedowns are not kept here")
        markers = unit.deliveries.for_post(post_id)
        takedown_id = contracts.deterministic_id(
            "takedown", post_id, by, now.isoformat()
        )
        changed = [(m, _mark(m, takedown_id, now)) for m in markers]
        coming_down = [(m, c) for m, c in changed if c is not None]
        if not any(m.status in domain.UNSETTLED for m, _ in coming_down):
            raise TakedownError("the post has no live copy to take down")
        school = markers[0].school_id
        unit.takedowns.open(
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
            unit.deliveries.record(c)
            emit_owed(unit, c, [updated(c), *([request] if n == 0 else [])])
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


# --- people's part --------------------------------------------------------------------


def close_manual(
    engine: Engine, post_id: str, account_id: str, by: str, confirmation: str
) -> domain.Delivery:
    """The owner (or the approver) confirms the copy is no longer visible."""
    if not confirmation.strip():
        raise TakedownError("confirm that the post is no longer on the platform")
    with settling(engine) as unit:
        if unit.takedowns is None:
            raise TakedownError("takedowns are not kept here")
        now = engine.now()
        task = unit.takedowns.close_manual(post_id, account_id, by, confirmation, now)
        delivery = unit.deliveries.get(post_id, account_id)
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
        unit.deliveries.record(gone)
        emit_owed(
            unit,
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
    measure(engine, gone, gone.target or "unknown")
    return gone


def escalate_due(engine: Engine, after: timedelta = ESCALATE_AFTER) -> int:
    """Manual takedowns still open after ``after``: escalated once each (each in its
    own unit of work)."""
    if engine.takedowns is None:
        return 0
    now = engine.now()
    count = 0
    for task in engine.takedowns.manual():
        if task.escalated_at is not None or now - task.opened_at < after:
            continue
        with settling(engine) as unit:
            if unit.takedowns is None or not unit.takedowns.escalate(
                task.post_id, task.account_id, now
            ):
                continue
            unit.emit(
                contracts.ManualTakedownEscalated(
                    post_id=task.post_id,
                    school_id=task.school_id,
                    account_id=task.account_id,
                    owner=task.owner,
                    opened_at=task.opened_at,
                    hours_open=round((now - task.opened_at).total_seconds() / 3600, 1),
                )
            )
            count += 1
    return count
