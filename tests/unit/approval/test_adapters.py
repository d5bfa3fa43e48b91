"""Approval's SQL adapters on SQLite, and its migration matching its tables."""

from __future__ import annotations

from datetime import UTC, datetime

from services.approval import adapters, domain
from services.approval.bootstrap import MIGRATIONS
from shared import db

AT = datetime(2030, 1, 1, 9, tzinfo=UTC)


def an_engine(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'approval.sqlite3'}")
    db.migrate(engine, MIGRATIONS)
    return engine


def test_the_migrated_schema_matches_the_tables(tmp_path):
    engine = an_engine(tmp_path)

    with engine.connect() as conn:
        assert db.schema_diffs(conn, adapters.metadata) == []


def test_a_post_round_trips_with_its_history_appended(tmp_path):
    book = adapters.SqlPostBook(an_engine(tmp_path))
    post = domain.new_post("p1", "north", "u1", "Sports", ("web",), ("ph1",), AT)
    book.save(post)
    moved = domain.move(post, domain.AWAITING, by=None, at=AT)

    book.save(moved)

    assert book.get("p1") == moved
    assert book.find(schools={"north"}, status=domain.AWAITING) == [moved]
    assert book.find(author_id="u2") == []
    assert book.get("nope") is None


def test_a_photo_report_is_replaced_not_doubled(tmp_path):
    reports = adapters.SqlPhotoReports(an_engine(tmp_path))
    report = domain.PhotoReport(
        "ph1",
        "p1",
        "redacted/p1/ph1.jpg",
        "previews/p1/ph1.jpg",
        "b" * 64,
        (domain.Face(0, True, "unknown"),),
    )

    reports.put(report)
    reports.put(report)

    assert reports.for_post("p1") == {"ph1": report}
