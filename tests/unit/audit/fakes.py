"""A small working fake of the audit trail (journal and log)."""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Self

from services.audit import domain
from services.audit.bootstrap import Ports
from services.audit.domain import Entry, Query, Record
from tests.unit.audit.builders import a_clock


class InMemoryAuditTrail:
    def __init__(self) -> None:
        self.records: list[Record] = []

    def append(self, entry: Entry) -> bool:
        if any(r.message_id == entry.message_id for r in self.records):
            return False
        head = self.records[-1] if self.records else None
        seq, prev = (head.seq + 1, head.hash) if head else (1, domain.GENESIS)
        self.records.append(domain.chain(entry, seq, prev))
        return True

    def search(self, query: Query) -> list[Record]:
        found = [r for r in self.records if r.seq > query.after and _matches(r, query)]
        return found[: query.limit]

    def chain(self) -> Iterator[Record]:
        return iter(list(self.records))


def _matches(r: Record, q: Query) -> bool:
    pairs = [
        (r.school_id, q.school),
        (r.post_id, q.post),
        (r.photo_id, q.photo),
        (r.actor, q.actor),
        (r.type, q.type),
        (r.device_id, q.device),
    ]
    return (
        all(want is None or have == want for have, want in pairs)
        and (q.schools is None or r.school_id in q.schools)
        and (q.pupil is None or q.pupil in r.pupil_ids)
        and (q.since is None or r.occurred_at >= q.since)
        and (q.until is None or r.occurred_at <= q.until)
    )


class FakeAuditUnit:
    """Audit's unit of work over the in-memory trail (not rolled back: atomicity is
    tested on the SQL unit, tests/unit/audit/test_adapters.py); counts commits."""

    def __init__(self, journal: InMemoryAuditTrail) -> None:
        self.journal = journal
        self.commits = 0

    def __enter__(self) -> Self:
        return self

    def commit(self) -> None:
        self.commits += 1

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        pass


def fake_ports() -> Ports:
    trail = InMemoryAuditTrail()
    return Ports(log=trail, unit=lambda: FakeAuditUnit(trail), clock=a_clock())
