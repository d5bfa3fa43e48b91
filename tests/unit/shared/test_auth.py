"""shared.auth: signed identity tokens, roles per school, CSRF for cookie sessions."""

from __future__ import annotations

import dataclasses
import time

import pytest
from flask.testing import FlaskClient

from shared import auth
from shared.errors import ForbiddenError, UnauthenticatedError
from tests.unit.shared.web_app import SECRET, a_person, bearer, make_app

TEACHER_AT_OAK = ("oak", "teacher")


@pytest.fixture()
def client() -> FlaskClient:
    return make_app().test_client()


def cookie_session(client: FlaskClient, *roles: tuple[str, str]) -> str:
    """Log in with a session cookie; returns the session's CSRF token."""
    identity = a_person(*roles, session_id="sess-1")
    client.set_cookie(auth.COOKIE, auth.issue_token(SECRET, identity))
    return auth.csrf_token(SECRET, identity)


def test_a_token_carries_the_identity() -> None:
    person = a_person(TEACHER_AT_OAK, ("*", "approver"), session_id="s1")

    back = auth.verify_token(SECRET, auth.issue_token(SECRET, person), via="bearer")

    assert back == dataclasses.replace(person, via="bearer")


def test_a_tampered_token_is_refused() -> None:
    token = auth.issue_token(SECRET, a_person(TEACHER_AT_OAK))
    payload, rest = token.split(".", 1)
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + rest

    with pytest.raises(UnauthenticatedError) as caught:
        auth.verify_token(SECRET, forged, via="cookie")

    assert caught.value.status == 401


def test_a_token_signed_with_another_secret_is_refused() -> None:
    token = auth.issue_token("another-secret-" + "y" * 32, a_person(TEACHER_AT_OAK))

    with pytest.raises(UnauthenticatedError, match="invalid credentials"):
        auth.verify_token(SECRET, token, via="cookie")


@pytest.mark.parametrize(
    ("kind", "lifetime"),
    [("session", auth.SESSION_SECONDS), ("api", auth.API_TOKEN_SECONDS)],
)
def test_a_token_expires_after_its_lifetime(
    kind: str, lifetime: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued_at = time.time() - lifetime - 5
    monkeypatch.setattr(time, "time", lambda: issued_at)
    old = auth.issue_token(SECRET, a_person(TEACHER_AT_OAK), kind=kind)
    monkeypatch.undo()

    with pytest.raises(UnauthenticatedError, match="expired"):
        auth.verify_token(SECRET, old, via="cookie")


def test_a_token_just_inside_its_lifetime_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issued_at = time.time() - auth.SESSION_SECONDS + 60
    monkeypatch.setattr(time, "time", lambda: issued_at)
    token = auth.issue_token(SECRET, a_person(TEACHER_AT_OAK))
    monkeypatch.undo()

    assert auth.verify_token(SECRET, token, via="cookie").user_id == "u1"


@pytest.mark.parametrize("junk", ["", "not-a-token", "a.b.c", "e30.AAAA.BBBB"])
def test_junk_tokens_are_refused(junk: str) -> None:
    with pytest.raises(UnauthenticatedError):
        auth.verify_token(SECRET, junk, via="bearer")


def test_a_signed_token_that_is_not_an_identity_is_refused() -> None:
    not_claims = auth._serializer(SECRET).dumps(["sub", "admin"])

    with pytest.raises(UnauthenticatedError):
        auth.verify_token(SECRET, not_claims, via="bearer")


def test_roles_are_per_school() -> None:
    person = a_person(TEACHER_AT_OAK)

    assert person.has("teacher", "oak")
    assert not person.has("teacher", "elm")
    assert not person.has("approver", "oak")
    assert person.has("teacher")


def test_a_trust_wide_role_covers_every_school() -> None:
    coo = a_person(("*", "approver"))

    assert coo.has("approver", "oak") and coo.has("approver", "elm")
    assert not coo.has("admin", "oak")
    assert auth.visible_schools(coo, "approver") is None


def test_visible_schools_are_those_holding_the_roles() -> None:
    person = a_person(TEACHER_AT_OAK, ("elm", "approver"), ("ash", "admin"))

    assert auth.visible_schools(person, "teacher", "approver") == {"oak", "elm"}
    assert auth.visible_schools(person, "it_auditor") == set()


def test_require_role_refuses_another_school() -> None:
    person = a_person(("elm", "approver"))

    auth.require_role(person, "elm", "approver")
    with pytest.raises(ForbiddenError, match="oak"):
        auth.require_role(person, "oak", "approver")


def test_an_unknown_role_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown role"):
        auth.login_required("janitor")


def test_a_bearer_token_needs_no_csrf_token(client: FlaskClient) -> None:
    response = client.post(
        "/posts",
        json={"text": "hi", "length": 2},
        headers=bearer(a_person(TEACHER_AT_OAK)),
    )

    assert response.status_code == 202


def test_a_cookie_session_post_without_csrf_is_refused(client: FlaskClient) -> None:
    cookie_session(client, TEACHER_AT_OAK)

    response = client.post("/posts", json={"text": "hi", "length": 2})

    assert response.status_code == 403
    assert response.json == {
        "error": "csrf_failed",
        "message": "missing or invalid CSRF token",
    }


def test_a_cookie_session_post_with_a_wrong_csrf_token_is_refused(
    client: FlaskClient,
) -> None:
    cookie_session(client, TEACHER_AT_OAK)
    other = auth.csrf_token(SECRET, a_person(TEACHER_AT_OAK, session_id="sess-2"))

    response = client.post(
        "/posts", json={"text": "hi", "length": 2}, headers={"X-CSRF-Token": other}
    )

    assert response.status_code == 403


def test_a_cookie_session_post_with_its_csrf_token_is_accepted(
    client: FlaskClient,
) -> None:
    csrf = cookie_session(client, TEACHER_AT_OAK)

    by_header = client.post(
        "/posts", json={"text": "hi", "length": 2}, headers={"X-CSRF-Token": csrf}
    )
    by_form = client.post(
        "/schools/oak/approve",
        data={"csrf_token": cookie_session(client, ("oak", "approver"))},
    )

    assert by_header.status_code == 202
    assert by_form.status_code == 200


def test_a_cookie_session_get_needs_no_csrf_token(client: FlaskClient) -> None:
    cookie_session(client, TEACHER_AT_OAK)

    assert client.get("/posts").status_code == 200


def test_a_role_in_some_school_opens_the_route_but_not_another_school(
    client: FlaskClient,
) -> None:
    headers = bearer(a_person(("elm", "approver")))

    mine = client.post("/schools/elm/approve", headers=headers)
    theirs = client.post("/schools/oak/approve", headers=headers)

    assert mine.status_code == 200
    assert theirs.status_code == 403
    assert theirs.json["error"] == "forbidden"


def test_an_expired_cookie_answers_401(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued_at = time.time() - auth.SESSION_SECONDS - 5
    monkeypatch.setattr(time, "time", lambda: issued_at)
    client.set_cookie(auth.COOKIE, auth.issue_token(SECRET, a_person(TEACHER_AT_OAK)))
    monkeypatch.undo()

    response = client.get("/posts", headers={"Accept": "application/json"})

    assert response.status_code == 401
    assert response.json["message"] == "your session has expired; sign in again"
