import io

import pytest
import sqlalchemy as sa

from services.consent import adapters, use_cases
from services.consent.app import create_app
from services.consent.domain import Pupil, School
from shared.auth import Identity, issue_token
from shared.config import Settings
from tests.unit.consent.fakes import engine_of, sql_ports

SECRET = "test-secret-for-consent-api"


def token(*roles: tuple[str, str]) -> dict[str, str]:
    identity = Identity("u1", "user", "User", frozenset(roles))
    return {"Authorization": f"Bearer {issue_token(SECRET, identity, kind='api')}"}


TRUST_ADMIN = token(("*", "admin"))
OAK_ADMIN = token(("oakfield", "admin"))
OAK_TEACHER = token(("oakfield", "teacher"))
OAK_APPROVER = token(("oakfield", "approver"))
RIVER_ADMIN = token(("riverside", "admin"))
ADA = {"pupil_id": "A123", "forename": "Ada", "surname": "Lovelace", "year_group": "Y4"}
PUPIL = "/api/schools/oakfield/pupils/A123"


@pytest.fixture()
def ports(tmp_path):
    ports = sql_ports(tmp_path)
    use_cases.add_school(ports.relayed_unit(), School("oakfield", "Oakfield Primary"))
    use_cases.add_school(ports.relayed_unit(), School("riverside", "Riverside Academy"))
    return ports


@pytest.fixture()
def client(ports, tmp_path):
    settings = Settings.from_env(
        "consent", {"SAFEPOST_DATA_DIR": str(tmp_path), "SAFEPOST_SECRET_KEY": SECRET}
    )
    return create_app(ports, settings).test_client()


@pytest.fixture()
def ada(client):
    client.post("/api/schools/oakfield/pupils", json=ADA, headers=OAK_ADMIN)
    client.post(PUPIL + "/biometric", json={"status": "granted"}, headers=OAK_ADMIN)


def test_anonymous_callers_are_refused(client):
    response = client.get("/api/schools")

    assert response.status_code == 401
    assert response.json["error"] == "unauthenticated"


def test_a_school_user_sees_only_their_school(client):
    response = client.get("/api/schools", headers=OAK_TEACHER)

    assert [s["slug"] for s in response.json["schools"]] == ["oakfield"]


def test_only_a_trust_wide_admin_adds_a_school(client):
    body = {"slug": "hillside", "name": "Hillside Infants"}

    refused = client.post("/api/schools", json=body, headers=OAK_ADMIN)
    created = client.post("/api/schools", json=body, headers=TRUST_ADMIN)
    again = client.post("/api/schools", json=body, headers=TRUST_ADMIN)

    assert (refused.status_code, created.status_code, again.status_code) == (
        403,
        201,
        409,
    )


# Every route of a school's pupils: (method, path, body).
SCHOOL_ROUTES = [
    ("GET", "/api/schools/oakfield/pupils", None),
    ("POST", "/api/schools/oakfield/pupils", ADA),
    ("GET", PUPIL, None),
    ("PATCH", PUPIL, {"class_name": "4B"}),
    ("GET", PUPIL + "/consents", None),
    ("POST", PUPIL + "/consents", {"purpose": "social_media", "status": "granted"}),
    ("POST", PUPIL + "/biometric", {"status": "granted"}),
    ("POST", PUPIL + "/enrolment", None),
    ("DELETE", PUPIL + "/enrolment", None),
    ("PUT", PUPIL + "/never-publish", {"active": True, "category": "adopted"}),
    ("GET", "/api/schools/oakfield/grid", None),
    ("POST", "/api/schools/oakfield/import", None),
    ("GET", "/api/schools/oakfield/export.csv", None),
    ("GET", "/schools/oakfield/pupils", None),
    ("GET", "/schools/oakfield/grid", None),
    ("GET", "/schools/oakfield/pupils/A123", None),
]


# Routes a school's approvers may read too (what they need to see who is shown).
APPROVER_ROUTES = [("GET", "/api/schools/oakfield/labels?ids=A123", None)]


@pytest.mark.parametrize(("method", "path", "body"), SCHOOL_ROUTES)
@pytest.mark.parametrize(
    "who",
    [OAK_TEACHER, OAK_APPROVER, RIVER_ADMIN],
    ids=["teacher", "approver", "other"],
)
def test_only_the_schools_admins_reach_its_pupils(client, ada, method, path, body, who):
    response = client.open(path, method=method, json=body, headers=who)

    assert response.status_code == 403
    assert "Lovelace" not in response.get_data(as_text=True)


