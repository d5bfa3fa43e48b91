"""Intake's SQL ledger on SQLite, and its migration matching its tables."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.exc import IntegrityError

from services.intake import adapters, domain
from services.intake.bootstrap import MIGRATIONS
from services.intake.ports import NewPost, StoredPhoto
from shared import contracts, db


def a_ledger(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'intake.sqlite3'}")
    db.migrate(engine, MIGRATIONS)
    return engine, adapters.SqlPostLedger(engine)


def a_new_post(post_id="p1"):
    photo = domain.Photo("a.jpg", "a" * 64, 10, domain.JPEG)
    draft = domain.Draft(
        "north", "u1", "Sports day", "social_media", ("newsroom",), date(2030, 1, 2)
    )
    stored = StoredPhoto(
        photo_id=f"{post_id}-ph",
        receipt_id=f"{post_id}-r",
        key=photo.key(post_id),
        photo=photo,
    )
    return NewPost(post_id=post_id, draft=draft, photos=(stored,))


def an_envelope(post_id="p1"):
    message = contracts.PostSubmitted(
        post_id=post_id,
        school_id="north",
        author_id="u1",
        accounts=["newsroom"],
        photos=[
            contracts.PhotoRef(
                photo_id="ph", original_key="k", sha256="a" * 64, bytes=10
            )
        ],
    )
    return contracts.seal(message, producer="intake", actor="u1")


def test_the_migrated_schema_matches_the_tables(tmp_path):
    engine, _ = a_ledger(tmp_path)

    with engine.connect() as conn:
        diffs = db.schema_diffs(conn, adapters.metadata)

    assert diffs == []


def test_a_recorded_post_leaves_its_envelope_pending_until_marked_sent(tmp_path):
    _, ledger = a_ledger(tmp_path)
    envelope = an_envelope()

    ledger.record(a_new_post(), envelope)
    pending = ledger.pending()
    ledger.mark_sent([envelope.id])

    assert pending == [envelope]
    assert ledger.pending() == []


def test_a_post_that_cannot_be_recorded_leaves_no_outbox_row(tmp_path):
    _, ledger = a_ledger(tmp_path)
    ledger.record(a_new_post(), an_envelope())
    ledger.mark_sent([e.id for e in ledger.pending()])

    with pytest.raises(IntegrityError):
        ledger.record(a_new_post(), an_envelope())  # same post id: the insert fails

    assert ledger.pending() == []
