"""The message bus: one durable topic exchange, a quorum queue per service, DLQs.

Delivery is at least once. A worker validates the envelope, dispatches on type,
publishes the handler's returned messages (persistent, ``mandatory``, publisher confirms
with a timeout) and only then acks. A handler that failed because a dependency is away
(database, broker, S3, a timeout) or lost a race to another worker is retried later:
the message waits in ``<service>.retry.<n>s`` (a queue whose TTL dead-letters it back to
``<service>``), 1 s, then 5 s, then every 30 s until the dependency is back
(``shared.failures`` tells which). A bad envelope, or a handler failure that would
fail the same way again, copies the message to ``<service>.dlq`` with the cause in
``x-safepost-*`` headers, logs it and goes on. A lost connection reconnects and
resumes; the broker redelivers unacked messages and the quorum queue's
``x-delivery-limit`` dead-letters a message that keeps killing workers.

A service may put some types on a **lane** of their own: ``<service>.<lane>``, consumed
by the same worker beside the main queue with its own prefetch, so that, say, finishing
a photo does not wait behind a backlog of photos to start.

The same code runs on kombu's ``memory://`` transport in the embedded mode; what that
mode cannot do is listed in docs/architecture.md ("Messaging").
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from kombu.common import ignore_errors
from kombu.connection import Connection
from kombu.entity import Exchange, Queue, binding
from kombu.messaging import Consumer, Producer
from kombu.mixins import ConsumerMixin
from pydantic import ValidationError

from shared import contracts, failures, logs, metrics

logger = logging.getLogger(__name__)

EXCHANGE_NAME = "posting"
DLX_NAME = "posting.dlx"
DELIVERY_LIMIT = 5
CONFIRM_TIMEOUT = 10.0
HEARTBEAT = 60  # a handler may block the consumer's heartbeats for up to 2x this
MEMORY_POLL = 0.02  # seconds between polls of an empty memory:// queue
STOP_POLL = 0.25  # how often an idle worker checks whether it was asked to stop
RETRY_DELAYS = (1, 5, 30)  # seconds before the 1st, 2nd and each later retry
RETRY_FOR = 24 * 3600.0  # a dependency away longer than this: dead-letter, say why
CONFLICT_RETRIES = 5  # a race lost this often is not a race
ATTEMPTS_HEADER = "x-safepost-attempts"
FIRST_FAILED_HEADER = "x-safepost-first-failed-at"
RETRY_POLICY = {
    "max_retries": 3,
    "interval_start": 0.2,
    "interval_step": 0.5,
    "interval_max": 2.0,
}

Handler = Callable[[Any], Sequence[contracts.Message]]
HandlerMap = Mapping[type[contracts.Message], Handler]
# Lane name -> the message types consumed from ``<service>.<lane>`` instead.
Lanes = Mapping[str, Iterable[type[contracts.Message]]]
# Gets the raw envelope of a type with no handler in the map (audit keeps them all).
EnvelopeHandler = Callable[[contracts.Envelope], Sequence[contracts.Message]]


_incoming: contextvars.ContextVar[contracts.Envelope | None] = contextvars.ContextVar(
    "safepost_incoming", default=None
)


def incoming() -> contracts.Envelope | None:
    """The message this thread's worker is handling, if any: the cause of whatever a
    use case emits meanwhile (``shared.uow``)."""
    return _incoming.get()


class UnroutableError(Exception):
    """No queue is bound for a mandatory message (the broker returned it)."""


class _StoppedError(Exception):
    """A stopped worker gives up waiting for the broker."""


class Publisher(Protocol):
    def publish(self, envelopes: Sequence[contracts.Envelope]) -> None:
        """Send every envelope durably; return only once the broker confirmed all."""


def exchange() -> Exchange:
    return Exchange(EXCHANGE_NAME, type="topic", durable=True)


def default_exchange() -> Exchange:
    """The nameless direct exchange: routing key = queue name, one queue only."""
    return Exchange("")


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


def lane_queue(service: str, lane: str, keys: Sequence[str]) -> Queue:
    """``<service>.<lane>``: like the service's queue, for the lane's types only."""
    ex = exchange()
    return Queue(
        f"{service}.{lane}",
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


def retry_queue(service: str, seconds: int) -> Queue:
    """``<service>.retry.<n>s``: holds a message ``seconds``, then hands it back to
    ``<service>`` (its TTL dead-letters through the default exchange, at least once)."""
    return Queue(
        f"{service}.retry.{seconds}s",
        exchange=default_exchange(),
        routing_key=f"{service}.retry.{seconds}s",
        durable=True,
        queue_arguments={
            "x-queue-type": "quorum",
            "x-message-ttl": seconds * 1000,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": service,
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


def retry_delay(attempt: int) -> int:
    """Seconds to wait before retry number ``attempt`` (1-based)."""
    return RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]


def dead_letter_queue(service: str) -> Queue:
    """``<service>.dlq``: what the service could not handle, kept for replay."""
    return Queue(
        f"{service}.dlq",
        exchange=dead_letter_exchange(),
        routing_key=service,
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


def is_memory(url: str) -> bool:
    return url.startswith("memory://")


def connect(url: str, *, heartbeat: int = HEARTBEAT) -> Connection:
    """A (lazy) connection: confirms on every channel, except on ``memory://``."""
    if is_memory(url):
        return Connection(url, transport_options={"polling_interval": MEMORY_POLL})
    return Connection(
        url,
        heartbeat=heartbeat,
        connect_timeout=10,
        transport_options={"confirm_publish": True},
    )


