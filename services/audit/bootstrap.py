"""Wiring: the audit service's Ports, real adapters and its envelope handler.

Audit records *envelopes* (ids, producer, actor, times), not just messages, and keeps
every type, including ones no contract describes yet. So its worker binds ``#`` and
routes every envelope to ``envelope_handler`` (the bus Worker's ``fallback``); its
typed handler map is empty on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

from services.audit import adapters, handlers
from services.audit.ports import AuditLog, Unit
from shared import contracts, db
from shared.bus import HandlerMap
from shared.config import Settings

SERVICE = "audit"
MIGRATIONS = Path(__file__).parent / "migrations"
QUEUE_KEYS = ("#",)  # every message, present and future

EnvelopeHandler = Callable[[contracts.Envelope], Sequence[contracts.Message]]


@dataclass(frozen=True)
class Ports:
    log: AuditLog  # the read side (the pages, the export, verify)
    unit: Callable[[], Unit]  # a fresh unit of work per envelope: the journal
    clock: Callable[[], datetime] = contracts.now
    ping: Callable[[], None] = lambda: None


def real_ports(settings: Settings) -> Ports:
    engine = db.make_engine(settings.database_url)
    db.migrate(engine, MIGRATIONS)
    return Ports(
        log=adapters.SqlAuditTrail(engine),
        unit=partial(adapters.AuditUnit, engine),
        ping=partial(db.ping, engine),
    )


def handler_map(ports: Ports) -> HandlerMap:
    """Empty: every envelope, known type or not, goes to ``envelope_handler``."""
    return {}


def envelope_handler(ports: Ports) -> EnvelopeHandler:
    """The use case for every envelope, in its own unit of work: the record is
    committed before the worker acknowledges the message. Returns no messages."""

    def handle(envelope: contracts.Envelope) -> Sequence[contracts.Message]:
        with ports.unit() as unit:
            handlers.record_envelope(envelope, journal=unit.journal, clock=ports.clock)
            unit.commit()
        return []

    return handle


def ready_checks(ports: Ports) -> dict[str, Callable[[], None]]:
    return {"database": ports.ping}
