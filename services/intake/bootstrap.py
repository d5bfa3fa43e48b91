"""Wiring for intake: ports, real adapters, handlers (none yet), readiness checks.

Two intake settings come from the environment here (``shared.config.Settings`` has no
place for them): ``DELETION_GRACE_MINUTES`` (default 15), how long a personal device
may keep an uploaded original, and ``BLOCK_UPLOADS_WHEN_OVERDUE`` (default 1; 0 lets
a device with an overdue deletion upload again, the overdue event still audited).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from services.intake import adapters, domain
from services.intake.devices import Register
from services.intake.outbox import relay_outbox
from services.intake.ports import PostLedger
from shared import db
from shared.bus import HandlerMap, KombuPublisher, Publisher
from shared.config import Settings
from shared.errors import ConfigError, DomainError
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
    devices: Register | None = None
    now: Callable[[], datetime] = db.utcnow
    deletion_grace: timedelta = timedelta(minutes=domain.GRACE_MINUTES)
    block_overdue: bool = True
    secure_cookies: bool = False

    @property
    def register(self) -> Register:
        """The device register; without one, every upload is refused (fail closed)."""
        if self.devices is None:
            raise DomainError(
                "the device register is not configured", code="unavailable", status=503
            )
        return self.devices


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
    return Ports(
        ledger=adapters.SqlPostLedger(engine),
        originals=open_store(settings, "originals"),
        publisher=KombuPublisher(settings.amqp_url),
        max_upload_bytes=settings.max_upload_bytes,
        ready={"database": partial(db.ping, engine)},
        devices=adapters.SqlDeviceRegister(engine),
        deletion_grace=grace_from_env(os.environ),
        block_overdue=os.environ.get("BLOCK_UPLOADS_WHEN_OVERDUE", "1") != "0",
        secure_cookies=settings.secure_cookies,
    )


def handler_map(ports: Ports) -> HandlerMap:
    """Intake consumes no messages yet (its worker runs the outbox relay)."""
    return {}


def ready_checks(ports: Ports) -> dict[str, Callable[[], None]]:
    return dict(ports.ready)