def declare_topology(
    url: str,
    service: str,
    keys: Sequence[str],
    lanes: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """Declare the exchange, the service's queue with its bindings, its lanes, its
    retry queues, the DLX and DLQ."""
    with connect(url) as conn:
        _declare(
            conn.default_channel, service, keys, lanes or {}, memory=is_memory(url)
        )


def _declare(
    channel: Any,
    service: str,
    keys: Sequence[str],
    lanes: Mapping[str, Sequence[str]],
    *,
    memory: bool,
) -> list[Queue]:
    """The queues to consume, main first. A type moved onto a lane is unbound from
    the main queue (a queue declared by an older release keeps its bindings)."""
    exchange()(channel).declare()
    dead_letter_exchange()(channel).declare()
    dead_letter_queue(service)(channel).declare()
    if not memory:
        for seconds in RETRY_DELAYS:  # memory:// has no TTL: it retries in-process
            retry_queue(service, seconds)(channel).declare()
    laned = {key for lane_keys in lanes.values() for key in lane_keys}
    queue = service_queue(service, [k for k in keys if k not in laned])
    bound = queue(channel)
    bound.declare()
    for key in sorted(laned):
        bound.unbind_from(exchange(), routing_key=key)
    queues = [queue]
    for lane, lane_keys in sorted(lanes.items()):
        extra = lane_queue(service, lane, list(lane_keys))
        extra(channel).declare()
        queues.append(extra)
    return queues


def _memory_routes(channel: Any, exchange_name: str, routing_key: str) -> bool:
    """Would the in-memory broker deliver this? (It has no ``mandatory`` of its own.)"""
    if not exchange_name:
        return bool(channel._has_queue(routing_key))
    try:
        table = channel.get_table(exchange_name)
    except KeyError:
        return False
    kind = channel.typeof(exchange_name)
    return bool(kind.lookup(table, exchange_name, routing_key, None))


class KombuPublisher:
    """Thread-safe publisher: persistent, ``mandatory``, confirmed within a timeout.

    A lost connection is re-established and the publish retried (a duplicate is
    harmless: ids are deterministic). An unroutable message raises ``UnroutableError``.
    """

    def __init__(self, url: str, *, confirm_timeout: float = CONFIRM_TIMEOUT):
        self.url = url
        self.confirm_timeout = confirm_timeout
        self._memory = is_memory(url)
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._returned: list[str] = []

    def publish(self, envelopes: Sequence[contracts.Envelope]) -> None:
        """Publish each envelope to the topic exchange; return all confirmed."""
        for envelope in envelopes:
            self.send(
                envelope.model_dump_json().encode(),
                exchange=exchange(),
                routing_key=envelope.routing_key,
                message_id=envelope.id,
                correlation_id=envelope.correlation_id,
                type=envelope.type,
            )
            logger.debug("published %s %s", envelope.type, envelope.id)

    def send(
        self,
        body: bytes,
        *,
        exchange: Exchange,
        routing_key: str,
        headers: Mapping[str, Any] | None = None,
        **properties: Any,
    ) -> None:
        """One persistent, confirmed message; UnroutableError if no queue takes it."""
        with self._lock:
            producer = self._ensure_producer()
            if self._memory and not _memory_routes(
                producer.channel, exchange.name, routing_key
            ):
                raise UnroutableError(
                    f"no queue bound for {routing_key!r} on "
                    f"{exchange.name or '(default)'}"
                )
            self._returned.clear()
            sent = False
            try:
                producer.publish(
                    body,
                    exchange=exchange,
                    routing_key=routing_key,
                    headers=dict(headers or {}),
                    content_type="application/json",
                    content_encoding="utf-8",
                    delivery_mode=2,
                    mandatory=True,
                    declare=[exchange] if exchange.name else [],
                    retry=True,
                    retry_policy=dict(RETRY_POLICY),
                    confirm_timeout=None if self._memory else self.confirm_timeout,
                    **properties,
                )
                sent = True
            finally:
                if not sent:  # start afresh next time: the channel may be unusable
                    self._reset()
            if self._returned:
                raise UnroutableError(f"unroutable: {self._returned[0]}")

    def _on_return(self, exc: Exception, exchange: str, key: str, message: Any) -> None:
        self._returned.append(f"{key!r} on {exchange or '(default)'}: {exc}")

    def _ensure_producer(self) -> Producer:
        if self._producer is None:
            # No heartbeats: nothing would service them between publishes; a dead
            # connection shows at the next publish (confirm timeout) and is replaced.
            conn = connect(self.url, heartbeat=0)
            conn.ensure_connection(**RETRY_POLICY)
            self._connection = conn
            self._producer = Producer(
                conn.default_channel,
                # memory:// never returns; its event registry is global: stay out
                on_return=None if self._memory else self._on_return,
            )
        return self._producer

    def _reset(self) -> None:
        if self._connection is not None:
            ignore_errors(self._connection, self._connection.release)
        self._connection = None
        self._producer = None

    def close(self) -> None:
        with self._lock:
            self._reset()


class Worker(ConsumerMixin):
    """Consumes one service's queue (and its lanes) and runs its handlers; see the
    module docstring."""

    def __init__(
        self,
        url: str,
        service: str,
        handlers: HandlerMap,
        *,
        publisher: Publisher | None = None,
        prefetch: int = 4,
        queue_keys: Sequence[str] | None = None,
        fallback: EnvelopeHandler | None = None,
        lanes: Lanes | None = None,
        retry_for: float = RETRY_FOR,
    ):
        self.url = url
        self.memory = is_memory(url)
        self.connection = connect(url)
        self.service = service
        self.handlers = dict(handlers)
        self.by_type = {(cls.TYPE, cls.VERSION): cls for cls in self.handlers}
        self.broker = KombuPublisher(url)  # DLQ copies; outgoing too unless given one
        self.publisher: Publisher = publisher or self.broker
        self.prefetch = prefetch
        self.keys = routing_keys(handlers) if queue_keys is None else list(queue_keys)
        self.lanes = {
            name: routing_keys(types) for name, types in (lanes or {}).items()
        }
        self.fallback = fallback
        self.retry_for = retry_for
        self.ready = threading.Event()
        self.connects = 0
        self.connection_failures = 0
        self.processed = 0
        self.dead_lettered = 0
        self.retried = 0
        self._timers: set[threading.Timer] = set()  # memory:// retries waiting

    def get_consumers(
        self, consumer_cls: Callable[..., Consumer], channel: Any
    ) -> list[Consumer]:
        queues = _declare(
            channel, self.service, self.keys, self.lanes, memory=self.memory
        )
        # One AMQP consumer per queue, each with ``prefetch`` in flight: a lane's
        # message is handled right after the current one, not after the backlog.
        return [
            consumer_cls(
                queues=queues, on_message=self.on_message, prefetch_count=self.prefetch
            )
        ]

    def on_consume_ready(
        self, connection: Any, channel: Any, consumers: Any, **kw: Any
    ) -> None:
        self.connects += 1
        self.ready.set()
        logger.info("worker %s consuming %s", self.service, ",".join(self.keys))

    def on_connection_error(self, exc: Exception, interval: float) -> None:
        self.connection_failures += 1
        logger.warning("broker connection lost (%s); retrying in %ss", exc, interval)

    @contextmanager
    def establish_connection(self) -> Iterator[Connection]:
        """As ConsumerMixin's, but a stop ends the wait for a broker that is away."""
        with self.create_connection() as conn:
            conn.ensure_connection(
                self.on_connection_error,
                self.connect_max_retries,
                callback=self._raise_if_stopped,
            )
            yield conn

    def _raise_if_stopped(self) -> None:
        if self.should_stop:
            raise _StoppedError

    def run(self, _tokens: int = 1, **kwargs: Any) -> None:
        """Consume until ``stop()``; reconnects on connection loss."""
        kwargs.setdefault("safety_interval", STOP_POLL)
        try:
            super().run(_tokens, **kwargs)
        except _StoppedError:
            pass
        finally:
            for timer in list(self._timers):
                timer.cancel()
            self.broker.close()
            logger.info("worker %s stopped", self.service)

    def stop(self) -> None:
        """Ask ``run`` to return (within ``STOP_POLL`` when idle)."""
        self.should_stop = True

    def on_message(self, message: Any) -> None:
        """Handle one delivery; ack only after the outgoing messages are confirmed."""
        try:
            envelope = contracts.Envelope.model_validate_json(message.body)
        except ValidationError as exc:
            self._dead_letter(message, "invalid_envelope", exc)
            return
        with logs.context(
            message_id=envelope.id,
            type=envelope.type,
            correlation_id=envelope.correlation_id,
        ):
            self._process(message, envelope)

    def _process(self, message: Any, envelope: contracts.Envelope) -> None:
        cls = self.by_type.get((envelope.type, envelope.version))
        handler = self.handlers[cls] if cls is not None else self.fallback
        if handler is None:
            key = f"{envelope.type} v{envelope.version}"
            error = contracts.UnknownMessageError(f"{self.service} cannot handle {key}")
            self._dead_letter(message, "unknown_type", error)
            return
        try:
            data = envelope.data
            incoming: Any = envelope if cls is None else cls.model_validate(data)
        except ValidationError as exc:
            self._dead_letter(message, "invalid_message", exc)
            return
        started = time.monotonic()
        metrics.message_lag(
            self.service,
            envelope.type,
            max(0.0, (datetime.now(UTC) - envelope.occurred_at).total_seconds()),
        )
        outcome = "ok"
        try:
            outcome = self._handle(message, envelope, handler, incoming)
        finally:
            metrics.message_handled(
                self.service, envelope.type, outcome, time.monotonic() - started
            )

    def _handle(
        self,
        message: Any,
        envelope: contracts.Envelope,
        handler: Callable[[Any], Sequence[contracts.Message]],
        incoming: Any,
    ) -> str:
        """Run the handler and settle the message; the outcome (for the metrics)."""
        token = _incoming.set(envelope)
        try:
            outgoing = self.seal(envelope, handler(incoming))
        except Exception as exc:  # the worker loop is the one place for this
            return self._failed(message, exc)
        finally:
            _incoming.reset(token)
        try:
            self.publisher.publish(outgoing)
        except UnroutableError as exc:
            self._dead_letter(message, "unroutable", exc)
            return "dead_lettered"
        except Exception as exc:  # broker trouble: not the message's fault
            logger.warning("could not publish the results (%s); retrying later", exc)
            return self._retry_or_requeue(message, failures.Failure.TRANSIENT, exc)
        message.ack()
        self.processed += 1
        logger.info("handled %s -> %d message(s)", envelope.type, len(outgoing))
        return "ok"

    def _failed(self, message: Any, exc: Exception) -> str:
        """Retry what a dependency or a race caused; dead-letter the rest."""
        kind = failures.classify(exc)
        if kind is failures.Failure.POISON:
            self._dead_letter(message, type(exc).__name__, exc)
            return "dead_lettered"
        attempts, first = _attempts(message)
        waited = (datetime.now(UTC) - first).total_seconds()
        exhausted = (
            attempts >= CONFLICT_RETRIES
            if kind is failures.Failure.CONFLICT
            else waited >= self.retry_for
        )
        if exhausted:
            self._dead_letter(
                message,
                f"{type(exc).__name__} ({kind.value}, gave up after "
                f"{attempts + 1} attempts over {waited:.0f} s)",
                exc,
            )
            return "dead_lettered"
        return self._retry_or_requeue(message, kind, exc)

    def _retry_or_requeue(
        self, message: Any, kind: failures.Failure, exc: BaseException
    ) -> str:
        """Park the message for a retry; if even that fails, hand it back at once."""
        try:
            self._retry(message, kind, exc)
        except Exception:  # the worker loop is the one place for this
            logger.exception("could not park the message for a retry; requeueing it")
            message.requeue()  # counts towards x-delivery-limit on RabbitMQ
            return "requeued"
        return "retried"

    def _retry(self, message: Any, kind: failures.Failure, exc: BaseException) -> None:
        """Send a copy to ``<service>.retry.<n>s`` (back in the queue after ``n``
        seconds), then ack. On memory:// a timer puts it back in the queue."""
        attempts, first = _attempts(message)
        attempt = attempts + 1
        delay = retry_delay(attempt)
        headers = error_headers(message, self.service, type(exc).__name__, exc)
        headers.update(
            {
                ATTEMPTS_HEADER: attempt,
                FIRST_FAILED_HEADER: first.isoformat(),
                "x-safepost-failure": kind.value,
            }
        )
        properties = message.properties or {}
        send = functools.partial(
            self.broker.send,
            message.body,
            exchange=default_exchange(),
            headers=headers,
            message_id=properties.get("message_id"),
            correlation_id=properties.get("correlation_id"),
            type=properties.get("type"),
        )
        logger.warning(
            "%s failure (%s: %s); retry %d in %ss",
            kind.value,
            type(exc).__name__,
            str(exc).splitlines()[0][:300] if str(exc) else "",
            attempt,
            delay,
        )
        if self.memory:
            self._later(delay, functools.partial(send, routing_key=self.service))
        else:
            send(routing_key=retry_queue(self.service, delay).name)
        message.ack()
        self.retried += 1

    def _later(self, delay: float, job: Callable[[], None]) -> None:
        """memory:// only: run ``job`` in ``delay`` seconds (lost if the process
        ends, as is everything in the embedded broker)."""

        def fire() -> None:
            self._timers.discard(timer)
            try:
                job()
            except Exception:  # the timer thread is the one place for this
                logger.exception("could not put a retried message back")

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        self._timers.add(timer)
        timer.start()

    def seal(
        self, cause: contracts.Envelope, results: Sequence[contracts.Message]
    ) -> list[contracts.Envelope]:
        """Wrap a handler's results with ids derived from the incoming message's id."""
        return [
            contracts.seal(out, producer=self.service, cause=cause, index=i)
            for i, out in enumerate(results)
        ]

    def _dead_letter(self, message: Any, reason: str, exc: BaseException) -> None:
        """Copy the message to <service>.dlq with the cause in its headers, then ack.

        If the copy cannot be confirmed, reject without requeue: RabbitMQ then
        dead-letters it itself (the cause only in ``x-death`` and our log).
        """
        logger.error(
            "dead-lettering the message to %s.dlq: %s",
            self.service,
            reason,
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        properties = message.properties or {}
        try:
            self.broker.send(
                message.body,
                exchange=dead_letter_exchange(),
                routing_key=self.service,
                headers=error_headers(message, self.service, reason, exc),
                message_id=properties.get("message_id"),
                correlation_id=properties.get("correlation_id"),
                type=properties.get("type"),
            )
        except Exception:  # the worker loop is the one place for this
            logger.exception(
                "could not copy the message to %s.dlq; rejecting it", self.service
            )
            message.reject(requeue=False)
        else:
            message.ack()
        self.dead_lettered += 1  # counted once it is out of the queue (tests poll it)


def _attempts(message: Any) -> tuple[int, datetime]:
    """How often the message failed for a retryable reason, and since when."""
    headers = message.headers or {}
    try:
        attempts = int(headers.get(ATTEMPTS_HEADER, 0))
    except (TypeError, ValueError):
        attempts = 0
    try:
        first = datetime.fromisoformat(str(headers[FIRST_FAILED_HEADER]))
    except (KeyError, ValueError):
        first = datetime.now(UTC)
    return attempts, first if first.tzinfo else first.replace(tzinfo=UTC)


def error_headers(
    message: Any, service: str, reason: str, exc: BaseException
) -> dict[str, Any]:
    """The message's headers plus why and where it failed (``x-safepost-*``)."""
    headers = dict(message.headers or {})
    headers.update(
        {
            "x-safepost-error": reason,
            "x-safepost-detail": str(exc)[:2000],
            "x-safepost-traceback": "".join(traceback.format_exception(exc))[-4000:],
            "x-safepost-service": service,
            "x-safepost-failed-at": datetime.now(UTC).isoformat(),
            "x-safepost-routing-key": (message.delivery_info or {}).get(
                "routing_key", ""
            ),
        }
    )
    return headers
