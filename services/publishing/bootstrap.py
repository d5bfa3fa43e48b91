"""Wiring for publishing: ports, real adapters, the use case of each message type in
its unit of work, readiness checks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from services.publishing import (
    adapters,
    delivery,
    domain,
    fit,
    handlers,
    takedown,
)
from services.publishing.platforms.base import Adapter, Credentials, Destination
from services.publishing.ports import (
    AccountDirectory,
    Approvals,
    DeliveryLog,
    OAuthStates,
    SiteRegister,
    Takedowns,
    Tokens,
    Unit,
)
from services.publishing.vault import TokenVault
from shared import contracts, db, uow
from shared.bus import HandlerMap, Publisher
from shared.config import Settings
from shared.storage import BlobStore, open_store
from shared.uow import transaction

SERVICE = "publishing"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Ports:
    """The repositories here are the read side (pages, API answers, what the
    delivery loop reads); every change goes through ``unit``."""

    accounts: AccountDirectory
    deliveries: DeliveryLog
    redacted: BlobStore  # the only store publishing opens: never the originals
    platforms: Mapping[str, Adapter]  # one adapter per platform
    approvals: Approvals
    unit: Callable[[], Unit]  # a fresh unit of work per use case
    publish_root: Path | None = None
    outbox: db.SqlOutbox | None = None  # publishing's outbox, for inspection
    publisher: Publisher | None = None
    relay: Callable[[threading.Event], None] | None = None  # sends what waits
    now: Callable[[], datetime] = db.utcnow
    ready: dict[str, Callable[[], None]] = field(default_factory=dict)
    sites: SiteRegister | None = None  # the trust's register of approved sites
    takedowns: Takedowns | None = None  # who rounds show, takedowns, manual tasks
    tokens: Tokens | None = None  # accounts' tokens, encrypted at rest
    vault: TokenVault | None = None
    # The platforms' app credentials, API bases and versions (Settings.platform_env)
    platform_env: Mapping[str, str] = field(default_factory=dict)
    public_url: str = "http://127.0.0.1:8000"
    secret_key: str = ""  # signs the short-lived image URLs platforms fetch
    policy: delivery.Policy = field(default_factory=delivery.Policy)
    crash_after_answer: Callable[[Any], None] | None = None  # tests, benchmark
    oauth_states: OAuthStates | None = None  # pending OAuth authorisations


def platform_adapters(publish_root: Path | None) -> dict[str, Adapter]:
    """One adapter per platform, over the platforms' documented HTTP APIs."""
    from services.publishing.platforms import (
        facebook,
        folder,
        instagram,
        linkedin,
        webhook,
        x,
    )

    adapters_: dict[str, Adapter] = {
        "facebook": facebook.FacebookPageAdapter(),
        "instagram": instagram.InstagramAdapter(),
        "x": x.XAdapter(),
        "linkedin": linkedin.LinkedInAdapter(),
        "webhook": webhook.WebhookAdapter(require_https=False),
    }
    if publish_root is not None:
        adapters_["folder"] = folder.FolderAdapter(publish_root)
    return adapters_


API_BASES = {  # env override -> default (the real platform)
    "facebook": ("GRAPH_API_BASE", "https://graph.facebook.com"),
    "instagram": ("GRAPH_API_BASE", "https://graph.facebook.com"),
    "x": ("X_API_BASE", "https://api.x.com"),
    "linkedin": ("LINKEDIN_API_BASE", "https://api.linkedin.com"),
}
API_VERSIONS = {
    "facebook": "GRAPH_API_VERSION",
    "instagram": "GRAPH_API_VERSION",
    "linkedin": "LINKEDIN_API_VERSION",
}
WEB_URLS = {"x": "X_WEB_URL", "linkedin": "LINKEDIN_WEB_URL"}


