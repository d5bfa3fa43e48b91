from datetime import date

import pytest

from services.redaction import adapters, domain
from services.redaction.bootstrap import MIGRATIONS
from shared import db


@pytest.fixture()
def engine(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'redaction.sqlite3'}")
    db.migrate(engine, MIGRATIONS)
    yield engine
    engine.dispose()


def a_record(**changes) -> domain.PhotoRecord:
    values = dict(
        photo_id="p1",
        post_id="post-1",
        school_id="hill",
        original_key="originals/post-1/abc.jpg",
        platforms=("hill-facebook",),
        publish_on=date(2025, 3, 1),
        width=640,
        height=480,
        faces=(domain.Face(0, (1, 2, 30, 40), 0.87),),
    )
    return domain.PhotoRecord(**{**values, **changes})


def test_the_migrated_schema_matches_the_tables_the_code_uses(engine):
    with engine.connect() as conn:
        diffs = db.schema_diffs(conn, adapters.metadata)

    assert diffs == []


def test_a_detection_is_stored_and_found_again(engine):
    records = adapters.SqlPhotoRecords(engine)

    records.add(a_record())

    assert records.find("p1") == a_record()


def test_adding_a_photo_twice_keeps_the_first(engine):
    records = adapters.SqlPhotoRecords(engine)
    records.add(a_record())

    stored = records.add(a_record(width=1, faces=()))

    assert stored == a_record()


def test_a_refusal_and_a_redaction_are_kept(engine):
    records = adapters.SqlPhotoRecords(engine)
    records.add(a_record(photo_id="bad", refusal=domain.Refusal("corrupt", "x")))
    records.add(a_record())
    redaction = domain.Redaction(
        "redacted/post-1/p1.jpg",
        "previews/post-1/p1.jpg",
        "f" * 64,
        320,
        240,
        (domain.FaceOutcome(0, (0, 1, 15, 20), True, "unknown", None),),
    )

    records.finish("p1", redaction)

    assert records.find("bad").status == "refused"
    assert records.find("p1").redaction == redaction
    assert records.find("nope") is None


def test_text_regions_revisions_and_their_redaction_are_kept(engine):
    records = adapters.SqlPhotoRecords(engine)
    records.add(a_record(texts=((5, 6, 70, 20),), ocr="ok"))
    records.revise("p1", 2, [(1, 1, 9, 9)], [(0, "pupil-9")])
    redaction = domain.Redaction(
        "redacted/post-1/p1-r2.jpg",
        "previews/post-1/p1-r2.jpg",
        "e" * 64,
        320,
        240,
        (domain.FaceOutcome(0, (0, 1, 15, 20), False, None, "pupil-9"),),
        texts=(domain.TextOutcome(0, (2, 3, 35, 10), True, "pupil_name"),),
        ocr="ok",
        revision=2,
        added_masks=((0, 0, 4, 4),),
    )

    records.finish("p1", redaction)

    found = records.find("p1")
    assert found == a_record(
        texts=((5, 6, 70, 20),),
        ocr="ok",
        revision=2,
        extra_masks=((1, 1, 9, 9),),
        named=((0, "pupil-9"),),
        redaction=redaction,
    )


def test_an_older_revision_never_replaces_a_newer_one(engine):
    records = adapters.SqlPhotoRecords(engine)
    records.add(a_record())
    records.revise("p1", 2, [(1, 1, 9, 9)], [])

    records.revise("p1", 1, [], [])

    assert records.find("p1").revision == 2


def test_a_closed_posts_originals_fall_due_after_the_retention_period(engine):
    from datetime import UTC, datetime, timedelta

    records = adapters.SqlPhotoRecords(engine)
    records.add(a_record())
    records.add(a_record(photo_id="p2", post_id="post-2"))
    closed_at = datetime(2025, 3, 1, tzinfo=UTC)
    records.close_post("post-1", domain.Closure("post_published", closed_at))
    records.close_post("post-1", domain.Closure("post_rejected", closed_at))

    early = records.due(closed_at + timedelta(days=29), 30)
    due = records.due(closed_at + timedelta(days=30), 30)
    records.mark_deleted("p1")

    assert early == []
    assert [r.photo_id for r in due] == ["p1"]
    assert due[0].closed == domain.Closure("post_published", closed_at)
    assert records.due(closed_at + timedelta(days=90), 30) == []
    assert records.find("p1").original_deleted


