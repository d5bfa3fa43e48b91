"""Consent on real PostgreSQL: the migrated schema, deletion of encodings, import."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from services.consent import adapters, admin, bootstrap, use_cases
from services.consent.bootstrap import MIGRATIONS, Ports
from services.consent.domain import BiometricConsent
from shared import db
from tests.support.bus import InMemoryBus

CSV = (
    b"pupil_id,forename,surname,class,social_media_consent,biometric_consent\n"
    b"A1,Ada,Lovelace,5B,yes,yes\nB2,Bob,Brown,5B,no,yes\n"
)


def make_ports(url: str) -> Ports:
    engine = db.make_engine(url)
    db.migrate(engine, MIGRATIONS)
    return bootstrap.sql_ports(engine, InMemoryBus(), today=lambda: date(2025, 3, 3))


def engine_of(ports: Ports) -> sa.Engine:
    views = ports.views
    assert isinstance(views, adapters.SqlConsentViews)
    return views.engine


def test_the_migrated_postgres_schema_matches_the_adapters(postgres_url: str) -> None:
    ports = make_ports(postgres_url)

    with engine_of(ports).connect() as conn:
        assert db.schema_diffs(conn, adapters.metadata) == []


def test_on_postgres_withdrawal_deletes_encodings_and_decisions_see_it(
    postgres_url: str,
) -> None:
    ports = make_ports(postgres_url)
    worker_side = make_ports(postgres_url)  # another process's caches
    admin.add_school(ports, "oak", "Oak")
    report = admin.import_csv(ports, "oak", CSV, by="admin")
    use_cases.enrol(ports.relayed_unit(), "oak", "A1", [[0.05] * 128], "admin")
    seen = worker_side.gallery.nearest("oak", {0: [0.05] * 128})[0].pupil_id

    use_cases.record_biometric(
        ports.relayed_unit(), "oak", BiometricConsent("A1", "withdrawn"), "admin"
    )

    with engine_of(ports).connect() as conn:
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
    assert ports.views.pupils("oak") == []


def test_on_postgres_an_import_that_fails_half_way_keeps_nothing(
    postgres_url: str,
) -> None:
    from dataclasses import replace
    from functools import partial

    import pytest
    from sqlalchemy.exc import OperationalError

    ports = make_ports(postgres_url)
    assert admin.add_school(ports, "oak", "Oak") is True
    assert admin.add_school(ports, "oak", "Oak again") is False  # on conflict: kept

    class Failing(adapters.ConsentUnit):
        def bind(self, conn: sa.Connection) -> None:
            super().bind(conn)

            def refuse(*_args: object) -> None:
                raise OperationalError("INSERT", {}, Exception("connection lost"))

            self.biometrics.add_many = refuse  # type: ignore[method-assign]

    failing = partial(
        Failing,
        engine_of(ports),
        adapters.outbox,
        producer=bootstrap.SERVICE,
        publisher=ports.publisher,
    )
    with pytest.raises(OperationalError):
        admin.import_csv(replace(ports, relayed_unit=failing), "oak", CSV, by="admin")

    with engine_of(ports).connect() as conn:
        left = {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (adapters.pupils, adapters.consent_records, adapters.outbox)
        }
    assert left == {"pupils": 0, "consent_records": 0, "outbox": 0}
    assert admin.import_csv(ports, "oak", CSV, by="admin").applied


def test_on_postgres_the_newest_word_on_an_account_wins(postgres_url: str) -> None:
    from shared import contracts

    ports = make_ports(postgres_url)
    handle = bootstrap.handler_map(ports)[contracts.AccountChanged]
    for purpose in ("social_media", "website"):
        handle(
            contracts.AccountChanged(
                account_id="a1",
                school_id="oak",
                platform="webhook",
                purpose=purpose,
                status="active",
            )
        )

    assert ports.accounts.scopes("oak", ["a1"]) == {"a1": ("website", None)}
