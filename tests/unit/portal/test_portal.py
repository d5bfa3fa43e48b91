"""Sign-in, API tokens and staff accounts (the identity-provider stand-in)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from safepost import portal
from safepost.identity.store import RoleGrant, UserStore, users
from shared import auth
from shared.config import Settings

PASSWORD = "correct horse battery"


@pytest.fixture()
def store(tmp_path: Path) -> UserStore:
    s = UserStore.open(f"sqlite:///{tmp_path / 'identity.sqlite3'}")
    s.add(
        "teacher.oakfield", "Ms Teacher", PASSWORD, [RoleGrant("oakfield", "teacher")]
    )
    return s


@pytest.fixture()
def client(store: UserStore, tmp_path: Path) -> FlaskClient:
    settings = Settings.from_env("identity", {"SAFEPOST_DATA_DIR": str(tmp_path)})
    app = portal.create_app(
        portal.Ports(users=store, throttle=portal.Throttle()), settings
    )
    return app.test_client()


def login_csrf(client: FlaskClient) -> str:
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'name="login_csrf" value="([^"]+)"', page).group(1)


def test_passwords_are_stored_as_argon2_hashes_never_in_clear(store: UserStore) -> None:
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(users.c.password_hash)).scalar_one()

    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_signing_in_sets_an_httponly_samesite_session_cookie(
    client: FlaskClient,
) -> None:
    token = login_csrf(client)

    response = client.post(
        "/login",
        data={
            "username": "teacher.oakfield",
            "password": PASSWORD,
            "login_csrf": token,
            "next": "/intake/",
        },
    )

    assert response.status_code == 302 and response.headers["Location"] == "/intake/"
    cookie = next(
        h for h in response.headers.getlist("Set-Cookie") if h.startswith(auth.COOKIE)
    )
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_sign_in_without_the_form_token_is_refused(client: FlaskClient) -> None:
    response = client.post(
        "/login", data={"username": "teacher.oakfield", "password": PASSWORD}
    )

    assert response.status_code == 400
    assert auth.COOKIE not in str(response.headers.getlist("Set-Cookie"))


def test_next_never_redirects_off_site(client: FlaskClient) -> None:
    token = login_csrf(client)

    response = client.post(
        "/login",
        data={
            "username": "teacher.oakfield",
            "password": PASSWORD,
            "login_csrf": token,
            "next": "//evil.example/steal",
        },
    )

    assert response.headers["Location"] == "/"


def test_a_wrong_password_gets_a_clear_401_and_no_token(client: FlaskClient) -> None:
    response = client.post(
        "/auth/token",
        json={"username": "teacher.oakfield", "password": "wrong password!"},
    )

    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthenticated"


def test_an_api_token_carries_the_roles_per_school(client: FlaskClient) -> None:
    token = client.post(
        "/auth/token", json={"username": "teacher.oakfield", "password": PASSWORD}
    ).get_json()["token"]

    me = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).get_json()

    assert me["username"] == "teacher.oakfield" and me["roles"] == ["teacher@oakfield"]


def test_repeated_failures_lock_the_username_for_a_while(client: FlaskClient) -> None:
    for _ in range(portal.MAX_FAILURES):
        client.post(
            "/auth/token", json={"username": "teacher.oakfield", "password": "nope"}
        )

    response = client.post(
        "/auth/token", json={"username": "teacher.oakfield", "password": PASSWORD}
    )

    assert response.status_code == 429


def test_a_deactivated_account_cannot_sign_in(
    store: UserStore, client: FlaskClient
) -> None:
    store.deactivate("teacher.oakfield")

    response = client.post(
        "/auth/token", json={"username": "teacher.oakfield", "password": PASSWORD}
    )

    assert response.status_code == 401


def test_short_passwords_and_unknown_roles_are_refused(store: UserStore) -> None:
    from shared.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        store.add("someone", "Someone", "short", [])
    with pytest.raises(InvalidInputError):
        RoleGrant.parse("headmaster@oakfield")
