"""Publishing's worker: the final gate's messages; beside it, the delivery loop (sends
what is due, reconciles lost answers) and the outbox relay."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

from services.publishing import delivery, refresh, takedown
from services.publishing.bootstrap import (
    SERVICE,
    Ports,
    delivery_engine,
    handler_map,
    real_ports,
)
from shared import contracts, outbox, runner

RELAY_SECONDS = 2.0
DELIVERY_SECONDS = 0.5


def relay_outbox(ports: Ports) -> int:
    if ports.outbox is None or ports.publisher is None:
        return 0
    return outbox.relay(ports.outbox, ports.publisher)


def relay_forever(
    ports: Ports, stop: threading.Event, interval: float = RELAY_SECONDS
) -> None:
    outbox.every(interval, lambda: relay_outbox(ports), stop, "publishing outbox")


def deliver_due(ports: Ports) -> int:
    """Send what is due; relay at once what that owes (live, failed, updated)."""
    worked: int = delivery.run_due(delivery_engine(ports))
    if worked:
        relay_outbox(ports)
    return worked


def deliver_forever(
    ports: Ports, stop: threading.Event, interval: float = DELIVERY_SECONDS
) -> None:
    outbox.every(interval, lambda: deliver_due(ports), stop, "delivery loop")


ESCALATION_SECONDS = 600.0


def escalate_forever(
    ports: Ports, stop: threading.Event, interval: float = ESCALATION_SECONDS
) -> None:
    """Manual takedowns still open after 24 hours are escalated (once each)."""
    outbox.every(
        interval,
        lambda: takedown.escalate_due(delivery_engine(ports)),
        stop,
        "manual takedown escalation",
    )


def background_tasks(ports: Ports) -> list[Callable[[threading.Event], None]]:
    """Loops run beside the worker: deliveries (and takedowns), the outbox relay, the
    escalation of manual takedowns and the tokens' refresh."""
    return [
        partial(deliver_forever, ports),
        partial(relay_forever, ports),
        partial(escalate_forever, ports),
        partial(refresh.refresh_forever, ports),
    ]


SPEC = runner.ServiceSpec(
    name=SERVICE,
    make_ports=real_ports,
    handles=(
        contracts.PostApproved,
        contracts.PostConsentVerified,
        contracts.PostRecalled,
        contracts.ConsentChanged,  # takedowns
        contracts.CheckFit,
    ),
    handlers=handler_map,
    background=background_tasks,
)


def main() -> None:
    runner.run(SPEC)


if __name__ == "__main__":
    main()
