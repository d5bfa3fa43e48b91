import pytest

from services.redaction.app import create_app
from shared.auth import Identity, issue_token
from shared.config import Settings
from tests.unit.redaction.fakes import FakeDetector, a_post, decided, fake_ports

SECRET = "test-secret"


@pytest.fixture()
def ports():
    return fake_ports(FakeDetector((40, 40, 100, 100)))


@pytest.fixture()
def client(ports, tmp_path):
    settings = Settings.from_env(
        "redaction", {"SAFEPOST_SECRET_KEY": SECRET, "SAFEPOST_DATA_DIR": str(tmp_path)}
    )
    return create_app(ports, settings).test_client()


def bearer(*roles: tuple[str, str]) -> dict[str, str]:
    identity = Identity("u1", "sam", "Sam", frozenset(roles))
    return {"Authorization": f"Bearer {issue_token(SECRET, identity, kind='api')}"}


def a_redacted_photo(ports) -> None:
    from services.redaction.bootstrap import handler_map
    from shared import contracts

    handlers = handler_map(ports)
    handlers[contracts.PostSubmitted](a_post(ports))
    handlers[contracts.FacesDecided](decided("post-1-photo-0"))


def test_an_approver_of_the_school_sees_the_photo_status(client, ports):
    a_redacted_photo(ports)

    response = client.get(
        "/api/photos/post-1-photo-0", headers=bearer(("hill", "approver"))
    )

    assert response.status_code == 200
    assert response.json["status"] == "redacted"
    assert (response.json["faces"], response.json["masked"]) == (1, 1)


def test_staff_of_another_school_are_refused(client, ports):
    a_redacted_photo(ports)

    response = client.get(
        "/api/photos/post-1-photo-0", headers=bearer(("dale", "approver"))
    )

    assert response.status_code == 403


def test_an_auditor_is_refused(client, ports):
    a_redacted_photo(ports)

    response = client.get(
        "/api/photos/post-1-photo-0", headers=bearer(("hill", "it_auditor"))
    )

    assert response.status_code == 403


def test_without_credentials_the_status_is_not_shown(client, ports):
    a_redacted_photo(ports)

    response = client.get("/api/photos/post-1-photo-0")

    assert response.status_code == 401


def test_an_unknown_photo_is_a_404(client):
    response = client.get("/api/photos/nope", headers=bearer(("*", "admin")))

    assert response.status_code == 404
    assert response.json["error"] == "not_found"
