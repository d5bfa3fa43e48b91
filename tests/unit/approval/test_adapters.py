"""Approval's SQL adapters on SQLite, and its migration matching its tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

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
    stored = book.save(post)
    moved = domain.move(stored, domain.AWAITING, by=None, at=AT)

    moved = book.save(moved)

    assert book.get("p1") == moved
    assert moved.version == 2
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


def test_a_fit_question_then_its_answer_are_kept_per_post_and_account(tmp_path):
    book = adapters.SqlPostBook(an_engine(tmp_path))
    answer = domain.Fit("tweets", False, "x", "Trust X", ("Too long.",), "X charges")

    book.ask_fit("p1", ["newsroom", "tweets"])
    asked = book.fits(["p1"])
    book.answer_fit("p1", [answer, domain.Fit("newsroom", True, "folder", "News")])
    book.answer_fit("p1", [answer])
    book.ask_fit("p2", ["newsroom"])

    assert asked == {
        "p1": {
            "newsroom": domain.Fit("newsroom"),
            "tweets": domain.Fit("tweets"),
        }
    }
    assert book.fits(["p1", "p2", "p3"]) == {
        "p1": {
            "newsroom": domain.Fit("newsroom", True, "folder", "News"),
            "tweets": answer,
        },
        "p2": {"newsroom": domain.Fit("newsroom")},
    }
    assert book.fits([]) == {}


def test_asking_again_sets_the_answer_aside_but_keeps_the_accounts_name(tmp_path):
    book = adapters.SqlPostBook(an_engine(tmp_path))
    book.answer_fit("p1", [domain.Fit("tweets", False, "x", "Trust X", ("No.",))])

    book.ask_fit("p1", ["tweets"])

    assert book.fits(["p1"])["p1"]["tweets"] == domain.Fit(
        "tweets", None, "x", "Trust X"
    )


def a_delivery(state: str, minute: int = 0, **kwargs) -> domain.Delivery:
    at = AT.replace(minute=minute)
    return domain.Delivery("p1", "page", "north", state, at, "facebook", **kwargs)


def test_the_newest_delivery_state_wins_and_an_older_one_changes_nothing(tmp_path):
    book = adapters.SqlPostBook(an_engine(tmp_path))
    waiting = a_delivery(
        "waiting", 1, reason="retrying", attempts=1, retry_at=AT.replace(minute=6)
    )
    live = a_delivery("live", 2, url="https://facebook.com/1", attempts=2)

    assert book.record_delivery(waiting)
    assert book.deliveries(["p1"]) == {"p1": {"page": waiting}}
    assert book.record_delivery(live)
    assert not book.record_delivery(waiting)
    assert not book.record_delivery(live)

    assert book.deliveries(["p1", "p2"]) == {"p1": {"page": live}}
    assert book.deliveries([]) == {}


def test_a_summary_fills_in_until_a_timed_update_comes(tmp_path):
    book = adapters.SqlPostBook(an_engine(tmp_path))
    failed = a_delivery("failed", 30, reason="media_rejected", timed=False)
    summary_live = a_delivery("live", 31, timed=False)
    timed = a_delivery("taken_down", 0)

    assert book.record_delivery(failed)
    assert book.record_delivery(summary_live)
    assert not book.record_delivery(failed)
    assert book.record_delivery(timed)
    assert not book.record_delivery(summary_live)

    assert book.deliveries(["p1"])["p1"]["page"] == timed


def test_a_save_over_a_newer_version_is_refused_and_changes_nothing(tmp_path):
    from shared.errors import ConcurrentUpdateError
    from shared.failures import Failure, classify

    book = adapters.SqlPostBook(an_engine(tmp_path))
    book.save(domain.new_post("p1", "north", "u1", "Sports", ("web",), ("ph1",), AT))
    first, second = book.get("p1"), book.get("p1")  # two workers read it
    assert first is not None and second is not None
    book.save(domain.move(first, domain.AWAITING, by=None, at=AT))

    with pytest.raises(ConcurrentUpdateError) as refused:
        book.save(replace(second, caption="stale"))

    assert classify(refused.value) is Failure.CONFLICT  # the worker retries it
    now = book.get("p1")
    assert now is not None
    assert (now.status, now.caption, now.version) == (domain.AWAITING, "Sports", 2)


def test_a_use_case_that_fails_half_way_keeps_none_of_its_writes(tmp_path):
    """photo.redacted stores the photo's report, then saves the post: if the save is
    refused (someone else saved the post meanwhile), the report is not kept either,
    and nothing is emitted; the retry then finds a consistent state."""
    from functools import partial

    from services.approval.bootstrap import SERVICE, handler_map
    from shared.errors import ConcurrentUpdateError
    from tests.support.bus import InMemoryBus
    from tests.unit.approval.builders import a_rig, redacted, submitted

    engine = an_engine(tmp_path)
    bus = InMemoryBus()
    unit = partial(
        adapters.ApprovalUnit, engine, adapters.outbox, producer=SERVICE, publisher=bus
    )
    rig = a_rig()
    ports = replace(rig.ports, unit=unit)
    handlers = handler_map(ports)
    handlers[type(submitted())](submitted())
    sneaky = adapters.SqlPostBook(engine)
    stale = sneaky.get("p1")
    assert stale is not None

    sneaky.save(replace(stale, caption="changed meanwhile"))  # another worker

    class Racing(adapters.ApprovalUnit):
        def bind(self, conn):  # ... saved the post just after this one read it
            super().bind(conn)
            self.posts.get = lambda post_id: stale  # type: ignore[method-assign]

    racing = partial(Racing, engine, adapters.outbox, producer=SERVICE, publisher=bus)
    before = list(bus.published)

    with pytest.raises(ConcurrentUpdateError):
        handler_map(replace(ports, unit=racing))[type(redacted())](redacted())

    assert adapters.SqlPhotoReports(engine).for_post("p1") == {}
    assert bus.published == before
    assert db.outbox_pending(engine, adapters.outbox, 10) == []


def test_who_named_a_face_is_kept_across_revisions(tmp_path):
    reports = adapters.SqlPhotoReports(an_engine(tmp_path))
    first = domain.PhotoReport("ph1", "p1", "redacted/p1/ph1.jpg", sha256="b" * 64)
    reports.put(domain.request_revision(first, 1, named_by="u-coo"))
    [kept] = reports.for_post("p1").values()
    arrived = replace(first, revision=1, sha256="c" * 64)  # redaction's new rendering

    reports.put(domain.newest(kept, arrived))

    assert reports.for_post("p1")["ph1"].named_by == ("u-coo",)
