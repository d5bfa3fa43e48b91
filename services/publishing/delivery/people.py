"""A person's actions on a delivery: send a failed or waiting one again, or say where
an unconfirmed one went live (or that it did not). Each is one unit of work."""

from __future__ import annotations

from dataclasses import replace

from services.publishing import domain
from services.publishing.delivery.engine import Engine, settling
from services.publishing.delivery.transitions import coming_down, owe, published


class DeliveryStateError(Exception):
    """The delivery is not in a state this action applies to."""


def retry(engine: Engine, post_id: str, account_id: str) -> domain.Delivery:
    """An approver or admin sends a failed or waiting delivery again now."""
    with settling(engine) as unit:
        delivery = unit.deliveries.get(post_id, account_id)
        if delivery is None or delivery.status not in (domain.FAILED, domain.WAITING):
            raise DeliveryStateError("only a failed or waiting delivery can be retried")
        now = engine.now()
        again = replace(
            delivery,
            status=domain.PENDING,
            reason="",
            detail="",
            attempts=0,
            next_attempt_at=now,
            at=now,
        )
        owe(unit, again)
    return again


def confirm(
    engine: Engine, post_id: str, account_id: str, live_url: str | None
) -> domain.Delivery:
    """A person checked an unconfirmed delivery on the platform: live at this URL,
    or not there (None: it is sent again)."""
    with settling(engine) as unit:
        delivery = unit.deliveries.get(post_id, account_id)
        if delivery is None or delivery.status != domain.UNCONFIRMED:
            raise DeliveryStateError("only an unconfirmed delivery can be confirmed")
        now = engine.now()
        if not live_url:
            again = replace(
                delivery, status=domain.PENDING, reason="", next_attempt_at=now, at=now
            )
            owe(unit, again)
            return again
        done = replace(
            delivery,
            status=domain.LIVE,
            url=live_url,
            location=live_url,
            reason="confirmed_by_a_person",
            live_at=now,
            at=now,
            next_attempt_at=None,
        )
        owe(unit, done, [published(done, unit.accounts.get(account_id))])
        if done.takedown_id:
            done = coming_down(done, now, now)
            owe(unit, done)
    return done
