"""Ports the audit use case and views need."""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Protocol, Self

from services.audit.domain import Entry, Query, Record


class AuditJournal(Protocol):
    def append(self, entry: Entry) -> bool:
        """Add the entry at the head of the chain, once per message id (serialised).

        False if that message id is already recorded (nothing changes)."""


class AuditLog(Protocol):
    def search(self, query: Query) -> list[Record]:
        """Records matching the query, by seq, after ``query.after``, at most
        ``query.limit``."""

    def chain(self) -> Iterator[Record]:
        """Every record in seq order (streamed), for verification."""


class Unit(Protocol):
    """Audit's unit of work: the journal on one transaction, committed before the
    message is acknowledged. No outbox and no ``emit``: audit sends nothing, so a use
    case that tried to would not type-check (give audit an outbox first)."""

    @property
    def journal(self) -> AuditJournal: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def commit(self) -> None: ...
