"""Intake's worker process: the outbox relay and the overdue-deletion sweep."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from functools import partial
from types import FrameType

from services.intake import devices, outbox
from services.intake.bootstrap import SERVICE, Ports, handler_map, real_ports
from shared import bus, logs
from shared.config import Settings

logger = logging.getLogger(__name__)


def background_tasks(ports: Ports) -> list[Callable[[threading.Event], None]]:
    """Loops run beside the worker: the outbox relay and the overdue sweep."""
    tasks: list[Callable[[threading.Event], None]] = [
        partial(outbox.relay_forever, ports)
    ]
    if ports.devices is not None:
        tasks.append(partial(devices.sweep_forever, ports))
    return tasks


def main() -> None:
    settings = Settings.from_env(SERVICE)
    logs.configure(SERVICE, settings.log_level)
    ports = real_ports(settings)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    loops = [
        threading.Thread(target=task, args=(stop,), name="intake-task", daemon=True)
        for task in background_tasks(ports)
    ]
    for loop in loops:
        loop.start()
    handlers = handler_map(ports)
    if handlers:
        bus.run_worker(
            settings.amqp_url, SERVICE, handlers, prefetch=settings.prefetch, stop=stop
        )
    else:
        logger.info("intake worker running the outbox relay and the overdue sweep")
        stop.wait()
    stop.set()
    for loop in loops:
        loop.join(timeout=10)


if __name__ == "__main__":
    main()
