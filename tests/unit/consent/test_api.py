import pytest

from services.consent.app import create_app
from services.consent.domain import School
from shared.auth import Identity, issue_token
from shared.config import Settings
from tests.unit.consent.fakes import fake_ports

SECRET = "test-secret-for-consent-api"


def token(*roles: tuple[str, str]) -> dict[str, str]:
    identity = Identity("u1", "user", "User", frozenset(roles))
    return {"Authorization": f"Bearer {issue_token(SECRET, identity, kind='api')}"}


TRUST_ADMIN = token(("*", "admin"))
OAK_ADMIN = token(("oakfield", "admin"))
OAK_TEACHER = token(("oakfield", "teacher"))
RIVER_ADMIN = token(("riverside", "admin"))
ADA = {"pupil_id": "A123", "forename": "Ada", "surname": "Lovelace", "year_group": "Y4"}


@pytest.fixture()
def ports():
    ports = fake_ports()
    ports.schools.add_school(School("oakfield", "Oakfield Primary"))
    ports.schools.add_school(School("riverside", "Riverside Academy"))
    return ports


@pytest.fixture()
def client(ports, tmp_path):
    settings = Settings.from_env(
        "consent", {"SAFEPOST_DATA_DIR": str(tmp_path), "SAFEPOST_SECRET_KEY": SECRET}
    )
    return create_app(ports, settings).test_client()


def test_anonymous_callers_are_refused(client):
    response = client.get("/api/schools")

    assert response.status_code == 401
    assert response.json["error"] == "unauthenticated"


def test_a_school_user_sees_only_their_school(client):
    response = client.get("/api/schools", headers=OAK_TEACHER)

    assert [s["slug"] for s in response.json["schools"]] == ["oakfield"]


def test_a_trust_wide_admin_sees_every_school(client):
    response = client.get("/api/schools", headers=TRUST_ADMIN)

    assert [s["slug"] for s in response.json["schools"]] == ["oakfield", "riverside"]


def test_only_a_trust_wide_admin_adds_a_school(client):
    body = {"slug": "hillside", "name": "Hillside Infants"}

    refused = client.post("/api/schools", json=body, headers=OAK_ADMIN)
    created = client.post("/api/schools", json=body, headers=TRUST_ADMIN)
    again = client.post("/api/schools", json=body, headers=TRUST_ADMIN)

    assert refused.status_code == 403
    assert created.status_code == 201
    assert again.status_code == 409


@pytest.mark.parametrize("slug", ["A", "x", "has space", "UPPER", "a" * 41, "a_b"])
def test_a_bad_school_slug_is_a_400(client, slug):
    response = client.post(
        "/api/schools", json={"slug": slug, "name": "X"}, headers=TRUST_ADMIN
    )

    assert response.status_code == 400
    assert response.json["error"] == "invalid_input"


def test_a_school_admin_adds_and_lists_pupils(client):
    created = client.post("/api/schools/oakfield/pupils", json=ADA, headers=OAK_ADMIN)
    listed = client.get("/api/schools/oakfield/pupils", headers=OAK_ADMIN)

    assert created.status_code == 201
    assert [p["pupil_id"] for p in listed.json["pupils"]] == ["A123"]


def test_a_duplicate_pupil_is_a_409(client):
    client.post("/api/schools/oakfield/pupils", json=ADA, headers=OAK_ADMIN)

    response = client.post("/api/schools/oakfield/pupils", json=ADA, headers=OAK_ADMIN)

    assert response.status_code == 409
    assert response.json["error"] == "pupil_exists"


def test_another_schools_admin_and_a_teacher_cannot_touch_pupils(client):
    by_other = client.post(
        "/api/schools/oakfield/pupils", json=ADA, headers=RIVER_ADMIN
    )
    read_by_other = client.get("/api/schools/oakfield/pupils", headers=RIVER_ADMIN)
    by_teacher = client.get("/api/schools/oakfield/pupils", headers=OAK_TEACHER)

    assert (
        by_other.status_code,
        read_by_other.status_code,
        by_teacher.status_code,
    ) == (403, 403, 403)


def test_an_invalid_pupil_body_is_a_400(client):
    response = client.post(
        "/api/schools/oakfield/pupils",
        json={"pupil_id": "", "forename": "A"},
        headers=OAK_ADMIN,
    )

    assert response.status_code == 400


def test_pupils_of_an_unknown_school_are_a_404(client):
    response = client.post("/api/schools/nowhere/pupils", json=ADA, headers=TRUST_ADMIN)

    assert response.status_code == 404


def test_consents_of_a_pupil_need_the_schools_admin(client):
    client.post("/api/schools/oakfield/pupils", json=ADA, headers=OAK_ADMIN)

    ok = client.get("/api/schools/oakfield/pupils/A123/consents", headers=OAK_ADMIN)
    other = client.get(
        "/api/schools/oakfield/pupils/A123/consents", headers=RIVER_ADMIN
    )
    missing = client.get(
        "/api/schools/oakfield/pupils/NOPE/consents", headers=OAK_ADMIN
    )

    assert (ok.status_code, ok.json) == (200, {"consents": []})
    assert other.status_code == 403
    assert missing.status_code == 404


def test_the_page_lists_the_admins_pupils(client):
    client.post("/api/schools/oakfield/pupils", json=ADA, headers=OAK_ADMIN)

    page = client.get("/", headers=OAK_ADMIN)

    assert page.status_code == 200
    assert "Lovelace" in page.get_data(as_text=True)
    assert "Riverside" not in page.get_data(as_text=True)
