"""A worker in its own process, for the kill-mid-message tests in test_bus_rabbitmq.py.

``python -m tests.integration.bus_worker_process URL SERVICE DB BLOCK`` consumes
``Ping`` and records each attempt and (idempotently) each effect in the SQLite file
``DB``. ``BLOCK`` is where it hangs until killed: ``handler`` (after the effect,
before returning), ``published`` (after its results are confirmed, before the ack) or
``never``.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Sequence
from typing import ClassVar

from shared import bus, contracts


class Ping(contracts.Command):
    TYPE: ClassVar[str] = "test.ping"

    n: int


class Pong(contracts.Event):
    TYPE: ClassVar[str] = "test.pong"

    n: int


def open_db(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)
    conn.execute("CREATE TABLE IF NOT EXISTS attempts (n INTEGER, stage TEXT)")
    conn.execute("CREATE TABLE IF NOT EXISTS effects (n INTEGER PRIMARY KEY)")
    return conn


def record(ping: Ping, *, db: str, block: str) -> list[contracts.Message]:
    """Idempotent: a redelivered Ping adds an attempt but never a second effect."""
    with open_db(db) as conn:
        conn.execute("INSERT INTO attempts VALUES (?, 'handler')", (ping.n,))
        conn.execute("INSERT OR IGNORE INTO effects VALUES (?)", (ping.n,))
    if block == "handler":
        threading.Event().wait()  # until SIGKILL
    return [Pong(n=ping.n)]


class HangAfterPublish:
    """Publishes (confirmed), then hangs: the crash window between confirm and ack."""

    def __init__(self, inner: bus.Publisher, db: str):
        self.inner = inner
        self.db = db

    def publish(self, envelopes: Sequence[contracts.Envelope]) -> None:
        self.inner.publish(envelopes)
        with open_db(self.db) as conn:
            conn.execute("INSERT INTO attempts VALUES (-1, 'published')")
        threading.Event().wait()  # until SIGKILL


def main(url: str, service: str, db: str, block: str) -> None:
    def handle(ping: Ping) -> list[contracts.Message]:
        return record(ping, db=db, block=block)

    publisher = None
    if block == "published":
        publisher = HangAfterPublish(bus.KombuPublisher(url), db)
    bus.Worker(url, service, {Ping: handle}, publisher=publisher, prefetch=1).run()


if __name__ == "__main__":
    main(*sys.argv[1:5])
