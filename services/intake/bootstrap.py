"""Wiring for intake: ports, real adapters, handlers (none yet), readiness checks."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from services.intake import adapters
from services.intake.outbox import relay_outbox
from services.intake.ports import PostLedger
from shared import db
from shared.bus import HandlerMap, KombuPublisher, Publisher
from shared.config import Settings
from shared.storage import BlobStore, open_store

SERVICE = "intake"
MIGRATIONS = Path(__file__).parent / "migrations"

__all__ = [
    "SERVICE",
    "Ports",
    "handler_map",
    "ready_checks",
    "real_ports",
    "relay_outbox",
]


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Ports:
    ledger: PostLedger
    originals: BlobStore
    publisher: Publisher
    new_id: Callable[[], str] = _new_id
    max_upload_bytes: int = 40 * 1024 * 1024
    ready: dict[str, Callable[[], None]] = field(default_factory=dict)


def real_ports(settings: Settings) -> Ports:
    engine = db.make_engine(settings.database_url)
    db.migrate(engine, MIGRATIONS)
    return Ports(
        ledger=adapters.SqlPostLedger(engine),
        originals=open_store(settings, "originals"),
        publisher=KombuPublisher(settings.amqp_url),
        max_upload_bytes=settings.max_upload_bytes,
        ready={"database": partial(db.ping, engine)},
    )


def handler_map(ports: Ports) -> HandlerMap:
    """Intake consumes no messages yet (its worker runs the outbox relay)."""
    return {}


def ready_checks(ports: Ports) -> dict[str, Callable[[], None]]:
    return dict(ports.ready)
