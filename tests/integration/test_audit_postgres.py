"""The audit trail on PostgreSQL: one chain under concurrent appends; append-only."""

import threading
from functools import partial

import pytest
import sqlalchemy as sa

from services.audit import adapters, admin
from services.audit.bootstrap import MIGRATIONS, Ports, envelope_handler
from services.audit.domain import Query
from shared import contracts, db

pytestmark = pytest.mark.postgres


@pytest.fixture()
def engine(postgres_url):
    engine = db.make_engine(postgres_url)
    db.migrate(engine, MIGRATIONS)
    yield engine
    engine.dispose()


@pytest.fixture()
def ports(engine):
    return Ports(
        log=adapters.SqlAuditTrail(engine), unit=partial(adapters.AuditUnit, engine)
    )


def a_message(post_id: str) -> contracts.Envelope:
    return contracts.seal(
        contracts.PostSubmitted(
            post_id=post_id,
            school_id="oakfield",
            author_id="teacher-1",
            accounts=["newsroom"],
            photos=[
                contracts.PhotoRef(
                    photo_id=f"{post_id}-ph",
                    original_key="originals/k",
                    sha256="b" * 64,
                    bytes=1,
                )
            ],
        ),
        producer="intake",
    )


def test_the_migrated_schema_matches_the_adapters_tables(engine):
    with engine.connect() as conn:
        assert db.schema_diffs(conn, adapters.metadata) == []


def test_concurrent_appends_from_two_threads_keep_one_valid_chain(ports):
    handle = envelope_handler(ports)
    batches = [[a_message(f"post-{t}-{i}") for i in range(40)] for t in range(2)]
    duplicate = batches[0][0]

    def work(batch):
        for envelope in [*batch, duplicate]:
            handle(envelope)

    threads = [threading.Thread(target=work, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    result = admin.verify_chain(ports)
    assert (result.ok, result.checked) == (True, 80)
    assert len(ports.log.search(Query(post="post-0-0"))) == 1


def test_the_triggers_refuse_update_delete_and_truncate(ports, engine):
    envelope_handler(ports)(a_message("post-1"))

    for statement in (
        "UPDATE audit_records SET actor = 'x'",
        "DELETE FROM audit_records",
        "TRUNCATE audit_records",
    ):
        with (
            pytest.raises(sa.exc.DatabaseError, match="append-only"),
            engine.begin() as conn,
        ):
            conn.execute(sa.text(statement))

    assert admin.verify_chain(ports).checked == 1


def test_an_altered_record_is_detected_on_postgresql(ports, engine):
    handle = envelope_handler(ports)
    for i in range(3):
        handle(a_message(f"post-{i}"))

    with engine.begin() as conn:  # as the table's owner could: triggers off, then edit
        conn.execute(sa.text("ALTER TABLE audit_records DISABLE TRIGGER USER"))
        conn.execute(
            sa.text("UPDATE audit_records SET post_id = 'post-x' WHERE seq = 2")
        )
        conn.execute(sa.text("ALTER TABLE audit_records ENABLE TRIGGER USER"))

    result = admin.verify_chain(ports)
    assert (result.ok, result.first_bad_seq) == (False, 2)


def test_pupil_filter_works_on_postgresql(ports):
    envelope_handler(ports)(
        contracts.seal(
            contracts.FacesDecided(
                photo_id="ph",
                post_id="p",
                school_id="oakfield",
                decisions=[
                    contracts.FaceDecision(
                        index=0, show=True, pupil_id="A%1", reason="consented"
                    )
                ],
            ),
            producer="consent",
        )
    )

    assert len(ports.log.search(Query(pupil="A%1"))) == 1
    assert ports.log.search(Query(pupil="A")) == []
