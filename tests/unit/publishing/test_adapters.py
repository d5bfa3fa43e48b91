"""Publishing's SQL adapters on SQLite, and its migration matching its tables."""

from __future__ import annotations

from datetime import UTC, datetime

from services.publishing import adapters, domain
from services.publishing.bootstrap import MIGRATIONS
from shared import db

AT = datetime(2030, 1, 1, 9, tzinfo=UTC)


def an_engine(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'publishing.sqlite3'}")
    db.migrate(engine, MIGRATIONS)
    return engine


def test_the_migrated_schema_matches_the_tables(tmp_path):
    engine = an_engine(tmp_path)

    with engine.connect() as conn:
        assert db.schema_diffs(conn, adapters.metadata) == []


def test_accounts_are_added_once_and_listed_per_school(tmp_path):
    directory = adapters.SqlAccountDirectory(an_engine(tmp_path))
    account = domain.Account("web", "north", "folder", "Website", {"path": "/p"})

    added = (directory.add(account), directory.add(account))

    assert added == (True, False)
    assert directory.get("web") == account
    assert directory.for_school("north") == [account]
    assert directory.for_school("south") == []


def test_a_delivery_marker_moves_from_started_to_done(tmp_path):
    log = adapters.SqlDeliveryLog(an_engine(tmp_path))
    started = domain.Delivery("p1", "web", "north", domain.STARTED, AT, target="folder")
    done = domain.Delivery(
        "p1", "web", "north", domain.DONE, AT, target="folder", location="/p/p1"
    )

    log.record(started)
    log.record(done)

    assert log.get("p1", "web") == done
    assert log.recent(schools={"north"}) == [done]
    assert log.recent(schools={"south"}) == []
    assert log.recent(post_id="p2") == []
