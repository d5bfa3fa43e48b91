"""Approval rounds and delivery markers in SQL (the Approvals and DeliveryLog ports)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from services.publishing import domain
from services.publishing.adapters.tables import (
    approval_rounds,
    deliveries,
    insert_new,
)
from services.publishing.ports import Approval
from shared import contracts
from shared.db import Repository, utcnow


class SqlApprovals(Repository):
    """Approval rounds kept until consent clears them."""

    def open(self, event: contracts.PostApproved) -> Approval:
        key = (
            approval_rounds.c.post_id == event.post_id,
            approval_rounds.c.round == event.round,
        )
        with self._begin() as conn:
            row = conn.execute(approval_rounds.select().where(*key)).first()
            if row is None:  # inserted unless opened concurrently: read it below
                insert_new(
                    conn,
                    approval_rounds,
                    {
                        "post_id": event.post_id,
                        "round": event.round,
                        "school_id": event.school_id,
                        "state": domain.VERIFYING,
                        "event": event.model_dump(mode="json"),
                        "updated_at": utcnow(),
                    },
                )
            elif row.event is None:  # recalled before it arrived: keep the event
                conn.execute(
                    approval_rounds.update()
                    .where(*key)
                    .values(event=event.model_dump(mode="json"))
                )
            row = conn.execute(approval_rounds.select().where(*key)).one()
        return _approval(row._mapping)

    def get(self, post_id: str, round_: int) -> Approval | None:
        query = approval_rounds.select().where(
            approval_rounds.c.post_id == post_id, approval_rounds.c.round == round_
        )
        with self._begin() as conn:
            row = conn.execute(query).first()
        return _approval(row._mapping) if row else None

    def newest_round(self, post_id: str) -> int:
        query = sa.select(sa.func.max(approval_rounds.c.round)).where(
            approval_rounds.c.post_id == post_id
        )
        with self._begin() as conn:
            return int(conn.execute(query).scalar() or 0)

    def settle(self, post_id: str, round_: int, state: str, school_id: str) -> None:
        key = (
            approval_rounds.c.post_id == post_id,
            approval_rounds.c.round == round_,
        )
        with self._begin() as conn:
            done = conn.execute(
                approval_rounds.update()
                .where(*key)
                .values(state=state, updated_at=utcnow())
            ).rowcount
            if not done:
                conn.execute(
                    approval_rounds.insert().values(
                        post_id=post_id,
                        round=round_,
                        school_id=school_id,
                        state=state,
                        event=None,
                        updated_at=utcnow(),
                    )
                )


def _approval(row: Any) -> Approval:
    event = row["event"]
    return Approval(
        post_id=row["post_id"],
        round=row["round"],
        school_id=row["school_id"],
        state=row["state"],
        event=contracts.PostApproved.model_validate(event) if event else None,
        updated_at=row["updated_at"],
    )


class SqlDeliveryLog(Repository):
    """The marker of each post on each account."""

    def get(self, post_id: str, account_id: str) -> domain.Delivery | None:
        query = deliveries.select().where(
            deliveries.c.post_id == post_id, deliveries.c.account_id == account_id
        )
        with self._begin() as conn:
            row = conn.execute(query).first()
        return _delivery(row._mapping) if row else None

    def record(self, delivery: domain.Delivery) -> None:
        values = _delivery_values(delivery)
        key = (
            deliveries.c.post_id == delivery.post_id,
            deliveries.c.account_id == delivery.account_id,
        )
        with self._begin() as conn:
            if conn.execute(deliveries.update().where(*key).values(**values)).rowcount:
                return
            conn.execute(
                deliveries.insert().values(
                    post_id=delivery.post_id, account_id=delivery.account_id, **values
                )
            )

    def due(
        self, now: datetime, lease: timedelta, limit: int = 50
    ) -> list[domain.Delivery]:
        c = deliveries.c
        query = (
            deliveries.select()
            .where(
                sa.or_(
                    sa.and_(c.status.in_(domain.DUE), c.next_attempt_at <= now),
                    sa.and_(c.status == domain.SENDING, c.sending_since < now - lease),
                )
            )
            .order_by(
                # Lost answers first (a burst of new sends must not push the search
                # for them out of the platform's recent posts), then takedowns.
                sa.case(
                    (c.status.in_((domain.RECONCILING, domain.SENDING)), 0),
                    (c.status.in_((domain.TAKING_DOWN, domain.TAKEDOWN_FAILED)), 1),
                    else_=2,
                ),
                c.next_attempt_at,
                c.post_id,
                c.account_id,
            )
            .limit(limit)
        )
        with self._begin() as conn:
            return [_delivery(r._mapping) for r in conn.execute(query)]

    def claim(self, expected: domain.Delivery, claimed: domain.Delivery) -> bool:
        c = deliveries.c
        with self._begin() as conn:
            return bool(
                conn.execute(
                    deliveries.update()
                    .where(
                        c.post_id == expected.post_id,
                        c.account_id == expected.account_id,
                        c.status == expected.status,
                        c.attempts == expected.attempts,
                        c.at == expected.at,
                    )
                    .values(**_delivery_values(claimed))
                ).rowcount
            )

    def for_post(self, post_id: str) -> list[domain.Delivery]:
        query = deliveries.select().where(deliveries.c.post_id == post_id)
        with self._begin() as conn:
            return [_delivery(r._mapping) for r in conn.execute(query)]

    def with_takedown(self, takedown_id: str) -> list[domain.Delivery]:
        query = deliveries.select().where(deliveries.c.takedown_id == takedown_id)
        with self._begin() as conn:
            return [_delivery(r._mapping) for r in conn.execute(query)]

    def recent(
        self,
        *,
        schools: set[str] | None = None,
        post_id: str | None = None,
        limit: int = 100,
    ) -> list[domain.Delivery]:
        query = deliveries.select().order_by(deliveries.c.at.desc()).limit(limit)
        if schools is not None:
            query = query.where(deliveries.c.school_id.in_(sorted(schools)))
        if post_id is not None:
            query = query.where(deliveries.c.post_id == post_id)
        with self._begin() as conn:
            return [_delivery(r._mapping) for r in conn.execute(query)]


def _delivery_values(delivery: domain.Delivery) -> dict[str, Any]:
    return {
        "school_id": delivery.school_id,
        "status": delivery.status,
        "target": delivery.target,
        "location": delivery.location,
        "reason": delivery.reason[:200],
        "at": delivery.at,
        "round": delivery.round,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "external_id": delivery.external_id,
        "url": delivery.url,
        "detail": delivery.detail,
        "sending_since": delivery.sending_since,
        "live_at": delivery.live_at,
        "takedown_id": delivery.takedown_id,
        "taken_down_at": delivery.taken_down_at,
    }


def _delivery(row: Any) -> domain.Delivery:
    return domain.Delivery(
        post_id=row["post_id"],
        account_id=row["account_id"],
        school_id=row["school_id"],
        status=row["status"],
        at=row["at"],
        target=row["target"],
        location=row["location"],
        reason=row["reason"],
        round=row["round"] or 1,
        attempts=row["attempts"] or 0,
        next_attempt_at=row["next_attempt_at"],
        external_id=row["external_id"] or "",
        url=row["url"] or "",
        detail=row["detail"] or "",
        sending_since=row["sending_since"],
        live_at=row["live_at"],
        takedown_id=row["takedown_id"],
        taken_down_at=row["taken_down_at"],
    )
