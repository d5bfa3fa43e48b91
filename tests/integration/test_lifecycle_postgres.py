"""Intake, approval and publishing on PostgreSQL: migrations and one post's whole life
through the SQL adapters (one database per service, as in production)."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from datetime import date
from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa

from services.approval import adapters as approval_adapters
from services.approval import bootstrap as approval
from services.intake import adapters as intake_adapters
from services.intake import bootstrap as intake
from services.intake import domain as intake_domain
from services.intake import handlers as intake_handlers
from services.publishing import adapters as publishing_adapters
from services.publishing import admin
from services.publishing import bootstrap as publishing
from services.publishing import delivery as publishing_delivery
from services.publishing import domain as publishing_domain
from services.publishing.platforms.folder import FolderAdapter
from shared import bus as shared_bus
from shared import contracts, db, outbox
from shared.bus import HandlerMap
from shared.storage import FilesystemBlobStore
from tests.support.bus import FailingBus, InMemoryBus

pytestmark = pytest.mark.postgres
JPEG = b"\xff\xd8\xff\xe0" + b"original pixels" * 10
REDACTED = b"\xff\xd8\xff\xe0" + b"masked pixels" * 10


@pytest.fixture()
def databases(postgres_admin_url: str) -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database per service, dropped afterwards."""
    admin_engine = db.make_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    names = {
        s: f"safepost_test_{s}_{uuid.uuid4().hex[:8]}"
        for s in ("intake", "approval", "publishing")
    }
    with admin_engine.connect() as conn:
        for name in names.values():
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = postgres_admin_url.rsplit("/", 1)[0]
    try:
        yield {s: f"{base}/{name}" for s, name in names.items()}
    finally:
        with admin_engine.connect() as conn:
            for name in names.values():
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin_engine.dispose()


def migrated(url: str, migrations: Path, metadata: sa.MetaData) -> sa.Engine:
    engine = db.make_engine(url)
    db.migrate(engine, migrations)
    db.migrate(engine, migrations)  # a second start changes nothing
    with engine.connect() as conn:
        assert db.schema_diffs(conn, metadata) == []
    return engine


def deliver(
    handlers: HandlerMap,
    producer: str,
    envelope: contracts.Envelope,
    bus: InMemoryBus | None = None,
) -> list[contracts.Envelope]:
    """What a worker does with one delivery: parse, handle, seal the results; with
    ``bus``, also what the use case sent through its unit of work meanwhile."""
    message = contracts.parse(envelope)
    before = len(bus.published) if bus is not None else 0
    token = shared_bus._incoming.set(envelope)
    try:
        results = handlers[type(message)](message)
    finally:
        shared_bus._incoming.reset(token)
    sent = list(bus.published[before:]) if bus is not None else []
    return sent + [
        contracts.seal(m, producer=producer, cause=envelope, index=i)
        for i, m in enumerate(results)
    ]


def same(a: list[contracts.Envelope], b: list[contracts.Envelope]) -> bool:
    """The same messages (ids and data); only occurred_at may differ on a redelivery."""
    return [(e.id, e.data) for e in a] == [(e.id, e.data) for e in b]


