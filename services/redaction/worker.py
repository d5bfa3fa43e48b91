"""The redaction worker: detects, redacts and revises; sweeps expired originals."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from functools import partial
from types import FrameType

from services.redaction.bootstrap import (
    SERVICE,
    Ports,
    handler_map,
    real_ports,
    sweep_originals,
)
from shared import bus, logs, outbox
from shared.config import Settings

logger = logging.getLogger(__name__)


def sweep_forever(ports: Ports, stop: threading.Event) -> None:
    """Every ``ports.sweep_seconds``: delete originals whose retention has passed."""
    outbox.every(
        ports.sweep_seconds, lambda: sweep_originals(ports), stop, "originals sweep"
    )


def background_tasks(ports: Ports) -> list[Callable[[threading.Event], None]]:
    return [partial(sweep_forever, ports)]


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
    sweeper = threading.Thread(
        target=sweep_forever, args=(ports, stop), name="originals-sweep", daemon=True
    )
    sweeper.start()
    bus.run_worker(
        settings.amqp_url, SERVICE, handler_map(ports), prefetch=1, stop=stop
    )  # CPU-bound: one post at a time (docs/architecture.md)
    stop.set()
    sweeper.join(timeout=10)


if __name__ == "__main__":
    main()
