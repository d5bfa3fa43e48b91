"""Intake's SQL adapters on SQLite: its migration matching its tables, the unit of
work keeping a use case's writes and messages together, the register and obligations
driven through the API as the fakes are."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from functools import partial

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from services.intake import adapters, domain, handlers
from services.intake.adapters import tables
from services.intake.bootstrap import MIGRATIONS, SERVICE
from services.intake.ports import NewPost, StoredPhoto
from shared import db
from tests.support.bus import FailingBus, InMemoryBus
from tests.unit.intake.builders import (
    a_form,
    a_jpeg,
    a_png,
    a_rig,
    an_identity,
    bearer,
)


def an_engine(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'intake.sqlite3'}")
    db.migrate(engine, MIGRATIONS)
    return engine


def a_unit(engine, publisher, cls=adapters.IntakeUnit):
    return cls(engine, adapters.outbox, producer=SERVICE, publisher=publisher)


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


def record(unit, post):
    with unit:
        unit.posts.add(post, db.utcnow())
        envelope = unit.emit(handlers.submitted(post), actor="u1")
        unit.commit()
    return envelope


def test_the_migrated_schema_matches_the_tables(tmp_path):
    engine = an_engine(tmp_path)

    with engine.connect() as conn:
        diffs = db.schema_diffs(conn, adapters.metadata)

    assert diffs == []


def test_a_post_recorded_with_the_broker_down_waits_in_the_outbox_until_relayed(
    tmp_path,
):
    engine = an_engine(tmp_path)
    unit = a_unit(engine, FailingBus())

    envelope = record(unit, a_new_post())
    waiting = db.outbox_pending(engine, adapters.outbox, 10)
    bus = InMemoryBus()
    sent = db.SqlOutbox(engine, adapters.outbox, db.utcnow).claim(
        lambda e: bus.publish([e]) is None
    )

    assert unit.waiting == [envelope.id]
    assert waiting == [envelope]
    assert sent == (1, False)
    assert bus.ids() == [envelope.id]
    assert db.outbox_pending(engine, adapters.outbox, 10) == []


def rows(engine, types=("post.submitted", "receipt.issued")):
    """Every row an upload writes, table by table (outbox rows of its types)."""
    with engine.connect() as conn:
        found = {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (tables.posts, tables.photos, tables.obligations)
        }
        found["outbox"] = conn.execute(
            sa.select(sa.func.count())
            .select_from(adapters.outbox)
            .where(adapters.outbox.c.type.in_(types))
        ).scalar_one()
    return found


@pytest.mark.parametrize("down", ["obligations", "outbox"])
def test_a_post_that_cannot_be_recorded_leaves_no_outbox_row(tmp_path, down):
    """The upload's last writes fail (its obligations; or its outbox rows, written
    at the commit after everything else): none of its writes remain, its originals
    are removed, and the next upload records."""
    rig = a_rig(sql=tmp_path)
    rig.token()
    assert rig.engine is not None
    with rig.engine.begin() as conn:
        conn.exec_driver_sql(
            f"CREATE TRIGGER {down}_down BEFORE INSERT ON {down} "
            f"BEGIN SELECT RAISE(ABORT, '{down} are down'); END"
        )

    res = rig.upload(a_form((a_jpeg(), "a.jpg"), (a_png(), "b.png")))

    assert res.status_code == 503
    assert res.get_json()["error"] == "storage_unavailable"
    assert rows(rig.engine) == {"posts": 0, "photos": 0, "obligations": 0, "outbox": 0}
    assert rig.originals.blobs == {}
    assert not {"post.submitted", "receipt.issued"} & set(rig.bus.types())
    with rig.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TRIGGER {down}_down")
    again = rig.upload(a_form((a_jpeg(), "a.jpg"), (a_png(), "b.png")))
    assert again.status_code == 201
    assert rows(rig.engine) == {"posts": 1, "photos": 2, "obligations": 2, "outbox": 3}


def test_recording_a_post_id_twice_fails_and_adds_no_outbox_row(tmp_path):
    engine = an_engine(tmp_path)
    first = record(a_unit(engine, InMemoryBus()), a_new_post())

    with pytest.raises(IntegrityError):  # same post id: the insert fails
        record(a_unit(engine, InMemoryBus()), a_new_post())

    with engine.connect() as conn:
        ids = conn.execute(sa.select(adapters.outbox.c.envelope_id)).scalars().all()
    assert ids == [first.id]


def test_a_use_case_that_fails_half_way_keeps_none_of_its_writes(tmp_path):
    """Enrolment marks the code used, then stores the new token: if that fails, the
    code is not kept used either and nothing is emitted; the retry then works."""
    bus = InMemoryBus()
    rig = a_rig(sql=tmp_path, bus=bus)
    assert rig.engine is not None
    device = handlers.register(
        rig.ports, school="north", owner="u-teacher", kind="trust", name="", by="u-it"
    )
    code, _ = handlers.enrolment_code(rig.ports, device.device_id, "u-it")

    class Broken(adapters.IntakeUnit):
        def bind(self, conn):  # the database goes away between the two writes
            super().bind(conn)

            def set_token(*args):
                raise sa.exc.OperationalError("UPDATE devices", {}, OSError("gone"))

            self.devices.set_token = set_token  # type: ignore[method-assign]

    before = list(bus.published)
    broken = partial(a_unit, rig.engine, bus, Broken)

    with pytest.raises(sa.exc.OperationalError):
        handlers.enrol(replace(rig.ports, unit=broken), code, via="api")

    assert bus.published == before
    assert "device.enrolled" not in {e.type for e in rig.pending()}
    stored = rig.ports.register.code(domain.hash_secret(domain.normalise_code(code)))
    assert stored is not None and stored.used_at is None
    _, token = handlers.enrol(rig.ports, code, via="api")
    assert rig.ports.register.by_token(domain.hash_secret(token)) is not None
    assert bus.types()[-1] == "device.enrolled"


# The device register on SQLite, driven through the API like the fakes are.


def test_on_sql_a_device_is_registered_enrolled_approved_used_and_revoked(tmp_path):
    rig = a_rig(sql=tmp_path)
    device_id, token = rig.device(status="pending")
    refused = rig.upload(a_form((a_jpeg(), "a.jpg")), token=token)
    handlers.approve(rig.ports, device_id, "u-coo")

    accepted = rig.upload(a_form((a_jpeg(), "a.jpg")), token=token)
    handlers.revoke(rig.ports, device_id, "u-it", "lost")
    after = rig.upload(a_form((a_png(), "b.png")), token=token)

    assert refused.get_json()["error"] == "device_pending"
    assert accepted.status_code == 201
    assert after.status_code == 403
    stored = rig.ports.register.get(device_id)
    assert stored is not None and stored.status == "revoked"
    assert stored.last_seen_at is not None
    assert after.get_json()["error"] == "device_revoked"
    assert [e.type for e in rig.pending()] == []
    assert {"device.registered", "device.enrolled", "device.approved"} <= set(
        rig.bus.types()
    )


def test_on_sql_codes_are_single_use_and_expire(tmp_path):
    rig = a_rig(sql=tmp_path)
    device = handlers.register(
        rig.ports, school="north", owner="u-teacher", kind="trust", name="", by="u-it"
    )
    used, _ = handlers.enrolment_code(rig.ports, device.device_id, "u-it")
    stale, _ = handlers.enrolment_code(rig.ports, device.device_id, "u-it")
    handlers.enrol(rig.ports, used, via="api")

    with pytest.raises(domain.EnrolmentError) as again:
        handlers.enrol(rig.ports, used, via="api")
    rig.clock.at += timedelta(minutes=16)
    with pytest.raises(domain.EnrolmentError) as expired:
        handlers.enrol(rig.ports, stale, via="api")

    assert again.value.code == "enrolment_code_used"
    assert expired.value.code == "enrolment_code_expired"


def test_on_sql_obligations_open_go_overdue_once_and_close(tmp_path):
    rig = a_rig(sql=tmp_path)
    [receipt] = rig.upload(a_form((a_jpeg(), "a.jpg"))).get_json()["receipts"]
    rig.clock.at += timedelta(minutes=16)

    blocked = rig.upload(a_form((a_png(), "b.png")))
    swept = (handlers.sweep_overdue(rig.ports), handlers.sweep_overdue(rig.ports))
    closed = rig.client().post(
        f"/api/receipts/{receipt['receipt_id']}/deletion",
        json={"method": "uploader-unlink"},
        headers=bearer(an_identity(("north", "teacher"))),
    )
    held = rig.ports.ledger.held("u-teacher", {receipt["sha256"]})

    assert blocked.get_json()["error"] == "deletion_overdue"
    assert swept == (1, 0)
    assert closed.status_code == 200
    assert rig.ports.obligations.find(owner="u-teacher") == []
    assert [h.receipt_id for h in held] == [receipt["receipt_id"]]
    assert rig.upload(a_form((a_png(), "b.png"))).status_code == 201
