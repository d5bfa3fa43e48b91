"""The transactional outbox relay: sends what intake recorded but could not publish.

A post is recorded together with its ``PostSubmitted`` envelope in one transaction; the
request then tries to publish it. If the broker is down the row stays pending and this
relay publishes it later, with the same envelope id, so nothing is lost or doubled.
"""

from __future__ import annotations

import threading
from typing import Protocol

from services.intake.ports import PostLedger
from shared import contracts
from shared import outbox as relay
from shared.bus import Publisher

RELAY_SECONDS = 3.0


class HasOutbox(Protocol):
    @property
    def ledger(self) -> PostLedger: ...

    @property
    def publisher(self) -> Publisher: ...


def send(ports: HasOutbox, envelope: contracts.Envelope) -> bool:
    """Publish one recorded envelope and mark it sent; False (pending) on failure."""
    return relay.send(ports.ledger, ports.publisher, envelope)


def relay_outbox(ports: HasOutbox) -> int:
    """Publish every pending outbox envelope, oldest first; the number sent."""
    return relay.relay(ports.ledger, ports.publisher)


def relay_forever(
    ports: HasOutbox, stop: threading.Event, interval: float = RELAY_SECONDS
) -> None:
    """Run the relay every ``interval`` seconds until ``stop`` is set."""
    relay.every(interval, lambda: relay_outbox(ports), stop, "intake outbox relay")
