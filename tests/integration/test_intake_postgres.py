"""Intake's unit of work on PostgreSQL: a use case's writes and messages commit
together or not at all, a repeated post adds no outbox row, a lost race changes
nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from functools import partial

import pytest
import sqlalchemy as sa

from services.intake import adapters, domain, handlers
from services.intake.bootstrap import MIGRATIONS, SERVICE, Ports
from services.intake.ports import NewPost, StoredPhoto
from shared import db
from shared.testing import InMemoryBlobStore
from tests.support.bus import InMemoryBus

pytestmark = pytest.mark.postgres


def a_unit(engine, publisher, cls=adapters.IntakeUnit):
    return cls(engine, adapters.outbox, producer=SERVICE, publisher=publisher)


def ports_on(engine, bus) -> Ports:
    return Ports(
        unit=partial(a_unit, engine, bus),
        ledger=adapters.SqlPostLedger(engine),
        register=adapters.SqlDeviceRegister(engine),
        obligations=adapters.SqlObligations(engine),
        originals=InMemoryBlobStore(),
        publisher=bus,
    )


@pytest.fixture()
def engine(postgres_url):
    engine = db.make_engine(postgres_url)
    db.migrate(engine, MIGRATIONS)
    yield engine
    engine.dispose()


def a_post(post_id="p1") -> NewPost:
    photo = domain.Photo("a.jpg", "a" * 64, 10, domain.JPEG)
    stored = StoredPhoto(f"{post_id}-ph", f"{post_id}-r", photo.key(post_id), photo)
    draft = domain.Draft(
        "north", "u1", "", "social_media", ("newsroom",), date(2030, 1, 2)
    )
    return NewPost(post_id, draft, (stored,))


def test_on_postgresql_a_post_that_cannot_be_recorded_leaves_no_outbox_row(engine):
    def record() -> str:
        with a_unit(engine, None) as unit:
            unit.posts.add(a_post(), db.utcnow())
            envelope = unit.emit(handlers.submitted(a_post()), actor="u1")
            unit.commit()
        return envelope.id

    first = record()

    with pytest.raises(sa.exc.IntegrityError):  # the same post id again
        record()

    assert [e.id for e in db.outbox_pending(engine, adapters.outbox, 9)] == [first]


def test_on_postgresql_a_use_case_that_fails_half_way_keeps_none_of_its_writes(
    engine,
):
    """Enrolment marks its code used, then the token cannot be stored: the code is
    still unused, nothing was emitted, and the retry enrols."""
    bus = InMemoryBus()
    ports = ports_on(engine, bus)
    device = handlers.register(
        ports, school="north", owner="u-teacher", kind="trust", name="", by="u-it"
    )
    code, _ = handlers.enrolment_code(ports, device.device_id, "u-it")

    class Broken(adapters.IntakeUnit):
        def bind(self, conn):
            super().bind(conn)

            def set_token(*args):
                raise sa.exc.OperationalError("UPDATE devices", {}, OSError("gone"))

            self.devices.set_token = set_token  # type: ignore[method-assign]

    sent = list(bus.published)

    with pytest.raises(sa.exc.OperationalError):
        handlers.enrol(
            replace(ports, unit=partial(a_unit, engine, bus, Broken)), code, "api"
        )

    assert bus.published == sent
    assert db.outbox_pending(engine, adapters.outbox, 9) == []
    stored = ports.register.code(domain.hash_secret(domain.normalise_code(code)))
    assert stored is not None and stored.used_at is None
    _, token = handlers.enrol(ports, code, via="api")
    enrolled = ports.register.by_token(domain.hash_secret(token))
    assert enrolled is not None and enrolled.device_id == device.device_id
    assert bus.types()[-1] == "device.enrolled"


def test_on_postgresql_an_approval_that_lost_a_race_changes_and_emits_nothing(
    engine,
):
    bus = InMemoryBus()
    ports = ports_on(engine, bus)
    device = handlers.register(
        ports, school="north", owner="u-teacher", kind="trust", name="", by="u-it"
    )
    slow = a_unit(engine, bus)

    with slow:  # read the pending device, then someone else approves it first
        seen = slow.devices.get(device.device_id)
        assert seen is not None and seen.status == domain.PENDING
        handlers.approve(ports, device.device_id, "u-coo")
        late = domain.transition(seen, domain.REVOKED, "u-it", db.utcnow())
        stored = slow.devices.set_status(late, was=seen.status)

    assert stored is False
    now = ports.register.get(device.device_id)
    assert now is not None and (now.status, now.approved_by) == ("approved", "u-coo")
    assert bus.types() == ["device.registered", "device.approved"]
