"""Redaction's SQL adapter and migrations on a real PostgreSQL."""

from __future__ import annotations

import pytest

from services.redaction import adapters, domain
from services.redaction.bootstrap import MIGRATIONS
from shared import contracts, db

pytestmark = pytest.mark.postgres


@pytest.fixture()
def engine(postgres_url):
    engine = db.make_engine(postgres_url)
    db.migrate(engine, MIGRATIONS)
    yield engine
    engine.dispose()


def test_the_migrated_postgres_schema_matches_the_tables_the_code_uses(engine):
    with engine.connect() as conn:
        assert db.schema_diffs(conn, adapters.metadata) == []


def test_a_photo_is_recorded_once_and_its_redaction_kept(engine):
    records = adapters.SqlPhotoRecords(engine)
    record = domain.PhotoRecord(
        photo_id="p1",
        post_id="post-1",
        school_id="hill",
        original_key="originals/post-1/x.jpg",
        width=10,
        height=10,
        faces=(domain.Face(0, (1, 1, 5, 5), 0.5),),
    )
    records.add(record)
    records.add(
        domain.PhotoRecord(
            photo_id="p1",
            post_id="other",
            school_id="dale",
            original_key="originals/other/y.jpg",
        )
    )
    redaction = domain.Redaction(
        "redacted/post-1/p1.jpg",
        "previews/post-1/p1.jpg",
        "0" * 64,
        10,
        10,
        (domain.FaceOutcome(0, (0, 0, 6, 6), True, "unknown", None),),
    )

    records.finish("p1", redaction)

    assert records.find("p1") == domain.PhotoRecord(
        **{**record.__dict__, "redaction": redaction}
    )


def test_a_photo_already_recorded_leaves_the_units_transaction_usable(engine):
    """Adding a photo that is already there (a redelivery, or another worker first)
    must not abort the unit's transaction on PostgreSQL: the rest of the use case
    still commits, with what it emits."""
    from tests.support.bus import InMemoryBus

    bus = InMemoryBus()
    first = domain.PhotoRecord(
        photo_id="p1", post_id="post-1", school_id="hill", original_key="o/1.jpg"
    )
    adapters.SqlPhotoRecords(engine).add(first)
    unit = adapters.RedactionUnit(
        engine, adapters.outbox, producer="redaction", publisher=bus
    )

    with unit:
        kept = unit.records.add(domain.PhotoRecord(**{**first.__dict__, "width": 9}))
        unit.records.add(domain.PhotoRecord(**{**first.__dict__, "photo_id": "p2"}))
        unit.emit(
            contracts.PhotoRefused(
                photo_id="p2", post_id="post-1", school_id="hill", reason="corrupt"
            )
        )
        unit.commit()

    assert kept == first
    assert adapters.SqlPhotoRecords(engine).find("p2") is not None
    assert [e.type for e in bus.published] == ["photo.refused"]
    assert db.outbox_pending(engine, adapters.outbox, 10) == []
