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
from services.audit.ports import AuditJournal, AuditLog
from shared import contracts, db
from shared.bus import HandlerMap
from shared.config import Settings

SERVICE = "audit"
MIGRATIONS = Path(__file__).parent / "migrations"
QUEUE_KEYS = ("#",)  # every message, present and future

EnvelopeHandler = Callable[[contracts.Envelope], Sequence[contracts.Message]]


@dataclass(frozen=True)
class Ports:
    journal: AuditJournal
    log: AuditLog
    clock: Callable[[], datetime] = contracts.now
    ping: Callable[[], None] = lambda: None


def real_ports(settings: Settings) -> Ports:
    engine = db.make_engine(settings.database_url)
    db.migrate(engine, MIGRATIONS)
    trail = adapters.SqlAuditTrail(engine)
    return Ports(journal=trail, log=trail, ping=partial(db.ping, engine))


def handler_map(ports: Ports) -> HandlerMap:
    """Empty: every envelope, known type or not, goes to ``envelope_handler``."""
    return {}


def envelope_handler(ports: Ports) -> EnvelopeHandler:
    return partial(handlers.record_envelope, journal=ports.journal, clock=ports.clock)


def ready_checks(ports: Ports) -> dict[str, Callable[[], None]]:
    return {"database": ports.ping}
