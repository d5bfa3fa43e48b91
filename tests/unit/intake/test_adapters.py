"""Intake's SQL ledger on SQLite, and its migration matching its tables."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from services.intake import adapters, devices, domain
from services.intake.bootstrap import MIGRATIONS
from services.intake.ports import NewPost, StoredPhoto
from shared import contracts, db
from tests.unit.intake.builders import (
    a_form,
    a_jpeg,
    a_png,
    a_rig,
    an_identity,
    bearer,
)


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


def an_obligation(post_id="p1"):
    opened = datetime(2030, 1, 2, 9, tzinfo=UTC)
    return domain.Obligation(
        receipt_id=f"{post_id}-r",
        post_id=post_id,
        school_id="north",
        device_id="d1",
        owner="u1",
        sha256="a" * 64,
        filename="a.jpg",
        opened_at=opened,
        due_at=opened + timedelta(minutes=15),
    )


def rows_of_post(engine, post_id="p1"):
    """Every row anything in ``record`` wrote for the post, table by table."""
    tables = {
        "posts": adapters.posts.c.post_id,
        "photos": adapters.photos.c.post_id,
        "obligations": adapters.obligation_table.c.post_id,
    }
    with engine.connect() as conn:
        found = {
            name: conn.execute(
                sa.select(sa.func.count()).where(column == post_id)
            ).scalar_one()
            for name, column in tables.items()
        }
        found["outbox"] = conn.execute(
            sa.select(sa.func.count()).select_from(adapters.outbox)
        ).scalar_one()
    return found


def test_a_post_that_cannot_be_recorded_leaves_no_outbox_row(tmp_path):
    """The last write of ``record`` fails, after the post, its photos and its outbox
    rows were written: none of them remains, and the same post records later."""
    engine, ledger = a_ledger(tmp_path)
    with engine.begin() as conn:  # the obligations table refuses every row
        conn.exec_driver_sql(
            "CREATE TRIGGER obligations_down BEFORE INSERT ON obligations "
            "BEGIN SELECT RAISE(ABORT, 'obligations are down'); END"
        )
    post, envelope, receipt = a_new_post(), an_envelope(), an_envelope()

    with pytest.raises(IntegrityError, match="obligations are down"):
        ledger.record(post, envelope, events=[receipt], obligations=[an_obligation()])

    assert rows_of_post(engine) == {
        "posts": 0,
        "photos": 0,
        "obligations": 0,
        "outbox": 0,
    }
    assert ledger.pending() == []
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER obligations_down")
    ledger.record(post, envelope, events=[receipt], obligations=[an_obligation()])
    assert sorted(ledger.pending(), key=lambda e: e.id) == sorted(
        [envelope, receipt], key=lambda e: e.id
    )  # same time: any order
    assert rows_of_post(engine) == {
        "posts": 1,
        "photos": 1,
        "obligations": 1,
        "outbox": 2,
    }


def test_recording_a_post_id_twice_fails_and_adds_no_outbox_row(tmp_path):
    _, ledger = a_ledger(tmp_path)
    ledger.record(a_new_post(), an_envelope())
    ledger.mark_sent([e.id for e in ledger.pending()])

    with pytest.raises(IntegrityError):
        ledger.record(a_new_post(), an_envelope())  # same post id: the insert fails

    assert ledger.pending() == []


# The device register on SQLite, driven through the API like the fakes are.


def test_on_sql_a_device_is_registered_enrolled_approved_used_and_revoked(tmp_path):
    rig = a_rig(sql=tmp_path)
    device_id, token = rig.device(status="pending")
    refused = rig.upload(a_form((a_jpeg(), "a.jpg")), token=token)
    devices.approve(rig.ports, device_id, "u-coo")

    accepted = rig.upload(a_form((a_jpeg(), "a.jpg")), token=token)
    devices.revoke(rig.ports, device_id, "u-it", "lost")
    after = rig.upload(a_form((a_png(), "b.png")), token=token)

    assert refused.get_json()["error"] == "device_pending"
    assert accepted.status_code == 201
    assert after.status_code == 403
    stored = rig.ports.register.get(device_id)
    assert stored is not None and stored.status == "revoked"
    assert stored.last_seen_at is not None
    assert after.get_json()["error"] == "device_revoked"
    assert [e.type for e in rig.ledger.pending()] == []
    assert {"device.registered", "device.enrolled", "device.approved"} <= set(
        rig.bus.types()
    )


def test_on_sql_codes_are_single_use_and_expire(tmp_path):
    rig = a_rig(sql=tmp_path)
    device = devices.register(
        rig.ports, school="north", owner="u-teacher", kind="trust", name="", by="u-it"
    )
    used, _ = devices.enrolment_code(rig.ports, device.device_id, "u-it")
    stale, _ = devices.enrolment_code(rig.ports, device.device_id, "u-it")
    devices.enrol(rig.ports, used, via="api")

    with pytest.raises(domain.EnrolmentError) as again:
        devices.enrol(rig.ports, used, via="api")
    rig.clock.at += timedelta(minutes=16)
    with pytest.raises(domain.EnrolmentError) as expired:
        devices.enrol(rig.ports, stale, via="api")

    assert again.value.code == "enrolment_code_used"
    assert expired.value.code == "enrolment_code_expired"


def test_on_sql_obligations_open_go_overdue_once_and_close(tmp_path):
    rig = a_rig(sql=tmp_path)
    [receipt] = rig.upload(a_form((a_jpeg(), "a.jpg"))).get_json()["receipts"]
    rig.clock.at += timedelta(minutes=16)

    blocked = rig.upload(a_form((a_png(), "b.png")))
    swept = (devices.sweep_overdue(rig.ports), devices.sweep_overdue(rig.ports))
    closed = rig.client().post(
        f"/api/receipts/{receipt['receipt_id']}/deletion",
        json={"method": "uploader-unlink"},
        headers=bearer(an_identity(("north", "teacher"))),
    )
    held = rig.ledger.held("u-teacher", {receipt["sha256"]})

    assert blocked.get_json()["error"] == "deletion_overdue"
    assert swept == (1, 0)
    assert closed.status_code == 200
    assert rig.ports.register.obligations(owner="u-teacher") == []
    assert [h.receipt_id for h in held] == [receipt["receipt_id"]]
    assert rig.upload(a_form((a_png(), "b.png"))).status_code == 201