def test_every_consent_route_is_covered_by_the_role_table(client):
    rules = {
        r.rule for r in client.application.url_map.iter_rules() if "<slug>" in r.rule
    }
    covered = {
        p.split("?")[0].replace("oakfield", "<slug>").replace("A123", "<pupil_id>")
        for _, p, _ in SCHOOL_ROUTES + APPROVER_ROUTES
    }

    assert rules <= covered


def test_a_school_admin_adds_searches_and_reads_pupils(client, ada):
    found = client.get("/api/schools/oakfield/pupils?q=love", headers=OAK_ADMIN)
    none = client.get("/api/schools/oakfield/pupils?q=zzz", headers=OAK_ADMIN)
    detail = client.get(PUPIL, headers=OAK_ADMIN)

    assert [p["pupil_id"] for p in found.json["pupils"]] == ["A123"]
    assert none.json["pupils"] == []
    assert detail.json["biometric"]["status"] == "granted"


def test_a_duplicate_pupil_is_a_409(client, ada):
    response = client.post("/api/schools/oakfield/pupils", json=ADA, headers=OAK_ADMIN)

    assert (response.status_code, response.json["error"]) == (409, "pupil_exists")


def test_unknown_school_or_pupil_is_a_404_for_a_trust_admin(client):
    assert (
        client.get("/api/schools/nowhere/pupils", headers=TRUST_ADMIN).status_code
        == 404
    )
    assert client.get(PUPIL, headers=TRUST_ADMIN).status_code == 404


def test_recording_consent_adds_a_version_with_who_and_a_default_expiry(client, ada):
    first = client.post(
        PUPIL + "/consents",
        json={
            "purpose": "social_media",
            "status": "granted",
            "given_by": "Mum",
            "relationship": "mother",
            "method": "paper",
            "evidence_ref": "F-1",
        },
        headers=OAK_ADMIN,
    )
    second = client.post(
        PUPIL + "/consents",
        json={"purpose": "social_media", "status": "withdrawn"},
        headers=OAK_ADMIN,
    )
    history = client.get(PUPIL + "/consents", headers=OAK_ADMIN).json["consents"]

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json["expires_on"] == "2025-08-31"
    assert [(c["status"], c["version"], c["recorded_by"]) for c in history] == [
        ("granted", 1, "user"),
        ("withdrawn", 2, "user"),
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"purpose": "social_media", "status": "maybe"},
        {"purpose": "Social Media", "status": "granted"},
        {"purpose": "social_media", "status": "granted", "extra": 1},
        {"purpose": "social_media", "platform": "../x", "status": "granted"},
    ],
)
def test_a_bad_consent_body_is_a_400(client, ada, body):
    response = client.post(PUPIL + "/consents", json=body, headers=OAK_ADMIN)

    assert (response.status_code, response.json["error"]) == (400, "invalid_input")


def test_enrolment_keeps_encodings_only_and_withdrawal_deletes_them(client, ports, ada):
    enrolled = client.post(
        PUPIL + "/enrolment",
        data={
            "photo": [
                (io.BytesIO(b"face:0.01"), "a.jpg"),
                (io.BytesIO(b"face:0.02"), "b.jpg"),
            ]
        },
        headers=OAK_ADMIN,
    )
    withdrawn = client.post(
        PUPIL + "/biometric", json={"status": "withdrawn"}, headers=OAK_ADMIN
    )

    with engine_of(ports).connect() as conn:
        left = conn.execute(
            sa.select(sa.func.count()).select_from(adapters.face_encodings)
        ).scalar_one()
    assert (enrolled.status_code, enrolled.json) == (201, {"enrolled": 2})
    assert withdrawn.json["encodings_deleted"] == 2
    assert left == 0


@pytest.mark.parametrize(
    ("photo", "message"), [(b"none", "no face"), (b"two", "2 faces")]
)
def test_a_reference_photo_without_exactly_one_face_is_refused(
    client, ada, photo, message
):
    response = client.post(
        PUPIL + "/enrolment",
        data={"photo": (io.BytesIO(photo), "r.jpg")},
        headers=OAK_ADMIN,
    )

    assert (response.status_code, response.json["error"]) == (
        400,
        "bad_reference_photo",
    )
    assert message in response.json["message"]


def test_a_pupil_without_biometric_consent_cannot_be_enrolled(client, ports):
    use_cases.add_pupil(ports.relayed_unit(), Pupil("oakfield", "B1", "Bob", "Brown"))

    response = client.post(
        "/api/schools/oakfield/pupils/B1/enrolment",
        data={"photo": (io.BytesIO(b"face:0.1"), "r.jpg")},
        headers=OAK_ADMIN,
    )

    assert (response.status_code, response.json["error"]) == (409, "not_enrollable")