def destination(
    ports: Ports, account: domain.Account, credentials: Credentials | None
) -> Destination:
    """Where and how to reach the account: built on the server from the account's
    platform, id and school (a folder's place from school and account only)."""
    from services.publishing.platforms.folder import folder_external_id

    env = ports.platform_env
    kind = account.kind
    settings: dict[str, Any] = {"school_id": account.school_id}
    if kind in WEB_URLS and env.get(WEB_URLS[kind]):
        settings["web_url"] = env[WEB_URLS[kind]]
    if kind == "folder":
        return Destination(
            account.account_id,
            kind,
            folder_external_id(account.school_id, account.account_id),
            "",
            credentials,
            settings=settings,
        )
    if kind == "webhook":
        base = account.external_id
    else:
        var, default = API_BASES[kind]
        base = account.api_base or env.get(var) or default
    return Destination(
        account.account_id,
        kind,
        account.external_id,
        base,
        credentials,
        api_version=env.get(API_VERSIONS.get(kind, ""), ""),
        settings=settings,
    )


def media_signer(ports: Ports) -> Callable[[str], str | None]:
    """A short-lived signed URL of a redacted image, for platforms that fetch the
    image themselves (Instagram): presigned S3 in production, else the publishing
    app's own signed route. Never an original: only the redacted store is opened."""
    from services.publishing import media

    def sign(key: str) -> str | None:
        presigned = ports.redacted.presigned_get(key, expires=media.LIFETIME)
        if presigned:
            return presigned
        token = media.sign(ports.secret_key, key)
        return f"{ports.public_url}/publishing/media/{token}"

    return sign


def delivery_engine(ports: Ports) -> delivery.Engine:
    return delivery.Engine(
        unit=ports.unit,
        accounts=ports.accounts,
        deliveries=ports.deliveries,
        approvals=ports.approvals,
        redacted=ports.redacted,
        platforms=ports.platforms,
        destination=partial(destination, ports),
        sites=ports.sites,
        tokens=ports.tokens,
        takedowns=ports.takedowns,
        media_url=media_signer(ports),
        policy=ports.policy,
        now=ports.now,
        crash_after_answer=ports.crash_after_answer,
    )


def real_ports(settings: Settings) -> Ports:
    from shared.bus import KombuPublisher

    engine = db.make_engine(settings.database_url)
    db.migrate(engine, MIGRATIONS)
    vault = TokenVault(settings.token_keys) if settings.token_keys else None
    publisher = KombuPublisher(settings.amqp_url)
    return Ports(
        sites=adapters.SqlSiteRegister(engine),
        takedowns=adapters.SqlTakedowns(engine),
        tokens=adapters.SqlTokens(engine, vault) if vault else None,
        vault=vault,
        oauth_states=adapters.SqlOAuthStates(engine, vault) if vault else None,
        platform_env=dict(settings.platform_env),
        public_url=settings.public_url,
        secret_key=settings.secret_key,
        accounts=adapters.SqlAccountDirectory(engine),
        approvals=adapters.SqlApprovals(engine),
        unit=partial(
            adapters.PublishingUnit,
            engine,
            adapters.outbox,
            producer=SERVICE,
            publisher=publisher,
            vault=vault,
        ),
        outbox=db.SqlOutbox(engine, adapters.outbox, db.utcnow),
        publisher=publisher,
        relay=uow.relay_task(engine, adapters.outbox, publisher),
        deliveries=adapters.SqlDeliveryLog(engine),
        redacted=open_store(settings, "redacted"),
        platforms=platform_adapters(settings.publish_root),
        publish_root=settings.publish_root,
        policy=delivery.Policy.from_env(settings.platform_env),
        ready={"database": partial(db.ping, engine)},
    )


def handler_map(ports: Ports) -> HandlerMap:
    """Each message type's use case, run in its own unit of work: its changes and the
    messages it emits commit together (and are sent after)."""
    now = ports.now

    def run(use_case: Callable[[Unit, Any], Sequence[contracts.Message]]) -> Any:
        return transaction(ports.unit, use_case)

    out: dict[type[contracts.Message], Any] = {
        contracts.PostApproved: run(handlers.publish_post),
        contracts.PostConsentVerified: run(partial(handlers.consent_verified, now=now)),
        contracts.PostRecalled: run(partial(handlers.post_recalled, now=now)),
        contracts.CheckFit: run(
            lambda u, m: fit.check_fit(m, accounts=u.accounts, redacted=ports.redacted)
        ),
    }
    if ports.takedowns is not None:
        out[contracts.ConsentChanged] = run(partial(takedown.consent_changed, now=now))
    return out


def ready_checks(ports: Ports) -> dict[str, Callable[[], None]]:
    return dict(ports.ready)
