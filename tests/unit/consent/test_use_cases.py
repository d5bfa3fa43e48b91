"""Consent's use cases on the real SQL unit of work (SQLite)."""

from dataclasses import replace
from functools import partial

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from services.consent import adapters, admin, use_cases
from services.consent.bootstrap import SERVICE
from tests.unit.consent.fakes import announced, engine_of, pending, relay, sql_ports

FIRST = (
    "pupil_id,forename,surname,class,social_media_consent,biometric_consent\n"
    "A1,Ada,Lovelace,5B,yes,yes\n"
)
# Ada leaves (her encodings go), Bob arrives with a yes.
SECOND = (
    "pupil_id,forename,surname,class,social_media_consent,biometric_consent,"
    "leaving date\n"
    "A1,Ada,Lovelace,5B,withdrawn,yes,01/03/2025\n"
    "B2,Bob,Brown,5B,yes,no,\n"
)


def counts(ports):
    with engine_of(ports).connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (
                adapters.pupils,
                adapters.consent_records,
                adapters.biometric_consents,
                adapters.face_encodings,
                adapters.outbox,
            )
        }


def test_a_use_case_that_fails_half_way_keeps_none_of_its_writes(tmp_path):
    """An import adds pupils, consent versions and biometric consent, then deletes a
    leaver's encodings: if that deletion fails (the database went away), nothing of
    the import is kept, nothing is emitted, and the file can simply be sent again."""
    ports = sql_ports(tmp_path)
    admin.add_school(ports, "oakfield", "Oakfield Primary")
    admin.import_csv(ports, "oakfield", FIRST.encode(), by="admin")
    use_cases.enrol(ports.relayed_unit(), "oakfield", "A1", [[0.1] * 128], "admin")
    relay(ports)
    before, sent = counts(ports), list(ports.publisher.published)

    class Failing(adapters.ConsentUnit):
        def bind(self, conn):
            super().bind(conn)

            def forget(school_id, pupil_id):
                raise OperationalError("DELETE", {}, Exception("connection lost"))

            self.enrolments.forget = forget  # type: ignore[method-assign]

    failing = partial(
        Failing,
        engine_of(ports),
        adapters.outbox,
        producer=SERVICE,
        publisher=ports.publisher,
    )
    with pytest.raises(OperationalError):
        admin.import_csv(
            replace(ports, relayed_unit=failing),
            "oakfield",
            SECOND.encode(),
            by="admin",
        )

    assert counts(ports) == before
    assert pending(ports) == []
    assert relay(ports) == 0
    assert ports.publisher.published == sent
    assert [p.pupil_id for p in ports.views.pupils("oakfield")] == ["A1"]

    report = admin.import_csv(ports, "oakfield", SECOND.encode(), by="admin")

    assert (report.applied, report.pupils_added, report.encodings_deleted) == (
        True,
        1,
        1,
    )
    assert {(e.pupil_id, e.cause) for e in announced(ports)[1:]} == {
        ("A1", "restricted"),
        ("B2", "recorded"),
    }
