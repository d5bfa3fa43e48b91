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
from shared import bus, logs
from shared.config import Settings


def build_worker(settings: Settings, ports: Ports) -> bus.Worker:
    """Audit's worker (also used by the embedded runner): every type to the journal."""
    return bus.Worker(
        settings.amqp_url,
        SERVICE,
        handler_map(ports),
        prefetch=settings.prefetch,
        queue_keys=QUEUE_KEYS,
        fallback=envelope_handler(ports),
    )


def main() -> None:
    settings = Settings.from_env(SERVICE)
    logs.configure(SERVICE, settings.log_level)
    build_worker(settings, real_ports(settings)).run()


if __name__ == "__main__":
    main()
