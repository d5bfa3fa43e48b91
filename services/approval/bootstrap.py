"""Wiring for approval: ports, real adapters, handler map, readiness checks."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from services.approval import adapters, handlers
from services.approval.ports import PhotoReports, PostBook
from shared import contracts, db, uow
from shared.bus import HandlerMap, KombuPublisher, Publisher
from shared.config import Settings
from shared.storage import BlobStore, open_store
from shared.uow import UnitOfWork, transaction

SERVICE = "approval"
MIGRATIONS = Path(__file__).parent / "migrations"


class Unit(UnitOfWork, Protocol):
    """Approval's unit of work: its repositories on one transaction."""

    @property
    def posts(self) -> PostBook: ...

    @property
    def reports(self) -> PhotoReports: ...


@dataclass(frozen=True)
class Ports:
    book: PostBook  # the read side (pages, API answers); writes go through ``unit``
    reports: PhotoReports
    previews: BlobStore
    publisher: Publisher
    unit: Callable[[], Unit]  # a fresh unit of work per use case
    now: Callable[[], datetime] = db.utcnow
    ready: dict[str, Callable[[], None]] = field(default_factory=dict)
    relay: Callable[[threading.Event], None] | None = None  # sends what waits


def real_ports(settings: Settings) -> Ports:
    engine = db.make_engine(settings.database_url)
    db.migrate(engine, MIGRATIONS)
    publisher = KombuPublisher(settings.amqp_url)
    return Ports(
        book=adapters.SqlPostBook(engine),
        reports=adapters.SqlPhotoReports(engine),
        previews=open_store(settings, "previews"),
        publisher=publisher,
        unit=partial(
            adapters.ApprovalUnit,
            engine,
            adapters.outbox,
            producer=SERVICE,
            publisher=publisher,
        ),
        ready={"database": partial(db.ping, engine)},
        relay=uow.relay_task(engine, adapters.outbox, publisher),
    )


def handler_map(ports: Ports) -> HandlerMap:
    """Each message type's use case, run in its own unit of work: its changes and the
    messages it returns commit together (and are sent after)."""
    now = ports.now

    def run(use_case: Callable[[Unit, Any], Sequence[contracts.Message]]) -> Any:
        return transaction(ports.unit, use_case)

    return {
        contracts.PostSubmitted: run(
            lambda u, m: handlers.open_post(
                m, book=u.posts, reports=u.reports, fits=u.posts, now=now
            )
        ),
        contracts.PhotoRedacted: run(
            lambda u, m: handlers.photo_redacted(
                m, book=u.posts, reports=u.reports, fits=u.posts, now=now
            )
        ),
        contracts.PhotoRefused: run(
            lambda u, m: handlers.photo_refused(
                m, book=u.posts, reports=u.reports, now=now
            )
        ),
        contracts.RecordDecision: run(
            lambda u, m: handlers.record_decision(
                m, book=u.posts, reports=u.reports, fits=u.posts, now=now
            )
        ),
        contracts.ReviseRedaction: run(
            lambda u, m: handlers.revision_requested(m, reports=u.reports)
        ),
        contracts.ConsentChanged: run(
            lambda u, m: handlers.consent_changed(
                m, book=u.posts, reports=u.reports, now=now
            )
        ),
        contracts.PublicationHeld: run(
            lambda u, m: handlers.publication_held(
                m, book=u.posts, reports=u.reports, now=now
            )
        ),
        contracts.PostFitChecked: run(
            lambda u, m: handlers.fit_checked(m, book=u.posts, fits=u.posts)
        ),
        contracts.DeliveryUpdated: run(
            lambda u, m: handlers.delivery_updated(m, book=u.posts, deliveries=u.posts)
        ),
        contracts.PostPublished: run(
            lambda u, m: handlers.post_published(
                m, book=u.posts, deliveries=u.posts, now=now
            )
        ),
        contracts.PublishFailed: run(
            lambda u, m: handlers.publish_failed(
                m, book=u.posts, deliveries=u.posts, now=now
            )
        ),
    }


def ready_checks(ports: Ports) -> dict[str, Callable[[], None]]:
    return dict(ports.ready)
