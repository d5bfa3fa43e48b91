"""The audit worker: binds ``#`` and records every envelope in the chain."""

from __future__ import annotations

from services.audit.bootstrap import (
    QUEUE_KEYS,
    SERVICE,
    Ports,
    envelope_handler,
    handler_map,
    real_ports,
)
from shared import bus, runner
from shared.config import Settings


def build_worker(settings: Settings, ports: Ports) -> bus.Worker:
    """Audit's worker (also used by the embedded runner): every type to the journal."""
    return runner.standard_worker(
        settings,
        SERVICE,
        handler_map(ports),
        queue_keys=QUEUE_KEYS,
        fallback=envelope_handler(ports),
    )


def main() -> None:
    runner.run(SERVICE, real_ports, build_worker)


if __name__ == "__main__":
    main()
