"""Wiring for publishing: ports, real adapters, handler map, readiness checks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from services.publishing import adapters, fit, handlers
from services.publishing.ports import (
    AccountDirectory,
    Approvals,
    DeliveryLog,
    SiteRegister,
    Target,
    Tokens,
)
from shared import contracts, db
from shared.bus import HandlerMap, Publisher
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
    approvals: Approvals
    publish_root: Path | None = None
    outbox: Any = None  # the accounts' outbox (shared.outbox.Outbox), relayed
    publisher: Publisher | None = None
    now: Callable[[], datetime] = db.utcnow
    ready: dict[str, Callable[[], None]] = field(default_factory=dict)
    sites: SiteRegister | None = None  # the trust's register of approved sites
    tokens: Tokens | None = None  # accounts' tokens, encrypted at rest
    vault: Any = None  # services.publishing.vault.TokenVault
    # The platforms' app credentials, API bases and versions (Settings.platform_env)
    platform_env: Mapping[str, str] = field(default_factory=dict)
    public_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""  # signs the short-lived image URLs platforms fetch


def real_ports(settings: Settings) -> Ports:
    from shared.bus import KombuPublisher

    from services.publishing.vault import TokenVault

    engine = db.make_engine(settings.database_url)
    db.migrate(engine, MIGRATIONS)
    directory = adapters.SqlAccountDirectory(engine)
    vault = TokenVault(settings.token_keys) if settings.token_keys else None
    return Ports(
        sites=adapters.SqlSiteRegister(engine),
        tokens=adapters.SqlTokens(engine, vault) if vault else None,
        vault=vault,
        platform_env=dict(settings.platform_env),
        public_url=settings.public_url,
        secret_key=settings.secret_key,
        accounts=directory,
        approvals=adapters.SqlApprovals(engine),
        outbox=directory,
        publisher=KombuPublisher(settings.amqp_url),
        deliveries=adapters.SqlDeliveryLog(engine),
        redacted=open_store(settings, "redacted"),
        targets={"folder": adapters.FolderTarget(settings.publish_root)},
        publish_root=settings.publish_root,
        ready={"database": partial(db.ping, engine)},
    )


def handler_map(ports: Ports) -> HandlerMap:
    publish = partial(
        handlers.publish_post, approvals=ports.approvals, deliveries=ports.deliveries
    )
    cleared = partial(
        handlers.consent_verified,
        approvals=ports.approvals,
        accounts=ports.accounts,
        deliveries=ports.deliveries,
        redacted=ports.redacted,
        targets=ports.targets,
        now=ports.now,
    )
    recalled = partial(
        handlers.post_recalled,
        approvals=ports.approvals,
        deliveries=ports.deliveries,
        now=ports.now,
    )
    return {
        contracts.PostApproved: publish,
        contracts.PostConsentVerified: cleared,
        contracts.PostRecalled: recalled,
        **fit.handlers(ports),
    }


def ready_checks(ports: Ports) -> dict[str, Callable[[], None]]:
    return dict(ports.ready)