def test_leaving_the_school_deletes_encodings(client, ports, ada):
    client.post(
        PUPIL + "/enrolment",
        data={"photo": (io.BytesIO(b"face:0.01"), "a.jpg")},
        headers=OAK_ADMIN,
    )

    response = client.patch(PUPIL, json={"on_roll": False}, headers=OAK_ADMIN)

    assert response.json["encodings_deleted"] == 1
    assert response.json["pupil"]["left_on"] == "2025-03-03"
    assert ports.views.enrolled("oakfield", "A123") == 0


def test_never_publish_needs_a_reason_and_shows_in_the_grid(client, ada):
    client.post(
        PUPIL + "/consents",
        json={"purpose": "social_media", "status": "granted"},
        headers=OAK_ADMIN,
    )
    no_reason = client.put(
        PUPIL + "/never-publish", json={"active": True}, headers=OAK_ADMIN
    )
    before = client.get("/api/schools/oakfield/grid", headers=OAK_ADMIN).json["pupils"][
        0
    ]
    client.put(
        PUPIL + "/never-publish",
        json={"active": True, "category": "looked_after"},
        headers=OAK_ADMIN,
    )
    after = client.get("/api/schools/oakfield/grid", headers=OAK_ADMIN).json["pupils"][
        0
    ]

    assert no_reason.status_code == 400
    assert before["cells"]["*"] == "yes" and before["cells"]["facebook"] == "yes"
    assert after["cells"]["*"] == "no_consent" and after["never_publish"] is True


def test_a_csv_with_bad_rows_is_a_422_with_line_numbers(client):
    response = client.post(
        "/api/schools/oakfield/import",
        data=b"pupil_id,forename,surname\nA1,,Lovelace\n",
        content_type="text/csv",
        headers=OAK_ADMIN,
    )

    assert response.status_code == 422
    assert response.json["errors"][0]["line"] == 2


def test_a_csv_upload_dry_run_then_import(client):
    csv = (
        b"pupil_id,forename,surname,class,social_media_consent\n"
        b"A1,Ada,Lovelace,5B,yes\n"
    )

    dry = client.post(
        "/api/schools/oakfield/import?dry_run=1",
        data={"file": (io.BytesIO(csv), "p.csv")},
        headers=OAK_ADMIN,
    )
    real = client.post(
        "/api/schools/oakfield/import",
        data={"file": (io.BytesIO(csv), "p.csv")},
        headers=OAK_ADMIN,
    )
    exported = client.get("/api/schools/oakfield/export.csv", headers=OAK_ADMIN)

    assert (dry.json["applied"], real.json["applied"]) == (False, True)
    assert "A1,Ada,Lovelace" in exported.get_data(as_text=True)
    assert exported.mimetype == "text/csv"


def test_the_pages_render_for_the_admin_and_escape_names(client, ports):
    use_cases.add_pupil(
        ports.relayed_unit(),
        Pupil(
            "oakfield",
            "X1",
            "<script>alert(1)</script>",
            "=HYPERLINK(1)",
            class_name="5B",
        ),
    )

    pages = [
        client.get("/", headers=OAK_ADMIN),
        client.get("/schools/oakfield/pupils?q=HYPER", headers=OAK_ADMIN),
        client.get("/schools/oakfield/grid?class=5B", headers=OAK_ADMIN),
        client.get("/schools/oakfield/pupils/X1", headers=OAK_ADMIN),
    ]

    assert [p.status_code for p in pages] == [200, 200, 200, 200]
    for page in pages[1:]:
        html = page.get_data(as_text=True)
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;" in html


def test_the_index_hides_other_schools_pupils(client, ada):
    page = client.get("/", headers=OAK_TEACHER).get_data(as_text=True)

    assert "Lovelace" not in page
    assert "Riverside" not in page


def test_an_approver_sees_only_initials_and_class_of_shown_pupils(client, ports):
    use_cases.add_pupil(
        ports.relayed_unit(), Pupil("oakfield", "A123", "Ada", "Lovelace", "Y4", "4L")
    )

    response = client.get(
        "/api/schools/oakfield/labels?ids=A123,NOPE", headers=OAK_APPROVER
    )

    assert response.status_code == 200
    assert response.json == {"labels": {"A123": {"initials": "A.L.", "class": "4L"}}}
    assert "Ada" not in response.get_data(as_text=True)


def test_labels_are_refused_to_teachers_and_to_other_schools(client, ports):
    use_cases.add_pupil(
        ports.relayed_unit(), Pupil("oakfield", "A123", "Ada", "Lovelace", "Y4", "4L")
    )
    river_approver = token(("riverside", "approver"))

    teacher = client.get("/api/schools/oakfield/labels?ids=A123", headers=OAK_TEACHER)
    other = client.get("/api/schools/oakfield/labels?ids=A123", headers=river_approver)

    assert teacher.status_code == 403
    assert other.status_code == 403
