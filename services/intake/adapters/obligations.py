"""Deletion obligations in SQL."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.intake import domain
from services.intake.adapters.tables import obligations as table
from shared.db import Repository


class SqlObligations(Repository):
    def open(self, obligations: Sequence[domain.Obligation]) -> None:
        if not obligations:
            return
        with self._begin() as conn:
            conn.execute(table.insert(), [_row(o) for o in obligations])

    def find(
        self,
        *,
        device_ids: Collection[str] | None = None,
        owner: str | None = None,
        receipt_id: str | None = None,
        open_only: bool = True,
    ) -> list[domain.Obligation]:
        query = sa.select(table).order_by(table.c.due_at, table.c.receipt_id)
        if device_ids is not None:
            query = query.where(table.c.device_id.in_(list(device_ids)))
        if owner is not None:
            query = query.where(table.c.owner == owner)
        if receipt_id is not None:
            query = query.where(table.c.receipt_id == receipt_id)
        if open_only:
            query = query.where(table.c.closed_at.is_(None))
        with self._begin() as conn:
            return [_obligation(r) for r in conn.execute(query).all()]

    def overdue_count(self, device_id: str, now: datetime) -> int:
        query = (
            sa.select(sa.func.count())
            .select_from(table)
            .where(table.c.device_id == device_id)
            .where(table.c.closed_at.is_(None))
            .where(table.c.due_at <= now)
        )
        with self._begin() as conn:
            return int(conn.execute(query).scalar_one())

    def close(self, closed: domain.Obligation) -> bool:
        with self._begin() as conn:
            done = conn.execute(
                table.update()
                .where(table.c.receipt_id == closed.receipt_id)
                .where(table.c.closed_at.is_(None))
                .values(
                    closed_at=closed.closed_at,
                    deleted_at=closed.deleted_at,
                    method=closed.method,
                    confirmed_by=closed.confirmed_by,
                )
            )
        return done.rowcount == 1

    def due(self, now: datetime) -> list[domain.Obligation]:
        query = (
            sa.select(table)
            .where(table.c.closed_at.is_(None))
            .where(table.c.overdue_at.is_(None))
            .where(table.c.due_at <= now)
            .order_by(table.c.due_at, table.c.receipt_id)
        )
        with self._begin() as conn:
            return [_obligation(r) for r in conn.execute(query).all()]

    def flag_overdue(self, receipt_id: str, at: datetime) -> bool:
        with self._begin() as conn:
            flagged = conn.execute(
                table.update()
                .where(table.c.receipt_id == receipt_id)
                .where(table.c.overdue_at.is_(None))
                .values(overdue_at=at)
            )
        return flagged.rowcount == 1


def _row(o: domain.Obligation) -> dict[str, Any]:
    return {c.name: getattr(o, c.name) for c in table.columns}


def _obligation(row: Any) -> domain.Obligation:
    return domain.Obligation(**{c.name: getattr(row, c.name) for c in table.columns})
