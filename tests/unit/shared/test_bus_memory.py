"""The worker's dispatch on kombu's memory:// transport (the embedded mode's bus)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import pytest
from kombu.entity import Queue, binding

from shared import bus, contracts, dlq, testing

URL = "memory://"


class Ping(contracts.Command):
    TYPE: ClassVar[str] = "test.ping"

    n: int


class Pong(contracts.Event):
    TYPE: ClassVar[str] = "test.pong"

    n: int


def answer(ping: Ping) -> list[contracts.Message]:
    if ping.n < 0:
        raise ValueError(f"cannot answer {ping.n}")
    return [Pong(n=ping.n)]


def a_ping(n: int = 1) -> contracts.Envelope:
    return contracts.seal(Ping(n=n), producer="test")


def wait_for(probe: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := probe():
            return value
        time.sleep(0.01)
    raise AssertionError(f"gave up after {timeout}s waiting for {probe}")


@pytest.fixture()
def service() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}"  # memory:// state is global to the process


@pytest.fixture()
def pongs(service: str) -> Queue:
    """A listener queue bound to what the worker publishes."""
    ex = bus.exchange()
    queue = Queue(
        f"{service}-listener",
        exchange=ex,
        bindings=[binding(ex, routing_key=Pong.routing_key())],
    )
    with bus.connect(URL) as conn:
        queue(conn.default_channel).declare()
    return queue


@pytest.fixture()
def worker(service: str, pongs: Queue) -> Iterator[bus.Worker]:
    worker = bus.Worker(URL, service, {Ping: answer})
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert worker.ready.wait(5)
    yield worker
    worker.stop()
    thread.join(5)
    assert not thread.is_alive()


def drain(queue: Queue, count: int) -> list[Any]:
    got: list[Any] = []
    with bus.connect(URL) as conn:
        bound = queue(conn.default_channel)

        def more() -> bool:
            message = bound.get(no_ack=True)
            if message is not None:
                got.append(message)
            return len(got) >= count

        wait_for(more)
    return got


def publish(envelopes: Sequence[contracts.Envelope]) -> None:
    publisher = bus.KombuPublisher(URL)
    publisher.publish(envelopes)
    publisher.close()


def test_a_handled_message_is_acked_and_its_results_published_with_derived_ids(
    worker: bus.Worker, pongs: Queue
):
    ping = a_ping(7)

    publish([ping])

    [message] = drain(pongs, 1)
    pong = contracts.Envelope.model_validate_json(message.body)
    assert pong.data == {"n": 7}
    assert pong.id == contracts.seal(Pong(n=7), producer="x", cause=ping).id
    assert (pong.causation_id, pong.correlation_id) == (ping.id, ping.correlation_id)
    assert message.properties["message_id"] == pong.id
    assert wait_for(lambda: worker.processed == 1)


def test_a_raising_handler_dead_letters_with_its_cause_and_the_worker_goes_on(
    worker: bus.Worker, service: str, pongs: Queue
):
    bad, good = a_ping(-1), a_ping(2)

    publish([bad, good])

    [pong] = drain(pongs, 1)
    assert contracts.Envelope.model_validate_json(pong.body).data == {"n": 2}
    [dead] = drain(bus.dead_letter_queue(service), 1)
    assert dead.headers["x-safepost-error"] == "ValueError"
    assert "cannot answer -1" in dead.headers["x-safepost-detail"]
    assert dead.properties["message_id"] == bad.id
    assert contracts.Envelope.model_validate_json(dead.body) == bad
    wait_for(lambda: worker.dead_lettered == 1)


def test_an_invalid_envelope_is_dead_lettered_not_a_crash(
    worker: bus.Worker, service: str, pongs: Queue
):
    publisher = bus.KombuPublisher(URL)

    publisher.send(
        b"{not json", exchange=bus.exchange(), routing_key=Ping.routing_key()
    )
    publish([a_ping(3)])

    [dead] = drain(bus.dead_letter_queue(service), 1)
    assert dead.headers["x-safepost-error"] == "invalid_envelope"
    assert dead.body == b"{not json"
    assert len(drain(pongs, 1)) == 1
    publisher.close()


def test_a_message_of_a_type_the_worker_does_not_handle_is_dead_lettered(
    worker: bus.Worker, service: str
):
    stray = contracts.seal(Pong(n=1), producer="test")
    publisher = bus.KombuPublisher(URL)

    publisher.send(
        stray.model_dump_json().encode(),
        exchange=bus.default_exchange(),
        routing_key=service,
    )

    [dead] = drain(bus.dead_letter_queue(service), 1)
    assert dead.headers["x-safepost-error"] == "unknown_type"
    publisher.close()


def test_a_message_no_queue_is_bound_for_raises_unroutable():
    testing.reset_memory_broker()
    publisher = bus.KombuPublisher(URL)
    nobody = contracts.seal(Pong(n=1), producer="test").model_copy(
        update={"type": f"nobody.{uuid.uuid4().hex}"}
    )

    with pytest.raises(bus.UnroutableError):
        publisher.publish([nobody])
    publisher.close()


def test_replay_returns_dead_letters_to_the_failed_service_only(
    service: str, pongs: Queue
):
    flaky = {"fail": True}

    def sometimes(ping: Ping) -> list[contracts.Message]:
        if flaky["fail"]:
            raise RuntimeError("not yet")
        return [Pong(n=ping.n)]

    other = bus.Worker(URL, f"{service}-other", {Ping: answer})
    bus.declare_topology(URL, other.service, other.keys)
    worker = bus.Worker(URL, service, {Ping: sometimes})
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert worker.ready.wait(5)
    publish([a_ping(5)])
    wait_for(lambda: worker.dead_lettered == 1)
    flaky["fail"] = False
    other_depth = _depth(other.service)

    moved = dlq.replay(URL, service)

    assert moved == 1
    assert wait_for(lambda: worker.processed == 1)
    assert len(drain(pongs, 1)) == 1
    assert _depth(other.service) == other_depth == 1  # not replayed to the exchange
    worker.stop()
    thread.join(5)


def _depth(queue: str) -> int:
    with bus.connect(URL) as conn:
        return int(conn.default_channel.queue_declare(queue=queue, passive=True)[1])


def test_a_stopped_worker_returns_from_run_promptly(service: str):
    worker = bus.Worker(URL, service, {Ping: answer})
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert worker.ready.wait(5)

    worker.stop()

    thread.join(3)
    assert not thread.is_alive()
