"""Several relays racing over one SQL outbox: each envelope must go out once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared import contracts, db, outbox
from tests.support.bus import InMemoryBus


class SqlOutbox:
    def __init__(self, engine: Engine, table: sa.Table) -> None:
        self.engine, self.table = engine, table

    def claim(self, publish: outbox.Publish, limit: int = 100, only=None):  # type: ignore[no-untyped-def]
        now = lambda: datetime.now(UTC)  # noqa: E731
        return db.outbox_claim(self.engine, self.table, publish, limit, now, only)


def race(engine: Engine, rows: int = 60, relays: int = 4) -> list[str]:
    """Record ``rows`` envelopes, then send each from the request path (``send``)
    while ``relays`` background relays run: what the broker received."""
    metadata = sa.MetaData()
    table = db.outbox_table(metadata)
    metadata.create_all(engine)
    envelopes = [
        contracts.seal(
            contracts.PostRejected(post_id=f"p{n}", school_id="oak", reason="x"),
            producer="test",
        )
        for n in range(rows)
    ]
    with engine.begin() as conn:
        conn.execute(
            table.insert(), [db.outbox_row(e, datetime.now(UTC)) for e in envelopes]
        )
    box, bus = SqlOutbox(engine, table), InMemoryBus(delay=0.002)  # a slow broker
    with ThreadPoolExecutor(relays + 1) as pool:
        jobs = [pool.submit(outbox.relay, box, bus, 5) for _ in range(relays)]
        for envelope in envelopes:
            assert outbox.send(box, bus, envelope)
        for job in jobs:
            job.result()
    outbox.relay(box, bus)
    return bus.ids()
