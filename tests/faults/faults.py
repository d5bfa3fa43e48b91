"""The faults a run injects, one after another on a schedule, each recorded with
when it happened, how long it lasted and what it did."""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Response, request


@dataclass
class Injected:
    name: str
    at: float  # seconds since the run started
    seconds: float = 0.0
    note: str = ""
    error: str = ""


@dataclass
class Schedule:
    """Runs the steps in order with ``gap`` seconds between them. The first pass
    runs whole; later ones run while ``again()`` says so (the load goes on), the
    steps in ``once`` only in the first. Each step is (name, function -> note)."""

    steps: list[tuple[str, Callable[[], str]]]
    once: set[str]
    again: Callable[[], bool]
    t0: float
    gap: float = 8.0
    done: list[Injected] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, daemon=True, name="faults")
        self.thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def run(self) -> None:
        passes = 0
        while self.steps and not self.stop.is_set():
            for name, step in self.steps:
                if passes and (name in self.once or not self.again()):
                    continue  # a later pass ends with the load
                if self.stop.wait(self.gap):
                    return
                item = Injected(name, time.monotonic() - self.t0)
                try:
                    item.note = step()
                except Exception as exc:  # noqa: BLE001 - recorded and reported
                    item.error = f"{type(exc).__name__}: {exc}"
                    traceback.print_exc()
                item.seconds = time.monotonic() - self.t0 - item.at
                self.done.append(item)
            passes += 1
            if not self.again():
                return


class KillOnAnswer:
    """kill -9 a process right after a sandbox answered a create (the post is made
    on the platform; the worker has not recorded it yet). ``delay`` 0 kills before
    the answer leaves the sandbox (the worker never hears it); a small delay kills
    just after it arrived, before the worker's marker is written."""

    def __init__(self, sandbox: Any, method: str, path_end: str):
        self.method = method
        self.path_end = path_end
        self.armed: tuple[Callable[[], int], float] | None = None
        self.fired = threading.Event()
        self.lock = threading.Lock()
        sandbox.app.after_request(self._after)

    def arm(self, pid: Callable[[], int], delay: float) -> None:
        with self.lock:
            self.fired.clear()
            self.armed = (pid, delay)

    def disarm(self) -> None:
        with self.lock:
            self.armed = None

    def _after(self, response: Response) -> Response:
        if request.method != self.method or not request.path.endswith(self.path_end):
            return response
        if response.status_code >= 300:
            return response
        with self.lock:
            armed, self.armed = self.armed, None
        if armed is None:
            return response
        pid, delay = armed

        def kill() -> None:
            os.kill(pid(), signal.SIGKILL)
            self.fired.set()

        if delay <= 0:
            kill()
        else:
            threading.Timer(delay, kill).start()
        return response


def republish(url: str, tap: str, limit: int) -> int:
    """Publish again, unchanged (same id, type, headers, routing key), the last
    ``limit`` envelopes the tap queue caught: duplicate deliveries."""
    import pika

    sent = 0
    with pika.BlockingConnection(pika.URLParameters(url)) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        got = []
        for _ in range(limit):
            method, props, body = channel.basic_get(tap, auto_ack=True)
            if method is None:
                break
            got.append((method.routing_key, props, body))
        for key, props, body in got:
            channel.basic_publish("posting", key, body, props, mandatory=True)
            sent += 1
    return sent


def declare_tap(url: str, tap: str, keep: int) -> None:
    """A queue that keeps the latest ``keep`` envelopes of every type."""
    import pika

    with pika.BlockingConnection(pika.URLParameters(url)) as conn:
        channel = conn.channel()
        channel.exchange_declare("posting", "topic", durable=True)
        channel.queue_declare(
            tap,
            durable=True,
            arguments={"x-max-length": keep, "x-overflow": "drop-head"},
        )
        channel.queue_bind(tap, "posting", "#")


def queue_depths(url: str, queues: list[str]) -> dict[str, int]:
    import pika

    out = {}
    with pika.BlockingConnection(pika.URLParameters(url)) as conn:
        for queue in queues:
            channel = conn.channel()
            try:
                ok = channel.queue_declare(queue, passive=True)
                out[queue] = int(ok.method.message_count)
                channel.close()
            except pika.exceptions.ChannelClosedByBroker:
                out[queue] = -1
    return out
