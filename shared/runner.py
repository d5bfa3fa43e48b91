"""Each service declared once, and the one way to run its worker process.

A service's ``worker.py`` declares ``SPEC = ServiceSpec(...)``: its name, the message
types it handles (and, given its ports, the handler for each), its lanes, its prefetch,
its background tasks and how to build its ports. The worker process
(``python -m services.<svc>.worker`` → ``run(SPEC)``), the embedded runner and the
message catalogue (docs/messages.md) all read the same object; nothing is found by
reflection.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Generic, TypeVar

from shared import bus, contracts, failures, logs, metrics
from shared.config import Settings

logger = logging.getLogger(__name__)

P = TypeVar("P")
Task = Callable[[threading.Event], None]
TASK_JOIN_SECONDS = 10.0


def _no_handlers(_ports: Any) -> bus.HandlerMap:
    return {}


def _no_tasks(_ports: Any) -> Sequence[Task]:
    return ()


@dataclass(frozen=True)
class ServiceSpec(Generic[P]):
    """Everything the processes that run a service need to know about it."""

    name: str
    make_ports: Callable[[Settings], P]
    # The message types it consumes; ``handlers(ports)`` maps each to its use case.
    handles: tuple[type[contracts.Message], ...] = ()
    handlers: Callable[[P], bus.HandlerMap] = _no_handlers
    # Loops beside the consumer (outbox relays, sweeps, the delivery loop).
    background: Callable[[P], Sequence[Task]] = _no_tasks
    lanes: Mapping[str, tuple[type[contracts.Message], ...]] = field(
        default_factory=dict
    )
    prefetch: int = 4  # unless PREFETCH says otherwise
    # Audit: bind these routing keys (``#``) and take unknown types as envelopes.
    queue_keys: tuple[str, ...] | None = None
    fallback: Callable[[P], bus.EnvelopeHandler] | None = None

    def build_worker(self, settings: Settings, ports: P) -> bus.Worker | None:
        """The consumer, or None for a service that consumes nothing."""
        handlers = self.handlers(ports)
        if set(handlers) != set(self.handles):
            missing = {c.TYPE for c in self.handles} ^ {c.TYPE for c in handlers}
            raise RuntimeError(
                f"{self.name}: handles and handlers disagree on {sorted(missing)}"
            )
        if not handlers and self.fallback is None:
            return None
        return bus.Worker(
            settings.amqp_url,
            self.name,
            handlers,
            prefetch=settings.prefetch or self.prefetch,
            lanes=self.lanes,
            queue_keys=self.queue_keys,
            fallback=self.fallback(ports) if self.fallback else None,
        )

    def tasks(self, ports: P) -> list[Task]:
        return list(self.background(ports))


def run(spec: ServiceSpec[Any]) -> None:
    """The worker process: configure logs and metrics, build the ports, start the
    background tasks, then consume until SIGTERM/SIGINT; on the way out stop the
    tasks too."""
    settings = Settings.from_env(spec.name)
    logs.configure(spec.name, settings.log_level)
    metrics.start_worker_server(metrics.port_from_env())
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %s: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ports = ports_when_ready(spec, settings, stop)
    if ports is None:
        return
    worker = spec.build_worker(settings, ports)
    threads = [
        threading.Thread(
            target=task, args=(stop,), name=f"{spec.name}-task", daemon=True
        )
        for task in spec.tasks(ports)
    ]
    for thread in threads:
        thread.start()
    try:
        if worker is None:
            logger.info("%s worker running its background tasks", spec.name)
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


def ports_when_ready(
    spec: ServiceSpec[P], settings: Settings, stop: threading.Event
) -> P | None:
    """The service's ports, waiting (1 s, doubling to 30 s) while a dependency it
    opens at start — its database (migrations), its buckets — is away, instead of
    exiting and leaving the restart to the supervisor; None if asked to stop first.
    A bad setting still fails at once."""
    delay = 1.0
    while True:
        try:
            return spec.make_ports(settings)
        except Exception as exc:  # the start-up loop is the one place for this
            if failures.classify(exc) is not failures.Failure.TRANSIENT:
                raise
            logger.warning(
                "%s cannot start yet: %s is unavailable; retrying in %.0f s",
                spec.name,
                type(exc).__name__,
                delay,
            )
        if stop.wait(delay):
            return None
        delay = min(delay * 2, 30.0)


def consumers(
    specs: Sequence[ServiceSpec[Any]],
) -> dict[str, list[str]]:
    """Message type -> the services that consume it (for the catalogue)."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        for cls in (*spec.handles, *(t for ts in spec.lanes.values() for t in ts)):
            names = out.setdefault(cls.TYPE, [])
            if spec.name not in names:
                names.append(spec.name)
    return out
