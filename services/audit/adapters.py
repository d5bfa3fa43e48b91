"""SQL implementation of the audit trail: an append-only, hash-chained table, and
audit's unit of work on it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.audit import domain
from services.audit.domain import Entry, Query, Record
from shared.db import Repository, UtcDateTime

metadata = sa.MetaData()

audit_records = sa.Table(
    "audit_records",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.Text, nullable=False, unique=True),
    sa.Column("type", sa.Text, nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("producer", sa.Text, nullable=False),
    sa.Column("occurred_at", UtcDateTime(), nullable=False, index=True),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Column("correlation_id", sa.Text, nullable=False, index=True),
    sa.Column("causation_id", sa.Text, nullable=True),
    sa.Column("actor", sa.Text, nullable=True, index=True),
    sa.Column("school_id", sa.Text, nullable=True, index=True),
    sa.Column("post_id", sa.Text, nullable=True, index=True),
    sa.Column("photo_id", sa.Text, nullable=True, index=True),
    sa.Column("pupil_ids", sa.JSON, nullable=False),
    sa.Column("device_id", sa.Text, nullable=True, index=True),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)

_CHAIN_LOCK = "SELECT pg_advisory_xact_lock(hashtext('safepost-audit-chain'))"
_BATCH = 1000


class SqlAuditTrail(Repository):
    """AuditJournal and AuditLog on one table; appends are serialised per database.
    On a unit of work's connection (the journal) or on the engine (the log's reads)."""

    def __init__(self, bind: Engine | Connection):
        super().__init__(bind)

    def append(self, entry: Entry) -> bool:
        with self._begin() as conn:
            _lock_chain(conn)
            c = audit_records.c
            if conn.execute(
                sa.select(c.seq).where(c.message_id == entry.message_id)
            ).first():
                return False
            head = conn.execute(
                sa.select(c.seq, c.hash).order_by(c.seq.desc()).limit(1)
            ).first()
            seq, prev = (head.seq + 1, head.hash) if head else (1, domain.GENESIS)
            record = domain.chain(entry, seq, prev)
            conn.execute(audit_records.insert().values(**_row(record)))
        return True

    def search(self, query: Query) -> list[Record]:
        c = audit_records.c
        stmt = (
            sa.select(audit_records)
            .where(*_conditions(query), c.seq > query.after)
            .order_by(c.seq)
            .limit(query.limit)
        )
        with self._begin() as conn:
            return [_record(row._mapping) for row in conn.execute(stmt)]

    def chain(self) -> Iterator[Record]:
        after = 0
        while True:
            batch = self.search(Query(after=after, limit=_BATCH))
            yield from batch
            if len(batch) < _BATCH:
                return
            after = batch[-1].seq


def _lock_chain(conn: Connection) -> None:
    """Take the chain's write lock for this transaction (one appender at a time)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text(_CHAIN_LOCK))
    elif conn.dialect.name == "sqlite" and not _sqlite_writing(conn):
        # pysqlite would begin lazily at the INSERT, after we read the head.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_writing(conn: Connection) -> bool:
    """Whether pysqlite already began (it does at the first write, which already
    holds SQLite's write lock for the rest of the transaction)."""
    return bool(conn.connection.dbapi_connection.in_transaction)  # type: ignore[union-attr]


class AuditUnit:
    """Audit's unit of work: the journal on one connection and transaction. Nothing is
    kept until ``commit``; leaving the block without it rolls back. No outbox: audit
    sends nothing (``ports.Unit`` has no ``emit``). One per use case run."""

    journal: SqlAuditTrail

    def __init__(self, engine: Engine):
        self.engine = engine
        self._conn: Connection | None = None
        self._committed = False

    def __enter__(self) -> Self:
        if self._conn is not None:
            raise RuntimeError("a unit of work is not re-entrant")
        self._conn = self.engine.connect()
        self._conn.begin()
        self._committed = False
        self.journal = SqlAuditTrail(self._conn)
        return self

    def commit(self) -> None:
        if self._conn is None:
            raise RuntimeError("use the unit of work inside `with`")
        self._conn.commit()
        self._committed = True

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if not self._committed:
                conn.rollback()
        finally:
            conn.close()


def _conditions(query: Query) -> list[Any]:
    c = audit_records.c
    out: list[Any] = []
    if query.schools is not None:
        out.append(c.school_id.in_(sorted(query.schools)))
    equal = {
        c.school_id: query.school,
        c.post_id: query.post,
        c.photo_id: query.photo,
        c.actor: query.actor,
        c.type: query.type,
        c.device_id: query.device,
    }
    out += [column == value for column, value in equal.items() if value is not None]
    if query.pupil is not None:
        # pupil_ids is a JSON list of strings: match the quoted id exactly.
        quoted = json.dumps(query.pupil)
        out.append(sa.cast(c.pupil_ids, sa.Text).contains(quoted, autoescape=True))
    if query.since is not None:
        out.append(c.occurred_at >= query.since)
    if query.until is not None:
        out.append(c.occurred_at <= query.until)
    return out


def _row(record: Record) -> dict[str, Any]:
    row = {col.name: getattr(record, col.name) for col in audit_records.c}
    row["pupil_ids"] = list(record.pupil_ids)
    row["data"] = dict(record.data)
    return row


def _record(row: Any) -> Record:
    values = dict(row)
    values["pupil_ids"] = tuple(values["pupil_ids"])
    return Record(**values)
