"""Sign-in, API tokens and staff accounts (the identity-provider stand-in)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from safepost import portal
from safepost.identity.store import RoleGrant, UserStore, users
from safepost.identity.throttle import THRESHOLDS, SqlThrottle
from shared import auth, contracts
from shared.config import Settings
from shared.db import SqlOutbox, utcnow
from tests.support.bus import InMemoryBus

PASSWORD = "correct horse battery"


@pytest.fixture()
def store(tmp_path: Path) -> UserStore:
    s = UserStore.open(f"sqlite:///{tmp_path / 'identity.sqlite3'}")
    s.add(
        "teacher.oakfield", "Ms Teacher", PASSWORD, [RoleGrant("oakfield", "teacher")]
    )
    return s


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def wait(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def trail() -> InMemoryBus:
    return InMemoryBus()


def an_app(store: UserStore, tmp_path: Path, clock: Clock, trail: InMemoryBus) -> Any:
    settings = Settings.from_env("identity", {"SAFEPOST_DATA_DIR": str(tmp_path)})
    ports = portal.Ports(
        users=store,
        throttle=SqlThrottle(store.engine, now=clock),
        outbox=SqlOutbox(store.engine, portal._outbox, utcnow),
        publisher=trail,
    )
    return portal.create_app(ports, settings)


@pytest.fixture()
def client(
    store: UserStore, tmp_path: Path, clock: Clock, trail: InMemoryBus
) -> FlaskClient:
    return an_app(store, tmp_path, clock, trail).test_client()


def login_csrf(client: FlaskClient) -> str:
    page = client.get("/login").get_data(as_text=True)
    return re.search(r'name="login_csrf" value="([^"]+)"', page).group(1)


def sign_in(client: FlaskClient, password: str, username: str = "teacher.oakfield"):
    """The sign-in page, as a browser fills it in."""
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "login_csrf": login_csrf(client),
            "next": "/",
        },
    )


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


def token(client: FlaskClient, password: str, username: str = "teacher.oakfield"):
    return client.post("/auth/token", json={"username": username, "password": password})


def test_repeated_failures_make_the_account_wait_longer_each_time(
    client: FlaskClient, clock: Clock
) -> None:
    for _ in range(THRESHOLDS["user"]):
        token(client, "nope")

    first = token(client, PASSWORD)
    clock.wait(int(first.headers["Retry-After"]))
    token(client, "nope again")  # the next failure doubles the wait
    second = token(client, PASSWORD)

    assert first.status_code == second.status_code == 429
    assert first.get_json()["error"] == "too_many_attempts"
    assert int(second.headers["Retry-After"]) == 2 * int(first.headers["Retry-After"])


def test_waiting_out_the_back_off_lets_the_right_password_in(
    client: FlaskClient, clock: Clock
) -> None:
    for _ in range(THRESHOLDS["user"] + 3):
        clock.wait(30)
        token(client, "nope")

    clock.wait(int(token(client, PASSWORD).headers["Retry-After"]))

    assert token(client, PASSWORD).status_code == 200  # never locked out for good


def test_a_strangers_failures_do_not_lock_the_owner_out_of_a_browser_they_used(
    store: UserStore, tmp_path: Path, clock: Clock, trail: InMemoryBus
) -> None:
    app = an_app(store, tmp_path, clock, trail)
    owner, stranger = app.test_client(), app.test_client()
    assert sign_in(owner, PASSWORD).status_code == 302  # this browser is now known
    for _ in range(THRESHOLDS["user"] + 2):
        sign_in(stranger, "guessing")

    assert sign_in(stranger, PASSWORD).status_code == 429
    assert sign_in(owner, PASSWORD).status_code == 302


def test_spraying_usernames_from_one_address_is_throttled(client: FlaskClient) -> None:
    answers = [
        token(client, "Summer2026!", username=f"staff{n}").status_code
        for n in range(THRESHOLDS["addr"] + 1)
    ]

    assert answers[: THRESHOLDS["addr"]] == [401] * THRESHOLDS["addr"]
    assert answers[-1] == 429


def test_every_portal_process_counts_the_same_failures(
    store: UserStore, tmp_path: Path, clock: Clock, trail: InMemoryBus
) -> None:
    one = an_app(store, tmp_path, clock, trail).test_client()
    two = an_app(store, tmp_path, clock, trail).test_client()
    for n in range(THRESHOLDS["user"]):
        token(one if n % 2 else two, "nope")

    assert token(one, PASSWORD).status_code == token(two, PASSWORD).status_code == 429


def test_failed_sign_ins_go_to_the_trail_but_never_a_password_typed_as_a_name(
    client: FlaskClient, trail: InMemoryBus
) -> None:
    token(client, "nope")
    token(client, "x", username="Tr0ub4dor&3 my password")

    failed = trail.messages(contracts.SignInFailed)
    assert [(m.username, m.reason, m.via) for m in failed] == [
        ("teacher.oakfield", "wrong", "api"),
        ("(not a username)", "wrong", "api"),
    ]
    assert all(m.address for m in failed)


def test_a_deactivated_account_cannot_sign_in(
    store: UserStore, client: FlaskClient
) -> None:
    store.deactivate("teacher.oakfield")

    response = client.post(
        "/auth/token", json={"username": "teacher.oakfield", "password": PASSWORD}
    )

    assert response.status_code == 401


def test_short_common_or_personal_passwords_and_unknown_roles_are_refused(
    store: UserStore,
) -> None:
    from shared.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        store.add("someone", "Someone", "short", [])
    with pytest.raises(InvalidInputError, match="stronger"):
        store.add("someone", "Someone", "Password1234!", [])
    with pytest.raises(InvalidInputError, match="stronger"):
        store.set_password("teacher.oakfield", "teacher.oakfield1")
    store.add("someone", "Someone", "lantern-quietly-orbit-57", [])
    with pytest.raises(InvalidInputError):
        RoleGrant.parse("headmaster@oakfield")
