"""Wiring for publishing: ports, real adapters, handler map, readiness checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

from services.publishing import adapters, handlers
from services.publishing.ports import AccountDirectory, DeliveryLog, Target
from shared import contracts, db
from shared.bus import HandlerMap
from shared.config import Settings
from shared.storage import BlobStore, open_store

SERVICE = "publishing"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Ports:
    accounts: AccountDirectory
    deliveries: DeliveryLog
    redacted: BlobStore  # the only store publishing opens: never the originals
    targets: Mapping[str, Target]
    publish_root: Path | None = None
    now: Callable[[], datetime] = db.utcnow
    ready: dict[str, Callable[[], None]] = field(default_factory=dict)


def real_ports(settings: Settings) -> Ports:
    engine = db.make_engine(settings.database_url)
    db.migrate(engine, MIGRATIONS)
    return Ports(
        accounts=adapters.SqlAccountDirectory(engine),
        deliveries=adapters.SqlDeliveryLog(engine),
        redacted=open_store(settings, "redacted"),
        targets={"folder": adapters.FolderTarget(settings.publish_root)},
        publish_root=settings.publish_root,
        ready={"database": partial(db.ping, engine)},
    )


def handler_map(ports: Ports) -> HandlerMap:
    publish = partial(
        handlers.publish_post,
        accounts=ports.accounts,
        deliveries=ports.deliveries,
        redacted=ports.redacted,
        targets=ports.targets,
        now=ports.now,
    )
    return {contracts.PostApproved: publish}


def ready_checks(ports: Ports) -> dict[str, Callable[[], None]]:
    return dict(ports.ready)
