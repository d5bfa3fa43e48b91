import sqlite3
import threading
from dataclasses import replace
from datetime import timedelta
from functools import partial

import pytest
import sqlalchemy as sa

from services.audit import adapters, admin, domain
from services.audit.bootstrap import MIGRATIONS, Ports, envelope_handler
from services.audit.domain import Query
from services.audit.handlers import record_envelope
from shared import db
from tests.unit.audit.builders import (
    T0,
    a_clock,
    faces_decided,
    faces_detected,
    post_submitted,
    unknown_type,
)


@pytest.fixture()
def path(tmp_path):
    return tmp_path / "audit.sqlite3"


@pytest.fixture()
def engine(path):
    engine = db.make_engine(f"sqlite:///{path}")
    db.migrate(engine, MIGRATIONS)
    return engine


@pytest.fixture()
def trail(engine):
    return adapters.SqlAuditTrail(engine)


@pytest.fixture()
def ports(engine, trail):
    return Ports(log=trail, unit=partial(adapters.AuditUnit, engine), clock=a_clock())


def fill(ports, *envelopes):
    handle = envelope_handler(ports)
    for envelope in envelopes:
        handle(envelope)


def five(ports):
    fill(
        ports,
        post_submitted(),
        faces_detected(),
        faces_decided(),
        post_submitted("post-2", "riverside", device_id="ipad-3"),
        unknown_type(),
    )


def tamper(path, *statements):
    """Bypass the triggers the way an attacker with file access would."""
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER audit_records_no_update")
    conn.execute("DROP TRIGGER audit_records_no_delete")
    for statement in statements:
        conn.execute(*statement) if isinstance(statement, tuple) else conn.execute(
            statement
        )
    conn.commit()
    conn.close()


def test_the_migrated_schema_matches_the_adapters_tables(engine):
    with engine.connect() as conn:
        assert db.schema_diffs(conn, adapters.metadata) == []


def test_records_read_back_verify(ports):
    five(ports)

    result = admin.verify_chain(ports)

    assert (result.ok, result.checked, result.head_seq) == (True, 5, 5)


def test_records_read_back_equal_what_was_chained(ports, trail):
    fill(ports, faces_decided(pupils=("ada", "bo")))

    [kept] = trail.search(Query())

    assert kept.hash == domain.record_hash(kept)
    assert kept.pupil_ids == ("ada", "bo")
    assert kept.occurred_at.tzinfo is not None


def test_a_duplicate_message_id_is_recorded_once(ports, trail):
    detected = faces_detected()

    fill(ports, detected, detected)

    assert len(trail.search(Query())) == 1


def test_encodings_never_reach_the_database(ports, path):
    fill(ports, faces_detected())

    raw = path.read_bytes() + b"".join(
        p.read_bytes() for p in path.parent.glob("*-wal")
    )
    assert b"encoding" not in raw
    assert b"0.25" not in raw


def test_the_triggers_refuse_update_and_delete(ports, engine):
    five(ports)

    with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as c:
        c.execute(sa.text("UPDATE audit_records SET actor = 'x' WHERE seq = 2"))
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as c:
        c.execute(sa.text("DELETE FROM audit_records WHERE seq = 5"))
    assert admin.verify_chain(ports).checked == 5


def test_altering_a_records_data_is_detected(ports, path):
    five(ports)

    tamper(
        path, 'UPDATE audit_records SET data = \'{"post_id": "post-9"}\' WHERE seq = 3'
    )

    result = admin.verify_chain(ports)
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_deleting_a_record_is_detected(ports, path):
    five(ports)

    tamper(path, "DELETE FROM audit_records WHERE seq = 2")

    result = admin.verify_chain(ports)
    assert (result.ok, result.first_bad_seq) == (False, 2)


def test_inserting_a_forged_record_in_the_middle_is_detected(
    ports, trail, engine, path
):
    five(ports)
    [second] = trail.search(Query(after=1, limit=1))
    forged = domain.chain(
        replace(second, message_id="forged", actor="mallory"), 3, second.hash
    )
    tamper(
        path,
        "UPDATE audit_records SET seq = seq + 100 WHERE seq >= 3",
        "UPDATE audit_records SET seq = seq - 99 WHERE seq >= 103",
    )

    with engine.begin() as conn:  # a well-formed record, hashed onto record 2
        conn.execute(adapters.audit_records.insert().values(**adapters._row(forged)))

    result = admin.verify_chain(ports)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "does not follow" in result.reason


def test_filters_select_records(ports, trail):
    five(ports)

    def types(**filters):
        return [r.type for r in trail.search(Query(**filters))]

    assert types(post="post-2") == ["post.submitted"]
    assert types(photo="photo-1", school="oakfield") == [
        "post.submitted",
        "faces.detected",
        "faces.decided",
    ]
    assert types(pupil="ada") == ["faces.decided"]
    assert types(pupil="ad") == []
    assert types(device="ipad-7") == ["device.registered"]
    assert types(actor="teacher-1") == ["post.submitted", "post.submitted"]
    assert types(type="faces.detected") == ["faces.detected"]
    assert len(types(school="oakfield")) == 4


def test_time_filters_use_when_it_happened(ports, trail):
    fill(
        ports,
        post_submitted(occurred_at=T0),
        post_submitted("post-2", occurred_at=T0 + timedelta(hours=2)),
    )

    later = trail.search(Query(since=T0 + timedelta(hours=1)))
    earlier = trail.search(Query(until=T0 + timedelta(hours=1)))

    assert [r.post_id for r in later] == ["post-2"]
    assert [r.post_id for r in earlier] == ["post-1"]


def test_school_scoping_hides_other_schools_and_schoolless_records(ports, trail):
    five(ports)

    riverside = trail.search(Query(schools=frozenset({"riverside"})))

    assert [r.post_id for r in riverside] == ["post-2"]


def test_paging_continues_after_a_seq(ports, trail):
    five(ports)

    first = trail.search(Query(limit=2))
    rest = trail.search(Query(after=first[-1].seq, limit=10))

    assert [r.seq for r in first + rest] == [1, 2, 3, 4, 5]


def test_concurrent_appends_keep_one_chain(ports, trail):
    def work(n):
        fill(ports, *[post_submitted(f"post-{n}-{i}") for i in range(20)])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    result = admin.verify_chain(ports)
    assert (result.ok, result.checked) == (True, 80)


def test_a_record_whose_unit_is_not_committed_is_not_kept_and_the_retry_chains_it(
    ports, engine
):
    """The journal writes in the unit's transaction: a use case that fails after the
    append (before the commit; the worker then retries the message) keeps nothing,
    and the retry records the message once, next in the chain."""
    first, second = post_submitted(), faces_detected()
    fill(ports, first)

    with pytest.raises(RuntimeError), adapters.AuditUnit(engine) as unit:
        assert record_envelope(second, journal=unit.journal, clock=a_clock())
        raise RuntimeError("worker died before the commit")

    assert [r.message_id for r in ports.log.chain()] == [first.id]
    fill(ports, second)
    assert [(r.seq, r.message_id) for r in ports.log.chain()] == [
        (1, first.id),
        (2, second.id),
    ]
    assert admin.verify_chain(ports).ok
