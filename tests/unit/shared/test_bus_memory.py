"""The worker's dispatch on kombu's memory:// transport (the embedded mode's bus)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar

import pytest
from kombu.entity import Queue, binding

from shared import bus, contracts, dlq, testing
from tests.support.wait import wait_for as support_wait_for

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
    return support_wait_for(probe, timeout, interval=0.01)


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


class Finish(contracts.Command):
    TYPE: ClassVar[str] = "test.finish"

    n: int


@pytest.fixture()
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries after hundredths of a second instead of 1, 5 and 30 s."""
    monkeypatch.setattr(bus, "RETRY_DELAYS", (0.01, 0.02, 0.05))


def run_worker(worker: bus.Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert worker.ready.wait(5)
    return thread


def stop_worker(worker: bus.Worker, thread: threading.Thread) -> None:
    worker.stop()
    thread.join(5)
    assert not thread.is_alive()


def failing(times: int, error: Callable[[], Exception]) -> Callable[[Ping], list[Any]]:
    """A handler that raises ``error()`` on its first ``times`` calls, then answers."""
    calls: list[int] = []

    def handle(ping: Ping) -> list[contracts.Message]:
        calls.append(ping.n)
        if len(calls) <= times:
            raise error()
        return [Pong(n=ping.n)]

    handle.calls = calls  # type: ignore[attr-defined]
    return handle


def a_dropped_database() -> Exception:
    from sqlalchemy.exc import OperationalError

    return OperationalError(
        "SELECT 1", {}, Exception("server closed the connection unexpectedly")
    )


def a_lost_race() -> Exception:
    from sqlalchemy.exc import IntegrityError

    return IntegrityError("INSERT", {}, Exception("duplicate key value"))


def test_a_handler_that_fails_while_the_database_is_away_is_retried_not_dead_lettered(
    service: str, pongs: Queue, quick_retries: None
):
    handler = failing(3, a_dropped_database)
    worker = bus.Worker(URL, service, {Ping: handler})
    thread = run_worker(worker)

    publish([a_ping(4)])

    [pong] = drain(pongs, 1)
    assert contracts.Envelope.model_validate_json(pong.body).data == {"n": 4}
    assert handler.calls == [4, 4, 4, 4]  # type: ignore[attr-defined]
    assert (worker.retried, worker.dead_lettered, worker.processed) == (3, 0, 1)
    assert _depth(f"{service}.dlq") == 0
    stop_worker(worker, thread)


def test_an_explicit_transient_error_is_retried_too(
    service: str, pongs: Queue, quick_retries: None
):
    from shared.errors import TransientError

    handler = failing(1, lambda: TransientError("object store unavailable"))
    worker = bus.Worker(URL, service, {Ping: handler})
    thread = run_worker(worker)

    publish([a_ping(5)])

    assert len(drain(pongs, 1)) == 1
    assert worker.dead_lettered == 0
    stop_worker(worker, thread)


def test_a_lost_race_is_retried_a_few_times_then_dead_lettered_with_its_story(
    service: str, quick_retries: None
):
    handler = failing(100, a_lost_race)
    worker = bus.Worker(URL, service, {Ping: handler})
    thread = run_worker(worker)

    publish([a_ping(6)])

    [dead] = drain(bus.dead_letter_queue(service), 1)
    assert len(handler.calls) == bus.CONFLICT_RETRIES + 1  # type: ignore[attr-defined]
    reason = dead.headers["x-safepost-error"]
    assert reason.startswith("IntegrityError (conflict, gave up after 6 attempts")
    assert "duplicate key value" in dead.headers["x-safepost-detail"]
    stop_worker(worker, thread)


def test_a_dependency_away_longer_than_the_retry_budget_dead_letters(
    service: str, quick_retries: None
):
    handler = failing(100, a_dropped_database)
    worker = bus.Worker(URL, service, {Ping: handler}, retry_for=0.2)
    thread = run_worker(worker)

    publish([a_ping(7)])

    [dead] = drain(bus.dead_letter_queue(service), 1)
    assert "transient, gave up after" in dead.headers["x-safepost-error"]
    assert len(handler.calls) >= 3  # type: ignore[attr-defined]
    stop_worker(worker, thread)


def test_a_bad_message_is_still_dead_lettered_at_once(
    service: str, quick_retries: None
):
    handler = failing(100, lambda: ValueError("no such school"))
    worker = bus.Worker(URL, service, {Ping: handler})
    thread = run_worker(worker)

    publish([a_ping(8)])

    [dead] = drain(bus.dead_letter_queue(service), 1)
    assert dead.headers["x-safepost-error"] == "ValueError"
    assert handler.calls == [8]  # type: ignore[attr-defined]
    assert worker.retried == 0
    stop_worker(worker, thread)


def test_a_lane_has_its_own_queue_and_the_main_queue_no_longer_gets_its_types(
    service: str,
):
    finished: list[int] = []

    def finish(message: Finish) -> list[contracts.Message]:
        finished.append(message.n)
        return []

    bus.declare_topology(  # an older release bound both types to the main queue
        URL, service, sorted([Ping.routing_key(), Finish.routing_key()])
    )

    def laned() -> bus.Worker:
        return bus.Worker(
            URL, service, {Ping: answer, Finish: finish}, lanes={"decisions": [Finish]}
        )

    worker = laned()
    stop_worker(worker, run_worker(worker))  # declared; nothing consumed from now on

    publish([contracts.seal(Finish(n=1), producer="test")])

    assert _depth(f"{service}.decisions") == 1
    assert _depth(service) == 0
    worker = laned()
    thread = run_worker(worker)
    wait_for(lambda: finished == [1])
    stop_worker(worker, thread)
