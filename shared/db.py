"""SQL glue: engines (PostgreSQL, or SQLite embedded), UTC timestamps, Alembic.

Each service owns its tables and its migrations (``services/<svc>/migrations``); in
production each service has its own database, so no service can read another's tables.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    MetaData,
    create_engine,
    event,
    make_url,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

logger = logging.getLogger(__name__)
VERSION_TABLE_PREFIX = "alembic_version_"
_local_migrations = threading.Lock()  # SQLite has no advisory lock


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware in Python, stored as UTC (SQLite has no time zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime | None, dialect: Any
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: datetime | None, dialect: Any
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with pre-ping; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, **kwargs)


def version_table(migrations: Path | str) -> str:
    """Alembic's bookkeeping table for one service: ``alembic_version_<service>``.

    Named per service so that services sharing one database (``DATABASE_URL``) never
    mistake each other's revision ``0001`` for their own.
    """
    return VERSION_TABLE_PREFIX + Path(migrations).resolve().parent.name


def migrate(engine: Engine, migrations: Path | str) -> None:
    """Bring the schema of one service up to its newest Alembic revision.

    Safe to call from every process at start-up: on PostgreSQL an advisory lock makes
    one migrate while the others wait; on SQLite a process-wide lock does the same.
    """
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.attributes["version_table"] = version_table(migrations)
    with _local_migrations, engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # api and worker containers start together: one migrates, the other waits.
            conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext('safepost-migrate'))")
            )
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def schema_diffs(connection: Connection, metadata: MetaData) -> list[Any]:
    """Differences between the migrated schema and ``metadata`` (empty when they match).

    Alembic's own version tables are ignored, whatever the service.
    """
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    def not_bookkeeping(name: str | None, type_: str, _parent: Any) -> bool:
        return not (type_ == "table" and (name or "").startswith("alembic_version"))

    context = MigrationContext.configure(
        connection, opts={"include_name": not_bookkeeping, "compare_type": True}
    )
    return list(compare_metadata(context, metadata))


def run_env(target_metadata: Any = None) -> None:
    """Body of every service's migrations/env.py (online, on the given connection)."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    table = context.config.attributes.get("version_table", "alembic_version")
    if connection is None:
        url = context.config.get_main_option("sqlalchemy.url")
        engine = make_engine(url or "sqlite://")
        with engine.begin() as conn:
            context.configure(
                connection=conn,
                target_metadata=target_metadata,
                render_as_batch=True,
                version_table=table,
            )
            context.run_migrations()
        return
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        version_table=table,
    )
    with context.begin_transaction():
        context.run_migrations()


def ping(engine: Engine) -> None:
    """A ready check: raise unless the database answers."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def utcnow() -> datetime:
    return datetime.now(UTC)


# The transactional outbox table every service that writes state outside its worker
# keeps (intake, consent, publishing): the same columns, the same two queries. The
# relay (``shared.outbox.relay``) reads it through the service's adapter.


def outbox_table(metadata: MetaData) -> Any:
    """The ``outbox`` table in a service's metadata (its migration creates it)."""
    import sqlalchemy as sa

    return sa.Table(
        "outbox",
        metadata,
        sa.Column("envelope_id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(80), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False, index=True),
        sa.Column("sent_at", UtcDateTime, nullable=True),
    )


def outbox_row(envelope: Any, at: datetime) -> dict[str, Any]:
    """The row that keeps one envelope (a ``shared.contracts.Envelope``) until sent."""
    return {
        "envelope_id": envelope.id,
        "type": envelope.type,
        "body": envelope.model_dump_json(),
        "created_at": at,
    }


def outbox_pending(engine: Engine, table: Any, limit: int) -> list[Any]:
    """Envelopes not yet confirmed by the broker, oldest first."""
    import sqlalchemy as sa

    from shared import contracts

    query = (
        sa.select(table.c.body)
        .where(table.c.sent_at.is_(None))
        .order_by(table.c.created_at, table.c.envelope_id)
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).scalars().all()
    return [contracts.Envelope.model_validate_json(body) for body in rows]


_sqlite_outbox_locks: dict[str, threading.Lock] = {}


def outbox_claim(
    engine: Engine,
    table: Any,
    publish: Callable[[Any], bool],
    limit: int,
    at: Callable[[], datetime],
    only: Any = None,
) -> tuple[int, bool]:
    """Claim pending rows, publish them in order, mark those published sent: one
    transaction, so a second relay (another thread or process) never sends the same
    row at the same time. PostgreSQL locks the rows and other relays skip them
    (``FOR UPDATE SKIP LOCKED``); SQLite (one process) takes a lock per database.
    Returns (how many were sent, whether one failed)."""
    import sqlalchemy as sa

    from shared import contracts

    query = (
        sa.select(table.c.body)
        .where(table.c.sent_at.is_(None))
        .order_by(table.c.created_at, table.c.envelope_id)
        .limit(limit)
    )
    if only is not None:
        query = query.where(table.c.envelope_id.in_(list(only)))
    if engine.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
        lock: Any = contextlib.nullcontext()
    else:
        lock = _sqlite_outbox_locks.setdefault(str(engine.url), threading.Lock())
    sent: list[str] = []
    failed = False
    with lock, engine.begin() as conn:
        for body in conn.execute(query).scalars().all():
            envelope = contracts.Envelope.model_validate_json(body)
            if not publish(envelope):
                failed = True
                break
            sent.append(envelope.id)
        if sent:
            conn.execute(
                table.update().where(table.c.envelope_id.in_(sent)).values(sent_at=at())
            )
    return len(sent), failed


def outbox_mark_sent(
    engine: Engine, table: Any, envelope_ids: Any, at: datetime
) -> None:
    """Record that the broker confirmed these envelopes."""
    if not envelope_ids:
        return
    with engine.begin() as conn:
        conn.execute(
            table.update()
            .where(table.c.envelope_id.in_(list(envelope_ids)))
            .where(table.c.sent_at.is_(None))
            .values(sent_at=at)
        )


def outbox_add(conn: Connection, table: Any, envelopes: Any, at: datetime) -> None:
    """Record envelopes in the outbox inside the caller's transaction; an envelope
    already there (the same message handled again) is left as it is."""
    rows = [outbox_row(e, at) for e in envelopes]
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(table).on_conflict_do_nothing(), rows)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(table).on_conflict_do_nothing(), rows)


class SqlOutbox:
    """A service's outbox table as ``shared.outbox.Outbox`` (and for inspection)."""

    def __init__(self, engine: Engine, table: Any, now: Callable[[], datetime]):
        self.engine, self.table, self.now = engine, table, now

    def pending(self, limit: int = 100) -> list[Any]:
        return outbox_pending(self.engine, self.table, limit)

    def claim(
        self, publish: Callable[[Any], bool], limit: int = 100, only: Any = None
    ) -> tuple[int, bool]:
        return outbox_claim(self.engine, self.table, publish, limit, self.now, only)


class Repository:
    """A repository on an engine (each call its own transaction: the read side and
    the older ports) or on a unit of work's connection (the caller's transaction)."""

    def __init__(self, bind: Engine | Connection):
        self.bind = bind

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Connection]:
        if isinstance(self.bind, Connection):
            yield self.bind
        else:
            with self.bind.begin() as conn:
                yield conn
