"""shared.bus on the machine's RabbitMQ: confirms, quorum queues, DLQs, redelivery."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pika
import pytest

from shared import bus, contracts, dlq
from tests.conftest import free_port
from tests.integration.bus_worker_process import Ping, Pong, open_db
from tests.support.wait import wait_for as support_wait_for

pytestmark = pytest.mark.rabbitmq
REPO = Path(__file__).resolve().parents[2]


def answer(ping: Ping) -> list[contracts.Message]:
    if ping.n < 0:
        raise ValueError(f"cannot answer {ping.n}")
    return [Pong(n=ping.n)]


def a_ping(n: int = 1) -> contracts.Envelope:
    return contracts.seal(Ping(n=n), producer="test")


def wait_for(probe: Callable[[], Any], timeout: float = 10.0) -> Any:
    return support_wait_for(probe, timeout, interval=0.02)


def vhost_of(url: str) -> str:
    return unquote(urlparse(url).path[1:]) or "/"


class Rabbit:
    """pika, as a second and independent client, to look at queues and messages."""

    def __init__(self, url: str):
        self.url = url

    def _channel(self) -> Any:
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        return connection, connection.channel()

    def listen(self, queue: str, routing_key: str) -> None:
        connection, channel = self._channel()
        channel.exchange_declare(bus.EXCHANGE_NAME, "topic", durable=True)
        channel.queue_declare(queue, durable=True)
        channel.queue_bind(queue, bus.EXCHANGE_NAME, routing_key)
        connection.close()

    def depth(self, queue: str) -> int:
        return self._counts(queue)[0]

    def consumers(self, queue: str) -> int:
        return self._counts(queue)[1]

    def _counts(self, queue: str) -> tuple[int, int]:
        connection, channel = self._channel()
        ok = channel.queue_declare(queue, passive=True).method
        connection.close()
        return int(ok.message_count), int(ok.consumer_count)

    def take(self, queue: str, count: int) -> list[tuple[Any, bytes]]:
        """Wait for and remove ``count`` messages: (properties, body)."""
        got: list[tuple[Any, bytes]] = []
        connection, channel = self._channel()

        def more() -> bool:
            _, properties, body = channel.basic_get(queue, auto_ack=True)
            if body is not None:
                got.append((properties, body))
            return len(got) >= count

        try:
            wait_for(more)
        finally:
            connection.close()
        return got

    def abandon(self, queue: str) -> bool:
        """Take one message unacked and drop the connection: a consumer dying."""
        connection, channel = self._channel()
        method, _, _ = channel.basic_get(queue, auto_ack=False)
        connection.close()
        return method is not None

    def publish_raw(self, routing_key: str, body: bytes) -> None:
        connection, channel = self._channel()
        channel.basic_publish(bus.EXCHANGE_NAME, routing_key, body)
        connection.close()

    def ctl(self, *args: str) -> str:
        ctl = shutil.which("rabbitmqctl")
        if ctl is None:
            pytest.skip("rabbitmqctl is not available")
        done = subprocess.run(
            [ctl, *args], capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout


@pytest.fixture()
def rabbit(amqp_vhost: str) -> Rabbit:
    return Rabbit(amqp_vhost)


@pytest.fixture()
def service() -> str:
    return f"svc-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def publisher(amqp_vhost: str) -> Iterator[bus.KombuPublisher]:
    publisher = bus.KombuPublisher(amqp_vhost, confirm_timeout=5)
    yield publisher
    publisher.close()


@pytest.fixture()
def start_worker(amqp_vhost: str) -> Iterator[Callable[..., bus.Worker]]:
    running: list[tuple[bus.Worker, threading.Thread]] = []

    def start(service: str, handlers: bus.HandlerMap | None = None) -> bus.Worker:
        worker = bus.Worker(amqp_vhost, service, handlers or {Ping: answer})
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        assert worker.ready.wait(10), "the worker did not start consuming"
        running.append((worker, thread))
        return worker

    yield start
    for worker, thread in running:
        worker.stop()
        thread.join(10)
        assert not thread.is_alive(), f"worker {worker.service} did not stop"


def pongs_of(rabbit: Rabbit, service: str) -> str:
    queue = f"{service}-listener"
    rabbit.listen(queue, Pong.routing_key())
    return queue


def test_a_confirmed_message_is_handled_acked_and_its_result_published(
    rabbit: Rabbit, service: str, publisher: bus.KombuPublisher, start_worker: Any
):
    listener = pongs_of(rabbit, service)
    worker = start_worker(service)
    ping = a_ping(7)

    publisher.publish([ping])

    [(properties, body)] = rabbit.take(listener, 1)
    pong = contracts.Envelope.model_validate_json(body)
    assert pong.data == {"n": 7}
    assert (
        pong.id
        == properties.message_id
        == contracts.seal(Pong(n=7), producer="x", cause=ping).id
    )
    assert properties.delivery_mode == 2
    wait_for(lambda: worker.processed == 1)
    worker.stop()
    wait_for(lambda: rabbit.consumers(service) == 0)  # gone: anything unacked is back
    assert rabbit.depth(service) == rabbit.depth(f"{service}.dlq") == 0


def test_the_service_queue_is_a_quorum_queue_with_a_delivery_limit_and_a_dlq(
    amqp_vhost: str, rabbit: Rabbit, service: str
):
    bus.declare_topology(amqp_vhost, service, [Ping.routing_key()])

    out = rabbit.ctl(
        "list_queues",
        "-q",
        "-p",
        vhost_of(amqp_vhost),
        "name",
        "type",
        "durable",
        "arguments",
        "--formatter",
        "json",
    )

    queues = {q["name"]: q for q in json.loads(out)}
    main, dead = queues[service], queues[f"{service}.dlq"]
    assert (main["type"], main["durable"]) == ("quorum", True)
    args = {name: value for name, _, value in main["arguments"]}
    assert args == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": bus.DLX_NAME,
        "x-dead-letter-routing-key": service,
        "x-delivery-limit": bus.DELIVERY_LIMIT,
    }
    assert (dead["type"], dead["durable"]) == ("quorum", True)


def test_a_raising_handler_dead_letters_with_its_reason_and_the_worker_goes_on(
    rabbit: Rabbit, service: str, publisher: bus.KombuPublisher, start_worker: Any
):
    listener = pongs_of(rabbit, service)
    worker = start_worker(service)
    bad, good = a_ping(-1), a_ping(2)

    publisher.publish([bad, good])

    [(_, body)] = rabbit.take(listener, 1)
    assert contracts.Envelope.model_validate_json(body).data == {"n": 2}
    [(properties, dead)] = rabbit.take(f"{service}.dlq", 1)
    assert properties.headers["x-safepost-error"] == "ValueError"
    assert "cannot answer -1" in properties.headers["x-safepost-detail"]
    assert properties.message_id == bad.id
    assert contracts.Envelope.model_validate_json(dead) == bad
    wait_for(lambda: worker.processed == 1)


def test_an_invalid_envelope_is_dead_lettered_and_the_worker_goes_on(
    rabbit: Rabbit, service: str, publisher: bus.KombuPublisher, start_worker: Any
):
    listener = pongs_of(rabbit, service)
    start_worker(service)

    rabbit.publish_raw(Ping.routing_key(), b"\xff not an envelope")
    publisher.publish([a_ping(3)])

    [(properties, body)] = rabbit.take(f"{service}.dlq", 1)
    assert properties.headers["x-safepost-error"] == "invalid_envelope"
    assert body == b"\xff not an envelope"
    assert len(rabbit.take(listener, 1)) == 1


def test_a_message_that_keeps_killing_consumers_is_dead_lettered_by_the_broker(
    amqp_vhost: str, rabbit: Rabbit, service: str, publisher: bus.KombuPublisher
):
    bus.declare_topology(amqp_vhost, service, [Ping.routing_key()])
    publisher.publish([a_ping(9)])

    while rabbit.abandon(service):  # each abandoned delivery counts
        pass

    [item] = wait_for(lambda: dlq.messages(amqp_vhost, service))
    assert item["error"] == "broker:delivery_limit"
    assert rabbit.depth(f"{service}.dlq") == 1  # listing leaves it in place


def test_an_unroutable_publish_raises(publisher: bus.KombuPublisher, service: str):
    nobody = contracts.seal(Pong(n=1), producer="test").model_copy(
        update={"type": f"nobody.{service}"}
    )

    with pytest.raises(bus.UnroutableError, match="NO_ROUTE"):
        publisher.publish([nobody])


def test_a_worker_reconnects_and_resumes_after_its_connection_is_closed(
    amqp_vhost: str,
    rabbit: Rabbit,
    service: str,
    publisher: bus.KombuPublisher,
    start_worker: Any,
):
    listener = pongs_of(rabbit, service)
    worker = start_worker(service)
    publisher.publish([a_ping(1)])
    rabbit.take(listener, 1)

    rabbit.ctl("close_all_connections", "-p", vhost_of(amqp_vhost), "test: lost")

    wait_for(lambda: worker.connects == 2)
    publisher.publish([a_ping(2)])  # the publisher reconnects too
    [(_, body)] = rabbit.take(listener, 1)
    assert contracts.Envelope.model_validate_json(body).data == {"n": 2}
    wait_for(lambda: worker.processed == 2)


def test_a_worker_waiting_for_an_absent_broker_still_stops_promptly():
    worker = bus.Worker(
        f"amqp://guest:guest@127.0.0.1:{free_port()}//", "absent", {Ping: answer}
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    wait_for(lambda: worker.connection_failures >= 1)

    worker.stop()

    thread.join(3)
    assert not thread.is_alive()


def test_replay_moves_a_dead_letter_back_to_its_own_service_only(
    amqp_vhost: str,
    rabbit: Rabbit,
    service: str,
    publisher: bus.KombuPublisher,
    start_worker: Any,
):
    calls = {"flaky": 0}

    def flaky(ping: Ping) -> list[contracts.Message]:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise RuntimeError("not yet")
        return []

    other = f"{service}-other"
    bus.declare_topology(amqp_vhost, other, [Ping.routing_key()])  # bound, not running
    worker = start_worker(service, {Ping: flaky})
    publisher.publish([a_ping(5)])
    wait_for(lambda: worker.dead_lettered == 1)
    [listed] = wait_for(lambda: dlq.messages(amqp_vhost, service))
    assert listed["error"] == "RuntimeError"

    moved = dlq.replay(amqp_vhost, service)

    assert moved == 1
    wait_for(lambda: worker.processed == 1)
    assert rabbit.depth(f"{service}.dlq") == 0
    assert rabbit.depth(other) == 1  # only the original publish, not the replay


# A worker killed mid-message: run in its own process and SIGKILLed.


def spawn(url: str, service: str, db: Path, block: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.bus_worker_process",
            url,
            service,
            str(db),
            block,
        ],
        cwd=REPO,
        env=env,
    )


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with open_db(str(db)) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture()
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@pytest.mark.parametrize("block", ["handler", "published"])
def test_a_worker_killed_mid_message_is_redelivered_and_has_one_effect(
    amqp_vhost: str,
    rabbit: Rabbit,
    service: str,
    publisher: bus.KombuPublisher,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
    block: str,
):
    db = tmp_path / "effects.sqlite3"
    open_db(str(db)).close()
    listener = pongs_of(rabbit, service)
    bus.declare_topology(amqp_vhost, service, [Ping.routing_key()])
    ping = a_ping(42)
    publisher.publish([ping])
    processes.append(spawn(amqp_vhost, service, db, block))
    stage = "published" if block == "published" else "handler"
    wait_for(lambda: rows(db, f"SELECT * FROM attempts WHERE stage = '{stage}'"), 20)

    processes[0].send_signal(signal.SIGKILL)
    processes[0].wait(10)
    processes.append(spawn(amqp_vhost, service, db, "never"))

    expected = 2 if block == "published" else 1
    delivered = rabbit.take(listener, expected)
    wait_for(lambda: len(rows(db, "SELECT * FROM attempts WHERE n = 42")) == 2)
    assert rows(db, "SELECT n FROM effects") == [(42,)]
    first = contracts.seal(Pong(n=42), producer="x", cause=ping).id
    assert [p.message_id for p, _ in delivered] == [first] * expected
    assert rabbit.depth(f"{service}.dlq") == 0


def test_listing_a_dlq_prints_one_line_per_message_and_a_missing_one_is_empty(
    amqp_vhost: str,
    rabbit: Rabbit,
    service: str,
    publisher: bus.KombuPublisher,
    capsys: pytest.CaptureFixture[str],
):
    """Issue 15: `dlq list` split one message's detail over several lines, and a
    service without a DLQ (intake) failed."""
    assert dlq.run("list", f"{service}-none", amqp_vhost) == 0
    assert "does not exist" in capsys.readouterr().out
    bus.declare_topology(amqp_vhost, service, [Ping.routing_key()])
    publisher.publish([a_ping(9)])
    while rabbit.abandon(service):
        pass
    wait_for(lambda: dlq.messages(amqp_vhost, service))
    capsys.readouterr()

    assert dlq.run("list", service, amqp_vhost) == 0

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].count("\t") == 4
    assert "broker:delivery_limit" in lines[0]


class Finish(contracts.Command):
    TYPE = "test.finish"

    n: int


def test_a_message_failing_while_the_database_is_away_waits_in_a_retry_queue(
    amqp_vhost: str, rabbit: Rabbit, service: str, publisher: bus.KombuPublisher
):
    from sqlalchemy.exc import OperationalError

    attempts: list[float] = []

    def flaky(ping: Ping) -> list[contracts.Message]:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise OperationalError("SELECT 1", {}, Exception("connection refused"))
        return [Pong(n=ping.n)]

    listener = pongs_of(rabbit, service)
    worker = bus.Worker(amqp_vhost, service, {Ping: flaky})
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    assert worker.ready.wait(10)

    publisher.publish([a_ping(3)])

    [(_, body)] = rabbit.take(listener, 1)
    assert contracts.Envelope.model_validate_json(body).data == {"n": 3}
    assert len(attempts) == 2
    assert attempts[1] - attempts[0] >= bus.RETRY_DELAYS[0] * 0.9  # it waited
    assert (worker.retried, worker.dead_lettered) == (1, 0)
    assert rabbit.depth(f"{service}.dlq") == 0
    worker.stop()
    thread.join(10)


def test_retry_queues_are_quorum_queues_that_hand_messages_back_at_least_once(
    amqp_vhost: str, rabbit: Rabbit, service: str
):
    bus.declare_topology(amqp_vhost, service, [Ping.routing_key()])

    out = rabbit.ctl(
        "list_queues", "-q", "-p", vhost_of(amqp_vhost), "name", "type", "arguments",
        "--formatter", "json",
    )  # fmt: skip

    queues = {q["name"]: q for q in json.loads(out)}
    for seconds in bus.RETRY_DELAYS:
        retry = queues[f"{service}.retry.{seconds}s"]
        args = {name: value for name, _, value in retry["arguments"]}
        assert retry["type"] == "quorum"
        assert args["x-message-ttl"] == seconds * 1000
        assert (args["x-dead-letter-exchange"], args["x-dead-letter-routing-key"]) == (
            "",
            service,
        )
        assert args["x-dead-letter-strategy"] == "at-least-once"


def test_a_lane_message_is_handled_before_the_backlog_of_the_main_queue(
    amqp_vhost: str, service: str, publisher: bus.KombuPublisher
):
    order: list[str] = []

    def slow(ping: Ping) -> list[contracts.Message]:
        time.sleep(0.2)
        order.append(f"ping{ping.n}")
        return []

    def finish(message: Finish) -> list[contracts.Message]:
        order.append(f"finish{message.n}")
        return []

    handlers: bus.HandlerMap = {Ping: slow, Finish: finish}
    lanes = {"decisions": [Finish]}
    bus.declare_topology(
        amqp_vhost,
        service,
        bus.routing_keys(handlers),
        {"decisions": bus.routing_keys([Finish])},
    )
    publisher.publish([a_ping(n) for n in range(10)])
    publisher.publish([contracts.seal(Finish(n=1), producer="test")])
    worker = bus.Worker(amqp_vhost, service, handlers, prefetch=1, lanes=lanes)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()

    try:
        wait_for(lambda: len(order) == 11)
        assert order.index("finish1") <= 2, order  # not after the ten pings
    finally:
        worker.stop()
        thread.join(10)
