"""The consent worker: decides which detected faces may be shown; relays
ConsentChanged from the outbox and sweeps expiries in background threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

from services.consent import outbox
from services.consent.bootstrap import SERVICE, Ports, handler_map, real_ports
from shared import bus, logs
from shared.config import Settings


def background_tasks(ports: Ports) -> list[Callable[[threading.Event], None]]:
    """Loops run beside the worker: the outbox relay and the expiry sweep."""
    return [partial(outbox.relay_forever, ports), partial(outbox.sweep_forever, ports)]


def main() -> None:
    settings = Settings.from_env(SERVICE)
    logs.configure(SERVICE, settings.log_level)
    ports = real_ports(settings)
    stop = threading.Event()
    threads = [
        threading.Thread(target=task, args=(stop,), daemon=True, name="consent-task")
        for task in background_tasks(ports)
    ]
    for thread in threads:
        thread.start()
    try:
        bus.run_worker(
            settings.amqp_url,
            SERVICE,
            handler_map(ports),
            prefetch=settings.prefetch,
            stop=stop,
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


if __name__ == "__main__":
    main()
