"""The transactional outbox relay, and the loop that runs a worker's periodic jobs.

A service that changes state outside its worker (an HTTP request, a sweep) writes the
envelopes it owes in the same transaction as the change. ``send`` publishes one at once
and marks it sent; ``relay`` publishes whatever is still pending, oldest first, with the
same ids, so a broker outage loses nothing and a retry doubles nothing (consumers
recognise the id). ``every`` runs such jobs in a background thread until stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kombu.exceptions import KombuError

from shared import contracts
from shared.bus import Publisher, UnroutableError

logger = logging.getLogger(__name__)

# What a publisher raises when the broker cannot take a message right now.
PUBLISH_ERRORS: tuple[type[Exception], ...] = (OSError, KombuError, UnroutableError)


class Outbox(Protocol):
    def pending(self, limit: int = 100) -> list[contracts.Envelope]:
        """Envelopes recorded but not yet confirmed by the broker, oldest first."""

    def mark_sent(self, envelope_ids: Sequence[str]) -> None:
        """Record that the broker confirmed these envelopes."""


def send(outbox: Outbox, publisher: Publisher, envelope: contracts.Envelope) -> bool:
    """Publish one recorded envelope and mark it sent; False (still pending) if the
    broker cannot take it now."""
    try:
        publisher.publish([envelope])
    except PUBLISH_ERRORS as exc:
        logger.warning(
            "broker unavailable; %s %s stays in the outbox (%s)",
            envelope.type,
            envelope.id,
            type(exc).__name__,
        )
        return False
    outbox.mark_sent([envelope.id])
    return True


def relay(outbox: Outbox, publisher: Publisher, batch: int = 100) -> int:
    """Publish every pending envelope, oldest first; the number sent. Stops at the
    first failure (the broker is down: the rest would fail too)."""
    sent = 0
    while pending := outbox.pending(batch):
        for envelope in pending:
            if not send(outbox, publisher, envelope):
                return sent
            sent += 1
    if sent:
        logger.info("outbox relay sent %d message(s)", sent)
    return sent


def every(
    seconds: float, job: Callable[[], Any], stop: threading.Event, what: str
) -> None:
    """Run ``job`` now and then every ``seconds`` until ``stop`` is set; a failure is
    logged and retried next time (a background loop must survive a database hiccup)."""
    while not stop.is_set():
        try:
            job()
        except Exception:  # noqa: BLE001 - the loop is the one place that may
            logger.exception("%s failed; retrying in %ss", what, seconds)
        stop.wait(seconds)
