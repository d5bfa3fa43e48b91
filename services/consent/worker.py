"""The consent worker: decides which detected faces may be shown, keeps its copy of
publishing's accounts and answers the final gate; beside it, the outbox relay and
the expiry sweep."""

from __future__ import annotations

import threading
from collections.abc import Callable

from services.consent import use_cases
from services.consent.bootstrap import SERVICE, Ports, handler_map, real_ports
from shared import contracts, outbox, runner

SWEEP_SECONDS = 3600.0  # hourly: expiries are announced on the day they happen


def sweep_expired(ports: Ports) -> int:
    """Announce the consents that have expired (once each)."""
    return use_cases.sweep_expired(ports.relayed_unit(), ports.today(), ports.policy)


def sweep_forever(
    ports: Ports, stop: threading.Event, interval: float = SWEEP_SECONDS
) -> None:
    outbox.every(interval, lambda: sweep_expired(ports), stop, "expiry sweep")


def background_tasks(ports: Ports) -> list[Callable[[threading.Event], None]]:
    """Loops run beside the worker: the outbox relay and the expiry sweep."""
    tasks: list[Callable[[threading.Event], None]] = []
    if ports.relay is not None:
        tasks.append(ports.relay)
    tasks.append(lambda stop: sweep_forever(ports, stop))
    return tasks


SPEC = runner.ServiceSpec(
    name=SERVICE,
    make_ports=real_ports,
    handles=(
        contracts.FacesDetected,
        contracts.AccountChanged,
        contracts.VerifyPostConsent,
    ),
    handlers=handler_map,
    background=background_tasks,
)


def main() -> None:
    runner.run(SPEC)


if __name__ == "__main__":
    main()