# The use cases on the real unit of work (SQLite): all of a message's writes and
# what it emits commit together, or none of it.


def sql_ports(engine, bus, unit=None, **changes):
    """Redaction's ports as bootstrap.real_ports wires them, on ``engine``; fakes for
    the blob stores and the face models."""
    from dataclasses import replace
    from functools import partial

    from services.redaction.bootstrap import SERVICE
    from tests.unit.redaction.fakes import FakeDetector, fake_ports

    ports = fake_ports(FakeDetector((40, 40, 100, 100)))
    return replace(
        ports,
        records=adapters.SqlPhotoRecords(engine),
        unit=partial(
            unit or adapters.RedactionUnit,
            engine,
            adapters.outbox,
            producer=SERVICE,
            publisher=bus,
        ),
        publisher=bus,
        **changes,
    )


def test_a_use_case_that_fails_half_way_keeps_none_of_its_writes(engine):
    """post.submitted records each photo as it is detected: when the second photo's
    original cannot be read (the store is away), the first photo's record is not kept
    either and nothing is emitted; the retry then detects both, once."""
    from services.redaction.bootstrap import handler_map
    from shared import contracts
    from shared.storage import BlobNotFoundError
    from tests.support.bus import InMemoryBus
    from tests.unit.redaction.fakes import a_picture, a_post, jpeg_bytes

    bus = InMemoryBus()
    ports = sql_ports(engine, bus)
    post = a_post(ports, jpeg_bytes(), jpeg_bytes(a_picture(300, 200)))
    second = post.photos[1].original_key
    data = ports.originals.get(second)
    ports.originals.delete(second)
    detect = handler_map(ports)[contracts.PostSubmitted]

    with pytest.raises(BlobNotFoundError):
        detect(post)

    assert ports.records.find(post.photos[0].photo_id) is None
    assert bus.published == []
    assert db.outbox_pending(engine, adapters.outbox, 10) == []

    ports.originals.put(second, data)
    detect(post)

    assert [m.photo_id for m in bus.messages(contracts.FacesDetected)] == [
        p.photo_id for p in post.photos
    ]
    assert db.outbox_pending(engine, adapters.outbox, 10) == []  # all sent


def test_a_revision_whose_original_cannot_be_read_is_not_kept(engine):
    """redaction.revise records the approver's edits, then reads the original to ask
    consent again: if the read fails, the edits are not kept and nothing is sent, so
    the retry asks for the same revision as new."""
    from services.redaction.bootstrap import handler_map
    from shared import contracts
    from shared.storage import BlobNotFoundError
    from tests.support.bus import InMemoryBus
    from tests.unit.redaction.fakes import a_post

    bus = InMemoryBus()
    ports = sql_ports(engine, bus)
    post = a_post(ports)
    handlers = handler_map(ports)
    handlers[contracts.PostSubmitted](post)
    photo = post.photos[0]
    before = list(bus.published)
    ports.originals.delete(photo.original_key)

    with pytest.raises(BlobNotFoundError):
        handlers[contracts.ReviseRedaction](
            contracts.ReviseRedaction(
                photo_id=photo.photo_id,
                post_id=post.post_id,
                school_id=post.school_id,
                revision=1,
                add_masks=[(1, 1, 9, 9)],
                requested_by="approver-1",
            )
        )

    record = ports.records.find(photo.photo_id)
    assert record is not None
    assert (record.revision, record.extra_masks) == (0, ())
    assert bus.published == before
    assert db.outbox_pending(engine, adapters.outbox, 10) == []


def published_and_due(engine, bus, unit=None):
    """A detected photo whose post was published more than 30 days ago."""
    from dataclasses import replace
    from datetime import timedelta

    from services.redaction.bootstrap import handler_map
    from shared import contracts
    from tests.unit.redaction.fakes import NOW, a_post

    ports = sql_ports(engine, bus, unit)
    post = a_post(ports)
    handlers = handler_map(ports)
    handlers[contracts.PostSubmitted](post)
    handlers[contracts.PostPublished](
        contracts.PostPublished(
            post_id=post.post_id,
            school_id=post.school_id,
            account="hill-facebook",
            target="folder",
            location="/x",
        )
    )
    later = NOW + timedelta(days=31)
    return replace(ports, now=lambda: later), post.photos[0]


