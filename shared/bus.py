"""The message bus: one durable topic exchange, a quorum queue per service, DLQs.

Delivery is at least once. A worker validates the envelope, dispatches on type, publishes
the handler's returned messages with publisher confirms (and ``mandatory``, so an
unroutable message is an error), and only then acks. A handler exception sends the
message to ``<service>.dlq`` with the cause in its headers and the worker goes on. A lost
connection reconnects and resumes; unacked messages are redelivered by the broker and the
quorum queue's ``x-delivery-limit`` dead-letters a message that keeps killing workers.

The same code runs on kombu's ``memory://`` transport in the embedded mode, which has no
durability, no redelivery after a crash, no delivery limit, no publisher confirms and no
unroutable detection (see docs/architecture.md).
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from kombu.connection import Connection
from kombu.entity import Exchange, Queue, binding
from kombu.messaging import Consumer, Producer
from kombu.mixins import ConsumerMixin
from pydantic import ValidationError

from shared import contracts, logs

logger = logging.getLogger(__name__)

EXCHANGE_NAME = "posting"
DLX_NAME = "posting.dlx"
DELIVERY_LIMIT = 5
CONFIRM_TIMEOUT = 10.0

Handler = Callable[[Any], Sequence[contracts.Message]]
HandlerMap = Mapping[type[contracts.Message], Handler]


class UnroutableError(Exception):
    """The broker returned a mandatory message: no queue is bound for its type."""


class Publisher(Protocol):
    def publish(self, envelopes: Sequence[contracts.Envelope]) -> None:
        """Send every envelope durably; return only when the broker confirmed them all."""


def exchange() -> Exchange:
    return Exchange(EXCHANGE_NAME, type="topic", durable=True)


def dead_letter_exchange() -> Exchange:
    return Exchange(DLX_NAME, type="direct", durable=True)


def routing_keys(handlers: HandlerMap | Iterable[type[contracts.Message]]) -> list[str]:
    return sorted(cls.routing_key() for cls in handlers)


def service_queue(service: str, keys: Sequence[str]) -> Queue:
    """The service's durable quorum queue, bound to the types it handles."""
    ex = exchange()
    return Queue(
        service,
        exchange=ex,
        bindings=[binding(ex, routing_key=k) for k in keys],
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": DLX_NAME,
            "x-dead-letter-routing-key": service,
            "x-delivery-limit": DELIVERY_LIMIT,
        },
    )


