"""Audit's use case: keep every message that crosses the bus, once, in the chain.

It runs in audit's unit of work (``bootstrap.envelope_handler``): the record is
committed before the worker acknowledges the message, so a message is never lost, and
a redelivery records nothing twice. Audit emits nothing, so its unit has no outbox.
"""

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
) -> bool:
    """Record the message (ids, producer, actor, times, data without biometric fields)
    once per message id, whatever its type; False if it was already recorded. Audit
    sends nothing."""
    return journal.append(
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
