"""The transactional outbox relay, and the loop that runs a worker's periodic jobs.

A service that changes state outside its worker (an HTTP request, a sweep) writes the
envelopes it owes in the same transaction as the change. ``send`` publishes one at once
and marks it sent; ``relay`` publishes whatever is still pending, oldest first, with the
same ids, so a broker outage loses nothing (consumers recognise a repeated id). Each
envelope is *claimed* while it is published (a row lock that other relays skip), so
the request's ``send`` and a relay in another process never both send it.
``every`` runs such jobs in a background thread until stopped.
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


Publish = Callable[[contracts.Envelope], bool]


class Outbox(Protocol):
    def claim(
        self, publish: Publish, limit: int = 100, only: Sequence[str] | None = None
    ) -> tuple[int, bool]:
        """Hold up to ``limit`` pending envelopes no other relay holds (of ``only``,
        if given), oldest first; ``publish`` each until one fails; mark the published
        ones sent. Returns (how many were sent, whether one failed)."""


def send(outbox: Outbox, publisher: Publisher, envelope: contracts.Envelope) -> bool:
    """Publish one recorded envelope and mark it sent; False (still pending) if the
    broker cannot take it now. True too if a relay holds or already sent it."""
    _, failed = outbox.claim(_publisher(publisher), 1, only=[envelope.id])
    return not failed


def relay(outbox: Outbox, publisher: Publisher, batch: int = 100) -> int:
    """Publish every pending envelope, oldest first; the number sent. Stops at the
    first failure (the broker is down: the rest would fail too)."""
    total = 0
    while True:
        sent, failed = outbox.claim(_publisher(publisher), batch)
        total += sent
        if failed or sent < batch:
            break
    if total:
        logger.info("outbox relay sent %d message(s)", total)
    return total


def _publisher(publisher: Publisher) -> Publish:
    def publish(envelope: contracts.Envelope) -> bool:
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
        return True

    return publish


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
