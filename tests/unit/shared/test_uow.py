"""The unit of work: changes and emitted messages commit together or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared import bus, contracts, db, outbox
from shared.uow import SqlUnitOfWork
from tests.support.bus import FailingBus, InMemoryBus

metadata = sa.MetaData()
notes = sa.Table("notes", metadata, sa.Column("id", sa.String(20), primary_key=True))
box = db.outbox_table(metadata)


class NotesUnit(SqlUnitOfWork):
    def bind(self, conn: sa.Connection) -> None:
        self.notes = Notes(conn)


class Notes:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def add(self, note_id: str) -> None:
        self.conn.execute(notes.insert().values(id=note_id))

    def ids(self) -> list[str]:
        return list(self.conn.execute(sa.select(notes.c.id)).scalars())


def rejected(n: int) -> contracts.PostRejected:
    return contracts.PostRejected(post_id=f"p{n}", school_id="oak", reason="blurry")


@pytest.fixture()
def engine(tmp_path: Path) -> Engine:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'uow.sqlite3'}")
    metadata.create_all(engine)
    return engine


def unit(engine: Engine, publisher: bus.Publisher | None) -> NotesUnit:
    return NotesUnit(engine, box, producer="test", publisher=publisher)


def pending(engine: Engine) -> list[str]:
    return [e.type for e in db.outbox_pending(engine, box, 100)]


def test_a_committed_use_case_keeps_its_change_and_sends_its_message_after(engine):
    sent = InMemoryBus()

    with unit(engine, sent) as uow:
        uow.notes.add("n1")
        uow.emit(rejected(1), actor="approver.oak")
        assert sent.published == []  # nothing leaves before the commit
        uow.commit()

    assert [e.type for e in sent.published] == ["post.rejected"]
    assert sent.published[0].actor == "approver.oak"
    assert pending(engine) == []
    with unit(engine, None) as uow:
        assert uow.notes.ids() == ["n1"]


def test_a_use_case_that_fails_leaves_no_change_and_no_message(engine):
    sent = InMemoryBus()

    with pytest.raises(RuntimeError), unit(engine, sent) as uow:
        uow.notes.add("n1")
        uow.emit(rejected(1))
        raise RuntimeError("a rule was broken")

    assert sent.published == [] and pending(engine) == []
    with unit(engine, None) as uow:
        assert uow.notes.ids() == []


def test_without_commit_nothing_is_kept(engine):
    with unit(engine, InMemoryBus()) as uow:
        uow.notes.add("n1")
        uow.emit(rejected(1))

    assert pending(engine) == []
    with unit(engine, None) as uow:
        assert uow.notes.ids() == []


def test_with_the_broker_away_the_message_waits_in_the_outbox_for_the_relay(engine):
    with unit(engine, FailingBus()) as uow:
        uow.notes.add("n1")
        uow.emit(rejected(1))
        uow.commit()

    assert pending(engine) == ["post.rejected"]
    later = InMemoryBus()
    assert outbox.relay(db.SqlOutbox(engine, box, db.utcnow), later) == 1
    assert [e.type for e in later.published] == ["post.rejected"]


def test_handling_the_same_message_twice_emits_the_same_envelopes_once(engine):
    cause = contracts.seal(rejected(0), producer="other")
    sent = InMemoryBus()
    emitted: list[list[contracts.Envelope]] = []

    def handle() -> None:
        with unit(engine, sent) as uow:
            emitted.append([uow.emit(rejected(1)), uow.emit(rejected(2))])
            uow.commit()

    token = bus._incoming.set(cause)
    try:
        handle()
        handle()  # redelivered: the same ids, recognised, not sent again
    finally:
        bus._incoming.reset(token)

    assert [e.id for e in emitted[0]] == [e.id for e in emitted[1]]
    assert [e.id for e in sent.published] == [e.id for e in emitted[0]]
    assert all(e.causation_id == cause.id for e in sent.published)
    assert all(e.correlation_id == cause.correlation_id for e in sent.published)
    assert pending(engine) == []
