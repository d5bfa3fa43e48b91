"""Intake's worker process: the outbox relay and the overdue-deletion sweep (intake
consumes no messages)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from services.intake import handlers
from services.intake.bootstrap import SERVICE, Ports, handler_map, real_ports
from shared import outbox, runner

SWEEP_SECONDS = 20.0


def background_tasks(ports: Ports) -> list[Callable[[threading.Event], None]]:
    """Loops run beside the worker: the outbox relay and the overdue sweep."""

    def sweep(stop: threading.Event) -> None:
        outbox.every(
            SWEEP_SECONDS, lambda: handlers.sweep_overdue(ports), stop, "overdue sweep"
        )

    return [*([ports.relay] if ports.relay else []), sweep]


SPEC = runner.ServiceSpec(
    name=SERVICE,
    make_ports=real_ports,
    handlers=handler_map,  # consumes nothing: the process runs the tasks
    background=background_tasks,
)


def main() -> None:
    runner.run(SPEC)


if __name__ == "__main__":
    main()
