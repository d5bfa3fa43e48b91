"""Who each approved round shows, takedowns and manual takedown tasks, in SQL (the
Takedowns port). The messages these changes owe are the use cases' to emit."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.publishing import domain
from services.publishing.adapters.tables import (
    insert_new,
    manual_takedowns,
    shown_pupils,
    takedowns,
)
from shared.db import Repository


class SqlTakedowns(Repository):
    def show(
        self, post_id: str, round_: int, school_id: str, pupils: Sequence[str]
    ) -> None:
        rows = [
            {"post_id": post_id, "round": round_, "pupil_id": p, "school_id": school_id}
            for p in sorted(set(pupils))
        ]
        if not rows:
            return
        with self._begin() as conn:
            known = {
                r.pupil_id
                for r in conn.execute(
                    sa.select(shown_pupils.c.pupil_id).where(
                        shown_pupils.c.post_id == post_id,
                        shown_pupils.c.round == round_,
                    )
                )
            }
            new = [r for r in rows if r["pupil_id"] not in known]
            if new:
                conn.execute(shown_pupils.insert(), new)

    def posts_showing(self, school_id: str, pupil_id: str) -> list[tuple[str, int]]:
        query = (
            sa.select(shown_pupils.c.post_id, shown_pupils.c.round)
            .where(
                shown_pupils.c.school_id == school_id,
                shown_pupils.c.pupil_id == pupil_id,
            )
            .order_by(shown_pupils.c.post_id, shown_pupils.c.round)
        )
        with self._begin() as conn:
            return [(r.post_id, r.round) for r in conn.execute(query)]

    def open(self, takedown: domain.Takedown) -> bool:
        values = {
            "takedown_id": takedown.takedown_id,
            "school_id": takedown.school_id,
            "pupil_id": takedown.pupil_id,
            "reason": takedown.reason,
            "detail": takedown.detail,
            "by": takedown.by,
            "changed_at": takedown.changed_at,
            "requested_at": takedown.requested_at,
        }
        with self._begin() as conn:
            return insert_new(conn, takedowns, values)

    def get(self, takedown_id: str) -> domain.Takedown | None:
        query = takedowns.select().where(takedowns.c.takedown_id == takedown_id)
        with self._begin() as conn:
            row = conn.execute(query).first()
        return _takedown(row._mapping) if row else None

    def complete(self, takedown_id: str, at: datetime) -> bool:
        """Mark it complete, once (True for the caller that did)."""
        with self._begin() as conn:
            return bool(
                conn.execute(
                    takedowns.update()
                    .where(
                        takedowns.c.takedown_id == takedown_id,
                        takedowns.c.completed_at.is_(None),
                    )
                    .values(completed_at=at)
                ).rowcount
            )

    def open_manual(self, task: domain.ManualTask) -> bool:
        key = (
            manual_takedowns.c.post_id == task.post_id,
            manual_takedowns.c.account_id == task.account_id,
        )
        values = {
            "school_id": task.school_id,
            "owner": task.owner,
            "url": task.url,
            "reason": task.reason,
            "opened_at": task.opened_at,
            "escalated_at": None,
            "closed_at": None,
            "closed_by": None,
            "confirmation": "",
        }
        with self._begin() as conn:
            row = conn.execute(manual_takedowns.select().where(*key)).first()
            if row is not None and row.closed_at is None:
                return False  # already open
            if row is None:
                conn.execute(
                    manual_takedowns.insert().values(
                        post_id=task.post_id, account_id=task.account_id, **values
                    )
                )
            else:
                conn.execute(manual_takedowns.update().where(*key).values(**values))
            return True

    def manual(
        self, *, schools: set[str] | None = None, open_only: bool = True
    ) -> list[domain.ManualTask]:
        query = manual_takedowns.select().order_by(manual_takedowns.c.opened_at)
        if schools is not None:
            query = query.where(manual_takedowns.c.school_id.in_(sorted(schools)))
        if open_only:
            query = query.where(manual_takedowns.c.closed_at.is_(None))
        with self._begin() as conn:
            return [_manual(r._mapping) for r in conn.execute(query)]

    def escalate(self, post_id: str, account_id: str, at: datetime) -> bool:
        with self._begin() as conn:
            return bool(
                conn.execute(
                    manual_takedowns.update()
                    .where(
                        manual_takedowns.c.post_id == post_id,
                        manual_takedowns.c.account_id == account_id,
                        manual_takedowns.c.escalated_at.is_(None),
                        manual_takedowns.c.closed_at.is_(None),
                    )
                    .values(escalated_at=at)
                ).rowcount
            )

    def close_manual(
        self,
        post_id: str,
        account_id: str,
        by: str,
        confirmation: str,
        at: datetime,
    ) -> domain.ManualTask | None:
        """Close an open task (None if none is open)."""
        key = (
            manual_takedowns.c.post_id == post_id,
            manual_takedowns.c.account_id == account_id,
        )
        with self._begin() as conn:
            done = conn.execute(
                manual_takedowns.update()
                .where(*key, manual_takedowns.c.closed_at.is_(None))
                .values(closed_at=at, closed_by=by, confirmation=confirmation)
            ).rowcount
            if not done:
                return None
            row = conn.execute(manual_takedowns.select().where(*key)).one()
        return _manual(row._mapping)


def _takedown(row: Any) -> domain.Takedown:
    return domain.Takedown(
        takedown_id=row["takedown_id"],
        school_id=row["school_id"],
        reason=row["reason"],
        requested_at=row["requested_at"],
        pupil_id=row["pupil_id"],
        detail=row["detail"] or "",
        by=row["by"],
        changed_at=row["changed_at"],
        completed_at=row["completed_at"],
    )


def _manual(row: Any) -> domain.ManualTask:
    return domain.ManualTask(
        post_id=row["post_id"],
        account_id=row["account_id"],
        school_id=row["school_id"],
        reason=row["reason"],
        opened_at=row["opened_at"],
        owner=row["owner"] or "",
        url=row["url"] or "",
        escalated_at=row["escalated_at"],
        closed_at=row["closed_at"],
        closed_by=row["closed_by"],
        confirmation=row["confirmation"] or "",
    )
