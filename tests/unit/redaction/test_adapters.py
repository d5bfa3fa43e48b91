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
