"""Deletion obligations' use cases: a confirmation closes one; the sweep flags those
overdue."""

from __future__ import annotations

import logging
from datetime import datetime

from services.intake.domain import Obligation
from services.intake.ports import UseCasePorts
from shared import contracts
from shared.errors import NotFoundError

logger = logging.getLogger(__name__)


def confirm_deletion(
    ports: UseCasePorts,
    receipt_id: str,
    *,
    deleted_at: datetime | None,
    method: str,
    username: str,
    actor: str,
    as_it: bool = False,
) -> Obligation:
    """Close the obligation behind a receipt. The device's owner confirms (or IT
    resolves it, ``as_it``); a receipt with no obligation of theirs is a 404; one
    closed already is answered as it is (a retried confirmation is harmless)."""
    with ports.unit() as unit:
        found = unit.obligations.find(
            owner=None if as_it else username, receipt_id=receipt_id, open_only=False
        )
        if not found:
            raise NotFoundError("no deletion is expected for that receipt")
        if found[0].closed_at is not None:
            return found[0]
        closed = found[0].close(ports.now(), deleted_at, method, actor)
        if not unit.obligations.close(closed):  # closed meanwhile: as it is now
            return unit.obligations.find(receipt_id=receipt_id, open_only=False)[0]
        assert closed.deleted_at is not None and closed.method is not None
        unit.emit(
            contracts.DeletionConfirmed(
                receipt_id=closed.receipt_id,
                post_id=closed.post_id,
                school_id=closed.school_id,
                device_id=closed.device_id,
                deleted_at=closed.deleted_at,
                method=closed.method,
                confirmed_by=actor,
                late=closed.late,
            ),
            actor=actor,
            message_id=contracts.deterministic_id("deletion.confirmed", receipt_id),
        )
        unit.commit()
    return closed


def sweep_overdue(ports: UseCasePorts) -> int:
    """Flag obligations past their due time, each once, emitting DeletionOverdue;
    how many were flagged."""
    with ports.unit() as unit:
        now = ports.now()
        flagged = [
            o
            for o in unit.obligations.due(now)
            if unit.obligations.flag_overdue(o.receipt_id, now)
        ]
        for o in flagged:
            unit.emit(
                contracts.DeletionOverdue(
                    receipt_id=o.receipt_id,
                    post_id=o.post_id,
                    school_id=o.school_id,
                    device_id=o.device_id,
                    owner=o.owner,
                    due_at=o.due_at,
                ),
                actor="intake",
                message_id=contracts.deterministic_id("deletion.overdue", o.receipt_id),
            )
        unit.commit()
    if flagged:
        logger.warning("%d deletion(s) overdue", len(flagged))
    return len(flagged)
