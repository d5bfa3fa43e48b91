import csv
import io
import json

import pytest

from services.audit.app import create_app
from services.audit.bootstrap import envelope_handler
from shared.auth import Identity, issue_token
from shared.config import Settings
from tests.unit.audit.builders import (
    faces_decided,
    faces_detected,
    post_submitted,
    unknown_type,
)
from tests.unit.audit.fakes import fake_ports

SECRET = "test-secret-for-audit-api"


def token(*roles):
    identity = Identity("u1", "user", "User", frozenset(roles))
    return {"Authorization": f"Bearer {issue_token(SECRET, identity, kind='api')}"}


TRUST_AUDITOR = token(("*", "it_auditor"))
OAK_AUDITOR = token(("oakfield", "it_auditor"))
RIVER_ADMIN = token(("riverside", "admin"))
OAK_TEACHER = token(("oakfield", "teacher"))


@pytest.fixture()
def ports():
    ports = fake_ports()
    handle = envelope_handler(ports)
    for envelope in (
        post_submitted(actor='=HYPERLINK("http://evil")'),
        faces_detected(),
        faces_decided(pupils=("ada",)),
        post_submitted("post-2", "riverside"),
        unknown_type(),
    ):
        handle(envelope)
    return ports


@pytest.fixture()
def client(ports, tmp_path):
    settings = Settings.from_env(
        "audit", {"SAFEPOST_DATA_DIR": str(tmp_path), "SAFEPOST_SECRET_KEY": SECRET}
    )
    return create_app(ports, settings).test_client()


def seqs(response):
    return [e["seq"] for e in response.json["events"]]


def test_only_auditors_and_admins_see_the_trail(client):
    anonymous = client.get("/api/events")
    teacher = client.get("/api/events", headers=OAK_TEACHER)

    assert (anonymous.status_code, teacher.status_code) == (401, 403)


def test_a_trust_wide_auditor_sees_every_record(client):
    response = client.get("/api/events", headers=TRUST_AUDITOR)

    assert seqs(response) == [1, 2, 3, 4, 5]


def test_a_schools_auditor_sees_only_that_school(client):
    oak = client.get("/api/events", headers=OAK_AUDITOR)
    river = client.get("/api/events", headers=RIVER_ADMIN)

    assert {e["school_id"] for e in oak.json["events"]} == {"oakfield"}
    assert [e["post_id"] for e in river.json["events"]] == ["post-2"]


def test_asking_for_another_school_is_forbidden(client):
    response = client.get("/api/events?school=riverside", headers=OAK_AUDITOR)

    assert response.status_code == 403


def test_filters_and_paging(client):
    by_pupil = client.get("/api/events?pupil=ada", headers=TRUST_AUDITOR)
    page = client.get("/api/events?limit=2&after=1", headers=TRUST_AUDITOR)

    assert [e["type"] for e in by_pupil.json["events"]] == ["faces.decided"]
    assert (seqs(page), page.json["next_after"]) == ([2, 3], 3)


@pytest.mark.parametrize(
    "query", ["since=yesterday", "limit=0", "limit=5000", "after=x", "format=xml"]
)
def test_bad_parameters_are_a_400(client, query):
    response = client.get(f"/api/export?{query}", headers=TRUST_AUDITOR)

    assert response.status_code == 400
    assert response.json["error"] == "invalid_input"


def test_time_filters_accept_iso_8601(client):
    response = client.get(
        "/api/events?since=2000-01-01T00:00:00Z&until=2999-01-01", headers=TRUST_AUDITOR
    )

    assert len(seqs(response)) == 5


def test_the_jsonl_export_has_one_record_per_line(client):
    response = client.get(
        "/api/export?format=jsonl&school=oakfield", headers=OAK_AUDITOR
    )

    lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
    assert [r["seq"] for r in lines] == [1, 2, 3, 5]
    assert "attachment" in response.headers["Content-Disposition"]


def test_the_csv_export_defuses_formulas(client):
    response = client.get("/api/export?format=csv", headers=TRUST_AUDITOR)

    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 5
    assert rows[0]["actor"] == '\'=HYPERLINK("http://evil")'
    assert json.loads(rows[2]["pupil_ids"]) == ["ada"]


def test_verify_reports_an_intact_chain_to_trust_wide_roles_only(client):
    ok = client.get("/api/verify", headers=TRUST_AUDITOR)
    school = client.get("/api/verify", headers=OAK_AUDITOR)

    assert (ok.status_code, ok.json["ok"], ok.json["checked"]) == (200, True, 5)
    assert school.status_code == 403


def test_the_page_shows_the_filtered_records(client):
    page = client.get("/?type=faces.decided", headers=OAK_AUDITOR)

    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "faces.decided" in text
    assert "post.submitted" not in text.split("<tbody>")[1]
