"""The transactional outbox relay: sends what intake recorded but could not publish.

A post is recorded together with its ``PostSubmitted`` envelope in one transaction; the
request then tries to publish it. If the broker is down the row stays pending and this
relay publishes it later, with the same envelope id, so nothing is lost or doubled.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from kombu.exceptions import KombuError

from services.intake.ports import PostLedger
from shared import contracts
from shared.bus import Publisher, UnroutableError

logger = logging.getLogger(__name__)

# What a publisher raises when the broker cannot take a message right now.
PUBLISH_ERRORS: tuple[type[Exception], ...] = (OSError, KombuError, UnroutableError)
RELAY_SECONDS = 3.0


class HasOutbox(Protocol):
    @property
    def ledger(self) -> PostLedger: ...

    @property
    def publisher(self) -> Publisher: ...


def send(ports: HasOutbox, envelope: contracts.Envelope) -> bool:
    """Publish one recorded envelope and mark it sent; False (pending) on failure."""
    try:
        ports.publisher.publish([envelope])
    except PUBLISH_ERRORS as exc:
        logger.warning(
            "broker unavailable; %s %s stays in the outbox (%s)",
            envelope.type,
            envelope.id,
            type(exc).__name__,
        )
        return False
    ports.ledger.mark_sent([envelope.id])
    return True


def relay_outbox(ports: HasOutbox) -> int:
    """Publish every pending outbox envelope, oldest first; the number sent.

    Stops at the first failure (the broker is down: the rest would fail too).
    """
    sent = 0
    for envelope in ports.ledger.pending():
        if not send(ports, envelope):
            break
        sent += 1
    if sent:
        logger.info("outbox relay sent %d message(s)", sent)
    return sent


def relay_forever(
    ports: HasOutbox, stop: threading.Event, interval: float = RELAY_SECONDS
) -> None:
    """Run the relay every ``interval`` seconds until ``stop`` is set."""
    while not stop.is_set():
        try:
            relay_outbox(ports)
        except Exception:  # noqa: BLE001 - a background loop must survive a DB hiccup
            logger.exception("outbox relay failed; retrying")
        stop.wait(interval)
