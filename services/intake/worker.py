"""Intake's worker process: the outbox relay and the overdue-deletion sweep."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

from services.intake import devices, outbox
from services.intake.bootstrap import SERVICE, Ports, handler_map, real_ports
from shared import bus, runner
from shared.config import Settings


def background_tasks(ports: Ports) -> list[Callable[[threading.Event], None]]:
    """Loops run beside the worker: the outbox relay and the overdue sweep."""
    tasks: list[Callable[[threading.Event], None]] = [
        partial(outbox.relay_forever, ports)
    ]
    if ports.devices is not None:
        tasks.append(partial(devices.sweep_forever, ports))
    return tasks


def build_worker(settings: Settings, ports: Ports) -> bus.Worker | None:
    """Intake consumes no messages yet: its process runs the background tasks."""
    handlers = handler_map(ports)
    return runner.standard_worker(settings, SERVICE, handlers) if handlers else None


def main() -> None:
    runner.run(SERVICE, real_ports, build_worker, background_tasks)


if __name__ == "__main__":
    main()
