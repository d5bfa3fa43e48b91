"""One way to run a service's worker process: ``python -m services.<svc>.worker``.

Every ``services/<svc>/worker.py`` has the same three parts: ``build_worker(settings,
ports)`` (the consumer, or ``None`` for a service that consumes nothing),
``background_tasks(ports)`` (loops beside it: outbox relays, sweeps, deliveries) and a
``main`` that hands both to ``run`` below. The embedded mode builds the same workers
and tasks in one process (``safepost.embedded``).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TypeVar

from shared import bus, logs, metrics
from shared.config import Settings

logger = logging.getLogger(__name__)

P = TypeVar("P")
Task = Callable[[threading.Event], None]
TASK_JOIN_SECONDS = 10.0


def standard_worker(
    settings: Settings,
    service: str,
    handlers: bus.HandlerMap,
    *,
    prefetch: int | None = None,
    lanes: bus.Lanes | None = None,
    queue_keys: Sequence[str] | None = None,
    fallback: bus.EnvelopeHandler | None = None,
) -> bus.Worker:
    """The service's consumer with the settings every service shares."""
    return bus.Worker(
        settings.amqp_url,
        service,
        handlers,
        prefetch=settings.prefetch if prefetch is None else prefetch,
        lanes=lanes,
        queue_keys=queue_keys,
        fallback=fallback,
    )


def run(
    service: str,
    make_ports: Callable[[Settings], P],
    build_worker: Callable[[Settings, P], bus.Worker | None],
    background_tasks: Callable[[P], Sequence[Task]] | None = None,
) -> None:
    """Configure logs and metrics, build the ports, start the background tasks, then
    consume until SIGTERM/SIGINT; on the way out stop the tasks too."""
    settings = Settings.from_env(service)
    logs.configure(service, settings.log_level)
    metrics.start_worker_server(metrics.port_from_env())
    ports = make_ports(settings)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker = build_worker(settings, ports)
    threads = [
        threading.Thread(target=task, args=(stop,), name=f"{service}-task", daemon=True)
        for task in (background_tasks(ports) if background_tasks else ())
    ]
    for thread in threads:
        thread.start()
    try:
        if worker is None:
            logger.info("%s worker running its background tasks", service)
            stop.wait()
        else:
            consumer = worker

            def stop_consuming() -> None:
                stop.wait()
                consumer.stop()

            threading.Thread(target=stop_consuming, daemon=True).start()
            consumer.run()
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=TASK_JOIN_SECONDS)
