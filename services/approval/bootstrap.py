"""Wiring for approval: ports, real adapters, handler map, readiness checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

from services.approval import adapters, handlers
from services.approval.ports import PhotoReports, PostBook
from shared import contracts, db
from shared.bus import HandlerMap, KombuPublisher, Publisher
from shared.config import Settings
from shared.storage import BlobStore, open_store

SERVICE = "approval"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Ports:
    book: PostBook
    reports: PhotoReports
    previews: BlobStore
    publisher: Publisher
    now: Callable[[], datetime] = db.utcnow
    ready: dict[str, Callable[[], None]] = field(default_factory=dict)


def real_ports(settings: Settings) -> Ports:
    engine = db.make_engine(settings.database_url)
    db.migrate(engine, MIGRATIONS)
    return Ports(
        book=adapters.SqlPostBook(engine),
        reports=adapters.SqlPhotoReports(engine),
        previews=open_store(settings, "previews"),
        publisher=KombuPublisher(settings.amqp_url),
        ready={"database": partial(db.ping, engine)},
    )


def handler_map(ports: Ports) -> HandlerMap:
    book, reports, now = ports.book, ports.reports, ports.now
    # The book also keeps what publishing answers: fit checks and delivery states.
    return {
        contracts.PostSubmitted: partial(
            handlers.open_post, book=book, reports=reports, fits=book, now=now
        ),
        contracts.PhotoRedacted: partial(
            handlers.photo_redacted, book=book, reports=reports, fits=book, now=now
        ),
        contracts.PhotoRefused: partial(
            handlers.photo_refused, book=book, reports=reports, now=now
        ),
        contracts.RecordDecision: partial(
            handlers.record_decision, book=book, reports=reports, fits=book, now=now
        ),
        contracts.ReviseRedaction: partial(
            handlers.revision_requested, reports=reports
        ),
        contracts.ConsentChanged: partial(
            handlers.consent_changed, book=book, reports=reports, now=now
        ),
        contracts.PublicationHeld: partial(
            handlers.publication_held, book=book, reports=reports, now=now
        ),
        contracts.PostFitChecked: partial(handlers.fit_checked, book=book, fits=book),
        contracts.DeliveryUpdated: partial(
            handlers.delivery_updated, book=book, deliveries=book
        ),
        contracts.PostPublished: partial(
            handlers.post_published, book=book, deliveries=book, now=now
        ),
        contracts.PublishFailed: partial(
            handlers.publish_failed, book=book, deliveries=book, now=now
        ),
    }


def ready_checks(ports: Ports) -> dict[str, Callable[[], None]]:
    return dict(ports.ready)
