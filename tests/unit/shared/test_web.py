"""shared.web: errors as JSON, login redirects for pages, health and readiness."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient

from shared.db import make_engine, ping
from tests.unit.shared.web_app import a_person, bearer, make_app

JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.fixture()
def client() -> FlaskClient:
    return make_app().test_client()


def test_an_unauthenticated_api_call_answers_401_json(client: FlaskClient) -> None:
    response = client.get("/posts", headers=JSON)

    assert response.status_code == 401
    assert response.json == {"error": "unauthenticated", "message": "sign in first"}


def test_a_call_with_no_accept_header_gets_json_not_a_redirect(
    client: FlaskClient,
) -> None:
    response = client.get("/posts")

    assert response.status_code == 401
    assert response.is_json


def test_an_unauthenticated_page_redirects_to_login_with_the_way_back(
    client: FlaskClient,
) -> None:
    response = client.get("/posts?school=oak&page=2", headers=BROWSER)

    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert target.path == "/login"
    assert parse_qs(target.query) == {"next": ["/posts?school=oak&page=2"]}


def test_the_way_back_includes_the_mount_prefix(client: FlaskClient) -> None:
    response = client.get(
        "/posts", headers=BROWSER, environ_overrides={"SCRIPT_NAME": "/approval"}
    )

    assert parse_qs(urlsplit(response.headers["Location"]).query) == {
        "next": ["/approval/posts"]
    }


def test_an_unauthenticated_form_post_answers_401_not_a_redirect(
    client: FlaskClient,
) -> None:
    response = client.post("/posts", headers=BROWSER, data={"text": "x"})

    assert response.status_code == 401


def test_a_bad_token_answers_401(client: FlaskClient) -> None:
    response = client.get("/posts", headers={**JSON, "Authorization": "Bearer forged"})

    assert response.status_code == 401
    assert response.json == {
        "error": "unauthenticated",
        "message": "invalid credentials",
    }


def test_a_wrong_role_answers_403_json(client: FlaskClient) -> None:
    response = client.get("/posts", headers=bearer(a_person(("oak", "it_auditor"))))

    assert response.status_code == 403
    assert response.json == {
        "error": "forbidden",
        "message": "needs role: teacher or approver",
    }


def test_a_domain_error_answers_its_status_and_code(client: FlaskClient) -> None:
    response = client.get("/conflict")

    assert response.status_code == 409
    assert response.json == {
        "error": "post_not_pending",
        "message": "the post is not pending",
    }


def test_an_invalid_body_answers_400_naming_the_problems(client: FlaskClient) -> None:
    response = client.post(
        "/posts", json={"length": "long"}, headers=bearer(a_person(("oak", "teacher")))
    )

    assert response.status_code == 400
    assert response.json["error"] == "invalid_input"
    assert {p["field"] for p in response.json["problems"]} == {"text", "length"}


def test_a_body_that_is_not_a_json_object_answers_400(client: FlaskClient) -> None:
    response = client.post(
        "/posts",
        data="[1, 2",
        content_type="application/json",
        headers=bearer(a_person(("oak", "teacher"))),
    )

    assert response.status_code == 400
    assert response.json["error"] == "invalid_input"


def test_an_oversized_body_answers_413_json(client: FlaskClient) -> None:
    response = client.post(
        "/posts",
        json={"text": "x" * 2000, "length": 1},
        headers=bearer(a_person(("oak", "teacher"))),
    )

    assert response.status_code == 413
    assert response.json == {
        "error": "payload_too_large",
        "message": "the upload is too large",
    }


def test_an_unexpected_error_answers_500_without_leaking_internals(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="shared.web"):
        response = client.get("/boom")

    assert response.status_code == 500
    assert response.json == {
        "error": "internal_error",
        "message": "something went wrong; it is logged",
    }
    assert b"shadow" not in response.data and b"Traceback" not in response.data
    assert caplog.records[-1].exc_info is not None


def test_an_unknown_route_answers_404_json(client: FlaskClient) -> None:
    response = client.get("/nowhere", headers=BROWSER)

    assert response.status_code == 404
    assert response.json["error"] == "not_found"


def test_a_wrong_method_answers_405_json(client: FlaskClient) -> None:
    response = client.delete("/posts")

    assert response.status_code == 405
    assert response.json["error"] == "method_not_allowed"


def test_healthz_answers_200_without_signing_in(client: FlaskClient) -> None:
    response = client.get("/healthz")

    assert (response.status_code, response.json) == (200, {"status": "ok"})


def test_readyz_answers_200_when_every_check_passes() -> None:
    client = make_app({"db": partial(ping, make_engine("sqlite://"))}).test_client()

    assert client.get("/readyz").status_code == 200


def test_readyz_answers_503_naming_the_failed_check() -> None:
    def broker_down() -> None:
        raise ConnectionError("connection refused")

    client = make_app({"db": lambda: None, "broker": broker_down}).test_client()

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json == {
        "status": "unavailable",
        "failed": {"broker": "ConnectionError"},
    }


def test_responses_carry_a_request_id_and_safety_headers(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"X-Request-Id": "req-7"})

    assert response.headers["X-Request-Id"] == "req-7"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_a_request_logs_one_line_with_its_request_id(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    from shared import logs

    seen: list[dict[str, str]] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(logs.current())

    handler = Grab()
    logging.getLogger("shared.web").addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="shared.web"):
            client.get("/conflict", headers={"X-Request-Id": "req-9"})
    finally:
        logging.getLogger("shared.web").removeHandler(handler)

    assert [r.getMessage() for r in caplog.records] == ["GET /conflict 409"]
    assert seen == [{"request_id": "req-9", "correlation_id": "req-9"}]
    assert logs.current() == {}


def test_a_dependency_that_is_away_answers_503_with_retry_after_not_500(
    client: FlaskClient,
) -> None:
    res = client.get("/database-away")

    assert res.status_code == 503
    assert res.headers["Retry-After"] == "5"
    assert res.get_json()["error"] == "unavailable"
    assert "try again" in res.get_json()["message"]
    assert "connection refused" not in res.get_data(as_text=True)


def test_every_answer_forbids_foreign_scripts_framing_and_caching(
    client: FlaskClient,
) -> None:
    res = client.get("/conflict")

    csp = res.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "object-src 'none'" in csp and "'unsafe-inline'" not in csp.split(";")[1]
    assert res.headers["Cache-Control"] == "no-store"
    assert "microphone=()" in res.headers["Permissions-Policy"]
    assert "Strict-Transport-Security" not in res.headers  # plain http (embedded)


def test_a_pages_own_scripts_carry_the_nonce_its_policy_allows(tmp_path: Path) -> None:
    from safepost import embedded

    system = embedded.build(tmp_path)
    page = system.apps["identity"].test_client().get("/login")

    nonce = page.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    html = page.get_data(as_text=True)
    assert html.count("<script") == html.count(f'nonce="{nonce}"') >= 1