def test_a_deletion_is_announced_through_the_outbox_even_with_the_broker_away(
    engine,
):
    """The sweep marks the deletion and records its announcement in one transaction;
    the broker being away does not lose it: the relay sends it, with the id derived
    from the photo, once."""
    from services.redaction.bootstrap import SERVICE, sweep_originals
    from shared import contracts, outbox
    from tests.support.bus import InMemoryBus

    bus = InMemoryBus()
    ports, photo = published_and_due(engine, bus)
    bus.up = False

    assert sweep_originals(ports) == 1

    assert not ports.originals.exists(photo.original_key)
    assert ports.records.find(photo.photo_id).original_deleted
    [waiting] = db.outbox_pending(engine, adapters.outbox, 10)
    assert waiting.id == contracts.deterministic_id(
        SERVICE, f"original-deleted:{photo.photo_id}"
    )
    bus.up = True
    before = len(bus.published)
    outbox.relay(db.SqlOutbox(engine, adapters.outbox, db.utcnow), bus)
    assert [e.id for e in bus.published[before:]] == [waiting.id]
    assert sweep_originals(ports) == 0


def test_an_original_deleted_but_not_yet_recorded_is_deleted_again_and_announced_once(
    engine,
):
    """The original leaves the store before its deletion is recorded (a record saying
    deleted while the original is still there would keep it forever): when the record
    cannot be written after the deletion, nothing is announced, and the next sweep
    deletes (harmlessly) again, records it and announces it."""
    from services.redaction.bootstrap import sweep_originals
    from shared import contracts
    from tests.support.bus import InMemoryBus

    class Crashing(adapters.RedactionUnit):
        def bind(self, conn):
            super().bind(conn)

            def refused(photo_id):
                raise OSError("database went away")

            self.records.mark_deleted = refused  # type: ignore[method-assign]

    bus = InMemoryBus()
    ports, photo = published_and_due(engine, bus)
    crashing = sql_ports(engine, bus, Crashing)
    before = list(bus.published)

    with pytest.raises(OSError):
        sweep_originals(type(ports)(**{**ports.__dict__, "unit": crashing.unit}))

    assert not ports.originals.exists(photo.original_key)
    assert not ports.records.find(photo.photo_id).original_deleted
    assert bus.published == before

    assert sweep_originals(ports) == 1

    [gone] = bus.messages(contracts.OriginalDeleted)
    assert gone.original_key == photo.original_key
    assert ports.records.find(photo.photo_id).original_deleted


def test_a_redaction_whose_preview_cannot_be_stored_names_no_blob_and_retries_the_same(
    engine,
):
    """The copies are written before the record commits, under keys fixed by post,
    photo and revision: when the preview cannot be stored, the record names no copy
    and nothing is sent; the retry writes the same keys and only then records them."""
    from dataclasses import replace

    from services.redaction.bootstrap import handler_map
    from shared import contracts
    from shared.testing import InMemoryBlobStore
    from tests.support.bus import InMemoryBus
    from tests.unit.redaction.fakes import a_post, decided

    class Flaky(InMemoryBlobStore):
        down = True

        def put(self, key, data, content_type="application/octet-stream"):
            if self.down:
                raise OSError("store away")
            return super().put(key, data, content_type)

    bus = InMemoryBus()
    ports = sql_ports(engine, bus)
    ports = replace(ports, previews=Flaky())
    post = a_post(ports)
    handlers = handler_map(ports)
    handlers[contracts.PostSubmitted](post)
    photo = post.photos[0]
    before = list(bus.published)

    with pytest.raises(OSError):
        handlers[contracts.FacesDecided](decided(photo.photo_id))

    assert ports.records.find(photo.photo_id).redaction is None
    assert bus.published == before
    ports.previews.down = False
    handlers[contracts.FacesDecided](decided(photo.photo_id))
    [done] = bus.messages(contracts.PhotoRedacted)
    stored = ports.records.find(photo.photo_id).redaction
    assert (stored.redacted_key, stored.preview_key) == (
        done.redacted_key,
        done.preview_key,
    )
    assert ports.redacted.exists(done.redacted_key)
    assert ports.previews.exists(done.preview_key)
