"""Audit's handler: keep every message that crosses the bus, once, in the chain."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from services.audit import domain
from services.audit.ports import AuditJournal
from shared import contracts


def record_envelope(
    envelope: contracts.Envelope,
    *,
    journal: AuditJournal,
    clock: Callable[[], datetime],
) -> list[contracts.Message]:
    """Record the message (ids, producer, actor, times, data without biometric fields)
    once per message id, whatever its type; audit sends nothing."""
    journal.append(
        domain.entry_for(
            message_id=envelope.id,
            type=envelope.type,
            version=envelope.version,
            producer=envelope.producer,
            occurred_at=envelope.occurred_at,
            recorded_at=clock(),
            correlation_id=envelope.correlation_id,
            causation_id=envelope.causation_id,
            actor=envelope.actor,
            data=contracts.scrub(envelope),
        )
    )
    return []
