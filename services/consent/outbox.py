"""Background tasks of the consent worker: the outbox relay and the expiry sweep.

Every change is written with its ``ConsentChanged`` envelope in one transaction; the
relay publishes pending envelopes (same ids on a retry: nothing lost, nothing twice).
The sweep announces consents that have expired, once each (deterministic ids).
"""

from __future__ import annotations

import logging
import threading

from services.consent.bootstrap import Ports
from shared import outbox as relay

logger = logging.getLogger(__name__)

RELAY_SECONDS = 3.0
SWEEP_SECONDS = 3600.0  # hourly: expiries are announced on the day they happen


def relay_outbox(ports: Ports, batch: int = 500) -> int:
    """Publish pending envelopes oldest first; stop at the first broker failure."""
    if ports.publisher is None:
        return 0
    return relay.relay(ports.store, ports.publisher, batch)


def sweep_expired(ports: Ports) -> int:
    announced: int = ports.store.sweep_expired(ports.today())
    if announced:
        logger.info("expiry sweep: %d consent(s) expired", announced)
    return announced


def relay_forever(
    ports: Ports, stop: threading.Event, interval: float = RELAY_SECONDS
) -> None:
    relay.every(interval, lambda: relay_outbox(ports), stop, "consent outbox relay")


def sweep_forever(
    ports: Ports, stop: threading.Event, interval: float = SWEEP_SECONDS
) -> None:
    relay.every(interval, lambda: sweep_expired(ports), stop, "expiry sweep")
