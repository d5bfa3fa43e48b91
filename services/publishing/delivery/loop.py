"""The delivery loop's turn: every due delivery is worked on (sent, reconciled,
taken down or held), one bad delivery never stopping the rest."""

from __future__ import annotations

import logging
from dataclasses import replace

from services.publishing import domain
from services.publishing.delivery.attempt import attempt
from services.publishing.delivery.engine import Engine, SimulatedCrashError
from services.publishing.delivery.reconcile import reconcile
from services.publishing.delivery.removal import take_down
from services.publishing.delivery.transitions import settle

logger = logging.getLogger(__name__)


def run_due(engine: Engine, limit: int = 50) -> int:
    """Work on every delivery that is due; the number worked on."""
    now = engine.now()
    done = 0
    for delivery in engine.deliveries.due(now, engine.policy.lease, limit):
        try:
            step(engine, delivery)
        except SimulatedCrashError:
            raise
        except Exception:  # noqa: BLE001 - one bad delivery must not stop the rest
            logger.exception(
                "delivery of post %s to %s failed unexpectedly; it stays as it was",
                delivery.post_id,
                delivery.account_id,
            )
        done += 1
    return done


def step(engine: Engine, delivery: domain.Delivery) -> None:
    if delivery.status in (domain.TAKING_DOWN, domain.TAKEDOWN_FAILED):
        take_down(engine, delivery)
        return
    approval = engine.approvals.get(delivery.post_id, delivery.round)
    if approval is None or approval.event is None:
        settle(engine, replace(delivery, status=domain.FAILED, reason="no_approval"))
        return
    stopped = approval.state in (domain.RECALLED, domain.ROUND_HELD)
    if stopped and delivery.status not in (domain.SENDING, domain.RECONCILING):
        settle(
            engine,
            replace(
                delivery,
                status=domain.HELD,
                reason="recalled" if approval.state == domain.RECALLED else "held",
                next_attempt_at=None,
            ),
        )
        return
    if delivery.status in (domain.SENDING, domain.RECONCILING):
        reconcile(engine, delivery, approval)
    else:
        attempt(engine, delivery, approval)
