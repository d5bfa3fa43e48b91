"""Consent on real PostgreSQL: the migrated schema, deletion of encodings, import."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from services.consent import adapters, admin
from services.consent.bootstrap import MIGRATIONS, Ports
from services.consent.domain import BiometricConsent
from shared import db

CSV = (
    b"pupil_id,forename,surname,class,social_media_consent,biometric_consent\n"
    b"A1,Ada,Lovelace,5B,yes,yes\nB2,Bob,Brown,5B,no,yes\n"
)


def make_ports(url: str) -> Ports:
    engine = db.make_engine(url)
    db.migrate(engine, MIGRATIONS)
    store = adapters.SqlConsentStore(engine)
    return Ports(
        gallery=adapters.SqlFaceGallery(engine),
        register=store,
        names=store,
        accounts=adapters.SqlTargetAccounts(engine),
        store=store,
        today=lambda: date(2025, 3, 3),
    )


def test_the_migrated_postgres_schema_matches_the_adapters(postgres_url: str) -> None:
    ports = make_ports(postgres_url)

    with ports.store.engine.connect() as conn:
        assert db.schema_diffs(conn, adapters.metadata) == []


def test_on_postgres_withdrawal_deletes_encodings_and_decisions_see_it(
    postgres_url: str,
) -> None:
    ports = make_ports(postgres_url)
    worker_side = make_ports(postgres_url)  # another process's caches
    admin.add_school(ports, "oak", "Oak")
    report = admin.import_csv(ports, "oak", CSV, by="admin")
    ports.store.enrol("oak", "A1", [[0.05] * 128], "admin")
    seen = worker_side.gallery.nearest("oak", {0: [0.05] * 128})[0].pupil_id

    ports.store.record_biometric("oak", BiometricConsent("A1", "withdrawn"), "admin")

    with ports.store.engine.connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count()).select_from(adapters.face_encodings)
        ).scalar_one()
    after = worker_side.gallery.nearest("oak", {0: [0.05] * 128})[0].pupil_id
    assert report.applied and (seen, left, after) == ("A1", 0, None)


def test_on_postgres_a_bad_import_changes_nothing(postgres_url: str) -> None:
    ports = make_ports(postgres_url)
    admin.add_school(ports, "oak", "Oak")

    report = admin.import_csv(ports, "oak", CSV + b"C3,,Clark,5B,yes,yes\n", by="a")

    assert [e.line for e in report.errors] == [4]
    assert ports.store.pupils("oak") == []
