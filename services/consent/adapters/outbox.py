"""What consent's outbox already holds (the expiry sweep announces each expiry once)."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from services.consent.adapters.tables import outbox
from shared.db import Repository

CHUNK = 500  # ids per query (SQLite limits a statement's parameters)


class SqlOutboxLog(Repository):
    def recorded(self, envelope_ids: Iterable[str]) -> set[str]:
        """Those of these envelope ids already in the outbox (sent or not)."""
        wanted = sorted(set(envelope_ids))
        found: set[str] = set()
        with self._begin() as conn:
            for i in range(0, len(wanted), CHUNK):
                query = sa.select(outbox.c.envelope_id).where(
                    outbox.c.envelope_id.in_(wanted[i : i + CHUNK])
                )
                found.update(conn.execute(query).scalars())
        return found
