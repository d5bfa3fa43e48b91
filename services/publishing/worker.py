"""Publishing's worker: the final gate's messages; beside it, the delivery loop (sends
what is due, reconciles lost answers, takes copies down), the outbox relay, the
escalation of manual takedowns and the tokens' refresh."""

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

DELIVERY_SECONDS = 0.5
ESCALATION_SECONDS = 600.0


def deliver_forever(
    ports: Ports, stop: threading.Event, interval: float = DELIVERY_SECONDS
) -> None:
    """Send what is due (each claim and each settle its own unit of work: what it
    owes is sent after its commit, or by the relay)."""
    outbox.every(
        interval,
        lambda: delivery.run_due(delivery_engine(ports)),
        stop,
        "delivery loop",
    )


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
    tasks: list[Callable[[threading.Event], None]] = [
        partial(deliver_forever, ports),
        partial(escalate_forever, ports),
        partial(refresh.refresh_forever, ports),
    ]
    if ports.relay is not None:
        tasks.insert(1, ports.relay)
    return tasks


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
