"""Wiring for intake: ports, real adapters, its unit of work, readiness checks.

Two intake settings come from the environment here (``shared.config.Settings`` has no
place for them): ``DELETION_GRACE_MINUTES`` (default 15), how long a personal device
may keep an uploaded original, and ``BLOCK_UPLOADS_WHEN_OVERDUE`` (default 1; 0 lets
a device with an overdue deletion upload again, the overdue event still audited).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from services.intake import adapters, domain
from services.intake.ports import DeviceRegister, Obligations, PostLedger, Unit
from shared import db, uow
from shared.bus import HandlerMap, KombuPublisher, Publisher
from shared.config import Settings
from shared.errors import ConfigError
from shared.storage import BlobStore, open_store

SERVICE = "intake"
MIGRATIONS = Path(__file__).parent / "migrations"
RELAY_SECONDS = 3.0


def _new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Ports:
    unit: Callable[[], Unit]  # a fresh unit of work per use case: every write
    # The read side (pages and API answers), each query its own transaction.
    ledger: PostLedger
    register: DeviceRegister
    obligations: Obligations
    originals: BlobStore
    publisher: Publisher
    new_id: Callable[[], str] = _new_id
    max_upload_bytes: int = 40 * 1024 * 1024
    ready: dict[str, Callable[[], None]] = field(default_factory=dict)
    now: Callable[[], datetime] = db.utcnow
    deletion_grace: timedelta = timedelta(minutes=domain.GRACE_MINUTES)
    block_overdue: bool = True
    secure_cookies: bool = False
    relay: Callable[[threading.Event], None] | None = None  # sends what waits


def grace_from_env(env: Mapping[str, str]) -> timedelta:
    try:
        minutes = float(env.get("DELETION_GRACE_MINUTES", domain.GRACE_MINUTES))
    except ValueError:
        raise ConfigError("DELETION_GRACE_MINUTES must be a number") from None
    if minutes <= 0:
        raise ConfigError("DELETION_GRACE_MINUTES must be more than 0")
    return timedelta(minutes=minutes)


def real_ports(settings: Settings) -> Ports:
    engine = db.make_engine(settings.database_url)
    db.migrate(engine, MIGRATIONS)
    publisher = KombuPublisher(settings.amqp_url)
    return Ports(
        unit=partial(
            adapters.IntakeUnit,
            engine,
            adapters.outbox,
            producer=SERVICE,
            publisher=publisher,
        ),
        ledger=adapters.SqlPostLedger(engine),
        register=adapters.SqlDeviceRegister(engine),
        obligations=adapters.SqlObligations(engine),
        originals=open_store(settings, "originals"),
        publisher=publisher,
        max_upload_bytes=settings.max_upload_bytes,
        ready={"database": partial(db.ping, engine)},
        deletion_grace=grace_from_env(os.environ),
        block_overdue=os.environ.get("BLOCK_UPLOADS_WHEN_OVERDUE", "1") != "0",
        secure_cookies=settings.secure_cookies,
        relay=uow.relay_task(engine, adapters.outbox, publisher, RELAY_SECONDS),
    )


def handler_map(ports: Ports) -> HandlerMap:
    """Intake consumes no messages (its writes come from its API, the CLI and its
    sweep: ``handlers``)."""
    return {}


def ready_checks(ports: Ports) -> dict[str, Callable[[], None]]:
    return dict(ports.ready)
