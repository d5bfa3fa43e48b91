"""The unit of work: one transaction for a use case's changes and the messages it emits.

Every state change of a service — from a bus message, an HTTP request, the CLI or a
sweep — is a use case that runs as::

    with uow:
        post = uow.posts.get(post_id)
        ...
        uow.posts.save(post)
        uow.emit(contracts.PostApproved(...))
        uow.commit()

``emit`` only records the message; ``commit`` writes the changes and the outbox rows in
one transaction, and on the way out of the ``with`` the new rows are sent (claimed, so
a relay elsewhere never sends them too). If the broker is away they wait in the outbox
for the service's relay. Leaving the block without ``commit`` rolls everything back.

While a worker handles a message (``shared.bus.incoming``), what a use case emits is
sealed with that message as its cause: ids are derived from the incoming id (uuid5),
so a redelivered message emits identical envelopes, and a repeated outbox row is
ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Engine

from shared import contracts, db, outbox
from shared.bus import Publisher, incoming

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=contracts.Message)
U = TypeVar("U", bound="UnitOfWork")


class UnitOfWork(Protocol):
    """What a use case needs of a unit of work (a service's adds its repositories)."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def emit(
        self,
        message: contracts.Message,
        *,
        actor: str | None = None,
        message_id: str | None = None,
    ) -> contracts.Envelope: ...

    def commit(self) -> None: ...


def transaction(
    make_unit: Callable[[], U],
    use_case: Callable[[U, M], Sequence[contracts.Message]],
) -> Callable[[M], list[contracts.Message]]:
    """A bus handler: ``use_case`` in a fresh unit of work; the messages it returns
    are emitted through the outbox in the same transaction (nothing is left for the
    worker to publish)."""

    def handle(message: M) -> list[contracts.Message]:
        with make_unit() as unit:
            for out in use_case(unit, message):
                unit.emit(out)
            unit.commit()
        return []

    return handle


class SqlUnitOfWork:
    """One connection and transaction; a service's subclass builds its repositories
    on that connection in ``bind``. Not thread-safe: one per use case run (build a
    fresh one with the service's factory)."""

    def __init__(
        self,
        engine: Engine,
        outbox_table: Table,
        *,
        producer: str,
        publisher: Publisher | None,
        now: Callable[[], datetime] = db.utcnow,
    ):
        self.engine = engine
        self.outbox_table = outbox_table
        self.producer = producer
        self.publisher = publisher
        self.now = now
        self._conn: Connection | None = None
        self._emitted: list[contracts.Envelope] = []
        self._committed = False

    def bind(self, conn: Connection) -> None:
        """Build the repositories on ``conn`` (subclasses)."""

    @property
    def connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("use the unit of work inside `with`")
        return self._conn

    def __enter__(self) -> Self:
        if self._conn is not None:
            raise RuntimeError("a unit of work is not re-entrant")
        self._conn = self.engine.connect()
        self._conn.begin()
        self._emitted = []
        self._committed = False
        self.bind(self._conn)
        return self

    def emit(
        self,
        message: contracts.Message,
        *,
        actor: str | None = None,
        message_id: str | None = None,
    ) -> contracts.Envelope:
        """Record ``message`` to be sent once the transaction commits."""
        envelope = contracts.seal(
            message,
            producer=self.producer,
            cause=incoming(),
            index=len(self._emitted),
            actor=actor,
            message_id=message_id,
        )
        self._emitted.append(envelope)
        return envelope

    def commit(self) -> None:
        conn = self.connection
        if self._emitted:
            db.outbox_add(conn, self.outbox_table, self._emitted, self.now())
        conn.commit()
        self._committed = True

    def rollback(self) -> None:
        self.connection.rollback()
        self._emitted = []

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self.connection, None
        try:
            if not self._committed:
                conn.rollback()
        finally:
            conn.close()
        if self._committed and self._emitted and self.publisher is not None:
            self.send(self._emitted)

    def send(self, envelopes: list[contracts.Envelope]) -> None:
        """Send what was just committed; what the broker will not take now stays in
        the outbox for the relay."""
        box = db.SqlOutbox(self.engine, self.outbox_table, self.now)
        assert self.publisher is not None
        for envelope in envelopes:
            if not outbox.send(box, self.publisher, envelope):
                break


def relay_task(
    engine: Engine, table: Table, publisher: Publisher, seconds: float = 2.0
) -> Callable[[Any], None]:
    """A background task that relays what no use case could send at once."""
    box = db.SqlOutbox(engine, table, db.utcnow)

    def run(stop: Any) -> None:
        outbox.every(
            seconds, lambda: outbox.relay(box, publisher), stop, "outbox relay"
        )

    return run
