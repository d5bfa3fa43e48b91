"""Background tasks of the consent worker: the outbox relay and the expiry sweep.

Every change is written with its ``ConsentChanged`` envelope in one transaction; the
relay publishes pending envelopes (same ids on a retry: nothing lost, nothing twice).
The sweep announces consents that have expired, once each (deterministic ids).
"""

from __future__ import annotations

import logging
import threading

from kombu.exceptions import KombuError

from services.consent.bootstrap import Ports
from shared.bus import UnroutableError

logger = logging.getLogger(__name__)

PUBLISH_ERRORS: tuple[type[Exception], ...] = (OSError, KombuError, UnroutableError)
RELAY_SECONDS = 3.0
SWEEP_SECONDS = 3600.0  # hourly: expiries are announced on the day they happen


def relay_outbox(ports: Ports, batch: int = 500) -> int:
    """Publish pending envelopes oldest first; stop at the first broker failure."""
    if ports.publisher is None:
        return 0
    sent = 0
    while True:
        pending = ports.store.pending(batch)
        if not pending:
            break
        for envelope in pending:
            try:
                ports.publisher.publish([envelope])
            except PUBLISH_ERRORS as exc:
                logger.warning(
                    "broker unavailable; %s stays in the outbox (%s)",
                    envelope.id,
                    type(exc).__name__,
                )
                return sent
            ports.store.mark_sent([envelope.id])
            sent += 1
    if sent:
        logger.info("consent outbox relay sent %d message(s)", sent)
    return sent


def sweep_expired(ports: Ports) -> int:
    announced: int = ports.store.sweep_expired(ports.today())
    if announced:
        logger.info("expiry sweep: %d consent(s) expired", announced)
    return announced


def relay_forever(
    ports: Ports, stop: threading.Event, interval: float = RELAY_SECONDS
) -> None:
    while not stop.is_set():
        try:
            relay_outbox(ports)
        except Exception:  # noqa: BLE001 - a background loop must survive a DB hiccup
            logger.exception("consent outbox relay failed; retrying")
        stop.wait(interval)


def sweep_forever(
    ports: Ports, stop: threading.Event, interval: float = SWEEP_SECONDS
) -> None:
    while not stop.is_set():
        try:
            sweep_expired(ports)
        except Exception:  # noqa: BLE001 - a background loop must survive a DB hiccup
            logger.exception("expiry sweep failed; retrying")
        stop.wait(interval)
