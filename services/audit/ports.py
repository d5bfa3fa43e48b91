"""Ports the audit handler and views need."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

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