def dead_letter_queue(service: str) -> Queue:
    dlx = dead_letter_exchange()
    return Queue(
        f"{service}.dlq",
        exchange=dlx,
        routing_key=service,
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


def is_memory(url: str) -> bool:
    return url.startswith("memory://")


def connect(url: str) -> Connection:
    options: dict[str, Any] = {}
    if not is_memory(url):
        options = {"confirm_publish": True}
    return Connection(url, transport_options=options, heartbeat=30 if not is_memory(url) else 0)


def _wire(envelope: contracts.Envelope) -> dict[str, Any]:
    return {
        "body": envelope.model_dump_json().encode(),
        "routing_key": envelope.routing_key,
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "delivery_mode": 2,
        "message_id": envelope.id,
        "correlation_id": envelope.correlation_id,
        "type": envelope.type,
    }


class KombuPublisher:
    """Thread-safe publisher: persistent messages, confirms with a timeout, mandatory."""

    def __init__(self, url: str, *, confirm_timeout: float = CONFIRM_TIMEOUT):
        self.url = url
        self.confirm_timeout = confirm_timeout
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._returned: list[str] = []

    def _on_return(self, exc: Exception, ex: str, key: str, message: Any) -> None:
        self._returned.append(f"{key}: {exc}")

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            self._connection = connect(self.url)
            self._connection.ensure_connection(max_retries=5)
            self._producer = Producer(
                self._connection.channel(),
                exchange=exchange(),
                on_return=None if is_memory(self.url) else self._on_return,
            )
            exchange()(self._producer.channel).declare()
        return self._producer

    def publish(self, envelopes: Sequence[contracts.Envelope]) -> None:
        """Publish and wait for the broker's confirm of each; raise if any is unroutable."""
        if not envelopes:
            return
        with self._lock:
            producer = self._ensure_producer()
            memory = is_memory(self.url)
            for envelope in envelopes:
                self._returned.clear()
                producer.publish(
                    **_wire(envelope),
                    mandatory=not memory,
                    retry=True,
                    retry_policy={"max_retries": 5, "interval_start": 0.2,
                                  "interval_step": 0.5, "interval_max": 2},
                    confirm_timeout=None if memory else self.confirm_timeout,
                )
                if self._returned:
                    raise UnroutableError(f"unroutable {envelope.type}: {self._returned[0]}")
                logger.debug("published %s %s", envelope.type, envelope.id)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.release()
            self._connection = None
            self._producer = None


def declare_topology(url: str, service: str, keys: Sequence[str]) -> None:
    """Declare the exchange, the service's queue with its bindings, the DLX and DLQ."""
    with connect(url) as conn:
        channel = conn.default_channel
        exchange()(channel).declare()
        dead_letter_exchange()(channel).declare()
        dead_letter_queue(service)(channel).declare()
        service_queue(service, keys)(channel).declare()


class Worker(ConsumerMixin):  # type: ignore[misc]
    """Consumes one service's queue and runs its handlers; see the module docstring."""

    def __init__(
        self,
        url: str,
        service: str,
        handlers: HandlerMap,
        *,
        publisher: Publisher | None = None,
        prefetch: int = 4,
        queue_keys: Sequence[str] | None = None,
    ):
        self.url = url
        self.connection = connect(url)
        self.service = service
        self.handlers = dict(handlers)
        self.by_type = {(cls.TYPE, cls.VERSION): cls for cls in self.handlers}
        self.publisher = publisher or KombuPublisher(url)
        self.prefetch = prefetch
        self.keys = list(queue_keys) if queue_keys is not None else routing_keys(handlers)
        self.processed = 0
        self.dead_lettered = 0
        self.ready = threading.Event()

    def get_consumers(self, consumer_cls: type[Consumer], channel: Any) -> list[Consumer]:
        dead_letter_exchange()(channel).declare()
        dead_letter_queue(self.service)(channel).declare()
        queue = service_queue(self.service, self.keys)
        return [
            consumer_cls(
                queues=[queue],
                on_message=self.on_message,
                prefetch_count=self.prefetch,
                accept=["json"],
            )
        ]

    def on_consume_ready(self, connection: Any, channel: Any, consumers: Any, **kw: Any) -> None:
        self.ready.set()
        logger.info("worker %s consuming %s", self.service, ",".join(self.keys))

    def on_connection_error(self, exc: Exception, interval: float) -> None:
        logger.warning("broker connection lost (%s); retrying in %ss", exc, interval)

    def on_message(self, message: Any) -> None:
        """Handle one delivery; ack only after outgoing messages are confirmed."""
        try:
            envelope = contracts.Envelope.model_validate_json(message.body)
        except ValidationError as exc:
            self._dead_letter(message, "invalid_envelope", exc)
            return
        with logs.context(
            message_id=envelope.id, type=envelope.type, correlation_id=envelope.correlation_id
        ):
            try:
                outgoing = self.handle(envelope)
                self.publisher.publish(outgoing)
            except self.connection.connection_errors:
                raise  # reconnect; the broker redelivers the unacked message
            except Exception as exc:  # noqa: BLE001 - the worker loop is the one place
                self._dead_letter(message, type(exc).__name__, exc)
                return
            message.ack()
            self.processed += 1
            logger.info("handled %s -> %d message(s)", envelope.type, len(outgoing))

    def handle(self, envelope: contracts.Envelope) -> list[contracts.Envelope]:
        """Parse, dispatch and seal the handler's results (deterministic ids)."""
        cls = self.by_type.get((envelope.type, envelope.version))
        if cls is None:
            raise contracts.UnknownMessageError(
                f"{self.service} has no handler for {envelope.type} v{envelope.version}"
            )
        message = cls.model_validate(envelope.data)
        results = self.handlers[cls](message)
        return [
            contracts.seal(out, producer=self.service, cause=envelope, index=i)
            for i, out in enumerate(results)
        ]

    def _dead_letter(self, message: Any, reason: str, exc: BaseException) -> None:
        """Copy the message to <service>.dlq with the cause in its headers, then ack.

        If that copy cannot be confirmed, reject without requeue so the broker
        dead-letters it itself (reason only in the x-death header and our log).
        """
        self.dead_lettered += 1
        logger.error(
            "dead-lettering message: %s: %s", reason, exc,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        headers = dict(message.headers or {})
        headers.update(
            {
                "x-safepost-error": reason,
                "x-safepost-detail": str(exc)[:2000],
                "x-safepost-traceback": "".join(traceback.format_exception(exc))[-4000:],
                "x-safepost-service": self.service,
                "x-safepost-failed-at": datetime.now(UTC).isoformat(),
                "x-original-routing-key": message.delivery_info.get("routing_key", ""),
            }
        )
        try:
            with connect(self.url) as conn:
                producer = Producer(conn.channel(), exchange=dead_letter_exchange())
                producer.publish(
                    message.body,
                    routing_key=self.service,
                    headers=headers,
                    content_type=message.content_type or "application/json",
                    content_encoding=message.content_encoding or "utf-8",
                    delivery_mode=2,
                    message_id=message.properties.get("message_id"),
                    mandatory=not is_memory(self.url),
                    confirm_timeout=None if is_memory(self.url) else CONFIRM_TIMEOUT,
                )
        except Exception:  # noqa: BLE001 - fall back to the broker's own dead-lettering
            logger.exception("could not copy to the DLQ; rejecting instead")
            message.reject(requeue=False)
            return
        message.ack()


def run_worker(
    url: str,
    service: str,
    handlers: HandlerMap,
    *,
    prefetch: int = 4,
    stop: threading.Event | None = None,
) -> Worker:
    """Consume until ``stop`` is set (or forever); reconnects on connection loss."""
    worker = Worker(url, service, handlers, prefetch=prefetch)
    if stop is not None:
        def watch() -> None:
            stop.wait()
            worker.should_stop = True

        threading.Thread(target=watch, daemon=True, name=f"{service}-stop").start()
    worker.run()
    return worker


def dlq_messages(url: str, service: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Read (and requeue) what sits in a service's DLQ: id, type, headers."""
    out: list[dict[str, Any]] = []
    with connect(url) as conn:
        queue = dead_letter_queue(service)(conn.default_channel)
        queue.declare()
        held = []
        for _ in range(limit):
            msg = queue.get(no_ack=False)
            if msg is None:
                break
            held.append(msg)
            out.append({"message_id": msg.properties.get("message_id"),
                        "headers": dict(msg.headers or {}), "body": msg.body})
        for msg in held:
            msg.requeue()
    return out


def replay_dlq(url: str, service: str, limit: int = 1000) -> int:
    """Move messages from ``<service>.dlq`` back to the exchange under their original key."""
    moved = 0
    publisher = KombuPublisher(url)
    with connect(url) as conn:
        queue = dead_letter_queue(service)(conn.default_channel)
        queue.declare()
        for _ in range(limit):
            msg = queue.get(no_ack=False)
            if msg is None:
                break
            try:
                envelope = contracts.Envelope.model_validate_json(msg.body)
                publisher.publish([envelope])
            except (ValidationError, UnroutableError):
                logger.exception("cannot replay %s; left in the DLQ", msg.properties.get("message_id"))
                msg.requeue()
                break
            msg.ack()
            moved += 1
    publisher.close()
    return moved