def test_a_post_goes_from_upload_to_a_published_folder_on_postgresql(
    databases, tmp_path
):
    intake_db = migrated(
        databases["intake"], intake.MIGRATIONS, intake_adapters.metadata
    )
    approval_db = migrated(
        databases["approval"], approval.MIGRATIONS, approval_adapters.metadata
    )
    publishing_db = migrated(
        databases["publishing"], publishing.MIGRATIONS, publishing_adapters.metadata
    )
    blobs = {
        a: FilesystemBlobStore(tmp_path / a)
        for a in ("originals", "redacted", "previews")
    }
    intake_ports = intake.Ports(
        unit=partial(
            intake_adapters.IntakeUnit,
            intake_db,
            intake_adapters.outbox,
            producer="intake",
            publisher=FailingBus(),
        ),
        ledger=intake_adapters.SqlPostLedger(intake_db),
        register=intake_adapters.SqlDeviceRegister(intake_db),
        obligations=intake_adapters.SqlObligations(intake_db),
        originals=blobs["originals"],
        publisher=FailingBus(),
    )
    approval_bus = InMemoryBus()
    approval_ports = approval.Ports(
        book=approval_adapters.SqlPostBook(approval_db),
        reports=approval_adapters.SqlPhotoReports(approval_db),
        previews=blobs["previews"],
        publisher=approval_bus,
        unit=partial(
            approval_adapters.ApprovalUnit,
            approval_db,
            approval_adapters.outbox,
            producer="approval",
            publisher=approval_bus,
        ),
    )
    root = tmp_path / "published"
    publishing_bus = InMemoryBus()
    publishing_ports = publishing.Ports(
        accounts=publishing_adapters.SqlAccountDirectory(publishing_db),
        deliveries=publishing_adapters.SqlDeliveryLog(publishing_db),
        redacted=blobs["redacted"],
        platforms={"folder": FolderAdapter(root)},
        approvals=publishing_adapters.SqlApprovals(publishing_db),
        unit=partial(
            publishing_adapters.PublishingUnit,
            publishing_db,
            publishing_adapters.outbox,
            producer="publishing",
            publisher=publishing_bus,
        ),
        sites=publishing_adapters.SqlSiteRegister(publishing_db),
        takedowns=publishing_adapters.SqlTakedowns(publishing_db),
        publish_root=root,
    )
    publishing_ports.sites.put(publishing_domain.Site("folder", True, {}, "it"))
    for added in (True, False):
        assert (
            admin.add_account(
                publishing_ports,
                "north",
                "newsroom",
                "folder",
                "News",
                {},
                owner="approver.north",
            )
            is added
        )

    # intake: the broker is down, so the post waits in the outbox; the relay sends it.
    draft = intake_domain.Draft(
        "north", "u-teacher", "Sports day", "social_media", ("newsroom",), None
    )
    receipt = intake_handlers.submit_post(
        intake_ports,
        draft,
        [intake_handlers.Upload("a.jpg", io.BytesIO(JPEG))],
        post_id="p1",
    )
    assert not receipt.published
    bus = InMemoryBus()
    intake_outbox = db.SqlOutbox(intake_db, intake_adapters.outbox, db.utcnow)
    relayed = outbox.relay(intake_outbox, bus)
    assert relayed == 2  # post.submitted and the photo's receipt.issued
    assert intake_outbox.pending() == []
    [submitted] = [e for e in bus.published if e.type == "post.submitted"]
    assert blobs["originals"].get(receipt.photos[0].key) == JPEG

    # approval opens the post; redaction (simulated) reports the photo.
    approval_handlers = approval.handler_map(approval_ports)
    assert (
        deliver(approval_handlers, "approval", bus=approval_bus, envelope=submitted)
        == []
    )
    photo_id = receipt.photos[0].photo_id
    blobs["redacted"].put(f"redacted/p1/{photo_id}.jpg", REDACTED)
    redacted = contracts.seal(
        contracts.PhotoRedacted(
            photo_id=photo_id,
            post_id="p1",
            school_id="north",
            redacted_key=f"redacted/p1/{photo_id}.jpg",
            preview_key=f"previews/p1/{photo_id}.jpg",
            sha256=hashlib.sha256(REDACTED).hexdigest(),
            width=10,
            height=10,
        ),
        producer="redaction",
        cause=submitted,
    )
    deliver(approval_handlers, "approval", bus=approval_bus, envelope=redacted)
    assert approval_ports.book.get("p1").status == "awaiting_approval"

    # an approver decides; the command comes back to approval's worker.
    command = contracts.seal(
        contracts.RecordDecision(post_id="p1", approver_id="u-approver", approve=True),
        producer="approval",
        actor="u-approver",
    )
    [approved] = deliver(
        approval_handlers, "approval", bus=approval_bus, envelope=command
    )
    # delivered again: the same envelope is already in approval's outbox, sent
    assert (
        deliver(approval_handlers, "approval", bus=approval_bus, envelope=command) == []
    )
    assert [
        e.id for e in db.outbox_pending(approval_db, approval_adapters.outbox, 9)
    ] == []

    # publishing asks consent first (the final gate); consent (simulated) answers
    # that the decisions are current; publishing writes the folder once, even when
    # the approval and the answer are delivered twice.
    publishing_handlers = publishing.handler_map(publishing_ports)
    [ask] = deliver(publishing_handlers, "publishing", approved, bus=publishing_bus)
    assert ask.type == "consent.verify_post"
    answer = contracts.seal(
        contracts.PostConsentVerified(
            post_id="p1",
            school_id="north",
            round=ask.data["round"],
            current=True,
            checked_on=date(2030, 1, 1),
        ),
        producer="consent",
        cause=ask,
    )
    [pending] = deliver(publishing_handlers, "publishing", answer, bus=publishing_bus)
    assert pending.type == "delivery.updated" and pending.data["state"] == "pending"
    # delivered again: the same envelope is already in publishing's outbox, sent
    assert deliver(publishing_handlers, "publishing", answer, bus=publishing_bus) == []
    # the delivery loop sends it once, even when run again
    engine = publishing.delivery_engine(publishing_ports)
    assert publishing_delivery.run_due(engine) == 1
    assert publishing_delivery.run_due(engine) == 0
    [published] = [e for e in publishing_bus.published if e.type == "post.published"]
    assert db.outbox_pending(publishing_db, publishing_adapters.outbox, 9) == []
    assert (
        deliver(publishing_handlers, "publishing", approved, bus=publishing_bus) == []
    )
    folder = root / "north" / "newsroom" / "p1"
    assert (folder / f"01-{photo_id}.jpg").read_bytes() == REDACTED
    assert [p.name for p in folder.parent.iterdir()] == ["p1"]

    deliver(approval_handlers, "approval", bus=approval_bus, envelope=published)
    post = approval_ports.book.get("p1")
    assert post.status == "published"
    assert [t.to_status for t in post.history] == [
        "submitted",
        "redacting",
        "awaiting_approval",
        "approved",
        "published",
    ]
    assert [d.status for d in publishing_ports.deliveries.recent(post_id="p1")] == [
        "live"
    ]
