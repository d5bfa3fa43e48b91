"""Intake's worker process: the outbox relay and the overdue-deletion sweep."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

from services.intake import devices, outbox
from services.intake.bootstrap import SERVICE, Ports, handler_map, real_ports
from shared import runner


def background_tasks(ports: Ports) -> list[Callable[[threading.Event], None]]:
    """Loops run beside the worker: the outbox relay and the overdue sweep."""
    tasks: list[Callable[[threading.Event], None]] = [
        partial(outbox.relay_forever, ports)
    ]
    if ports.devices is not None:
        tasks.append(partial(devices.sweep_forever, ports))
    return tasks


SPEC = runner.ServiceSpec(
    name=SERVICE,
    make_ports=real_ports,
    handlers=handler_map,  # consumes nothing yet: the process runs the tasks
    background=background_tasks,
)


def main() -> None:
    runner.run(SPEC)


if __name__ == "__main__":
    main()
