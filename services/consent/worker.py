"""The consent worker: decides which detected faces may be shown; relays
ConsentChanged from the outbox and sweeps expiries in background threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

from services.consent import outbox
from services.consent.bootstrap import SERVICE, Ports, handler_map, real_ports
from shared import contracts, runner


def background_tasks(ports: Ports) -> list[Callable[[threading.Event], None]]:
    """Loops run beside the worker: the outbox relay and the expiry sweep."""
    return [partial(outbox.relay_forever, ports), partial(outbox.sweep_forever, ports)]


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
