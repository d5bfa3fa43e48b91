"""shared.web: every app serves GET /metrics (token or internal address only), counts
its requests by endpoint and status, and carries a correlation id on each request."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from shared import logs
from tests.unit.shared.web_app import a_person, bearer, make_app

JSON = {"Accept": "application/json"}
PUBLIC_ADDR = {"REMOTE_ADDR": "8.8.8.8"}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def requests_of(endpoint: str, method: str, status: str) -> float:
    return sample(
        "safepost_http_requests_total",
        service="tiny",
        endpoint=endpoint,
        method=method,
        status=status,
    )


@pytest.fixture()
def app(monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    return make_app()


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# --- who may read /metrics ---------------------------------------------------------


def test_without_a_token_the_metrics_answer_a_loopback_scrape(
    client: FlaskClient,
) -> None:
    client.get("/posts", headers=JSON)

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.content_type == "text/plain; version=0.0.4; charset=utf-8"
    text = response.get_data(as_text=True)
    assert (
        'safepost_http_requests_total{endpoint="tiny.list_posts",method="GET",'
        'service="tiny",status="401"}' in text
    )
    assert "# TYPE safepost_messages_total counter" in text


def test_without_a_token_a_private_address_may_scrape(client: FlaskClient) -> None:
    response = client.get("/metrics", environ_overrides={"REMOTE_ADDR": "10.42.0.7"})

    assert response.status_code == 200


def test_without_a_token_a_public_address_is_refused(client: FlaskClient) -> None:
    response = client.get("/metrics", environ_overrides=PUBLIC_ADDR)

    assert response.status_code == 403
    assert response.json is not None and response.json["error"] == "forbidden"
    assert "safepost_" not in response.get_data(as_text=True)


def test_without_a_token_a_scrape_through_the_proxy_is_refused(
    client: FlaskClient,
) -> None:
    # nginx's address is private; the headers it adds show the caller is outside.
    for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
        response = client.get(
            "/metrics",
            headers={header: "8.8.8.8"},
            environ_overrides={"REMOTE_ADDR": "172.18.0.9"},
        )

        assert response.status_code == 403, header


def test_without_a_token_a_signed_in_admin_from_outside_is_still_refused(
    client: FlaskClient,
) -> None:
    admin = bearer(a_person(("*", "admin"), ("*", "it_auditor")))

    response = client.get("/metrics", headers=admin, environ_overrides=PUBLIC_ADDR)

    assert response.status_code == 403


@pytest.fixture()
def guarded(monkeypatch: pytest.MonkeyPatch) -> FlaskClient:
    monkeypatch.setenv("METRICS_TOKEN", "scrape-me-" + "k" * 32)
    return make_app().test_client()


def test_with_a_token_its_bearer_may_scrape_from_anywhere(
    guarded: FlaskClient,
) -> None:
    token = {"Authorization": "Bearer scrape-me-" + "k" * 32}

    remote = guarded.get("/metrics", headers=token, environ_overrides=PUBLIC_ADDR)
    proxied = guarded.get("/metrics", headers={**token, "X-Forwarded-For": "8.8.8.8"})

    assert remote.status_code == proxied.status_code == 200
    assert "safepost_http_requests_total" in remote.get_data(as_text=True)


def test_with_a_token_nobody_else_may_scrape_not_even_from_loopback(
    guarded: FlaskClient,
) -> None:
    staff = bearer(a_person(("*", "admin")))
    for headers in (
        {},
        {"Authorization": "Bearer scrape-me"},
        {"Authorization": "Bearer scrape-me-" + "k" * 31},
        staff,
    ):
        response = guarded.get("/metrics", headers=headers)

        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json is not None
        assert response.json["error"] == "unauthenticated"


def test_every_app_of_the_system_serves_metrics_under_its_guard(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from safepost import embedded

    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    system = embedded.build(tmp_path_factory.mktemp("var"))

    for name, app in system.apps.items():
        client = app.test_client()
        view = app.view_functions["metrics"]

        assert client.get("/metrics").status_code == 200, name
        assert client.get("/metrics", environ_overrides=PUBLIC_ADDR).status_code == 403
        assert getattr(view, "safepost_guard", None) == "metrics", name


# --- what is counted ---------------------------------------------------------------


def test_each_request_is_counted_by_endpoint_method_and_status(
    client: FlaskClient,
) -> None:
    staff = bearer(a_person(("oak", "teacher")))
    listed = requests_of("tiny.list_posts", "GET", "200")
    refused = requests_of("tiny.list_posts", "GET", "401")
    timed = sample(
        "safepost_http_request_seconds_count",
        service="tiny",
        endpoint="tiny.list_posts",
        method="GET",
    )

    client.get("/posts", headers={**JSON, **staff})
    client.get("/posts", headers={**JSON, **staff})
    client.get("/posts", headers=JSON)

    assert requests_of("tiny.list_posts", "GET", "200") == listed + 2
    assert requests_of("tiny.list_posts", "GET", "401") == refused + 1
    assert (
        sample(
            "safepost_http_request_seconds_count",
            service="tiny",
            endpoint="tiny.list_posts",
            method="GET",
        )
        == timed + 3
    )


def test_a_server_error_is_counted_as_500(client: FlaskClient) -> None:
    before = requests_of("tiny.boom", "GET", "500")

    assert client.get("/boom", headers=JSON).status_code == 500

    assert requests_of("tiny.boom", "GET", "500") == before + 1


def test_unknown_paths_share_one_series_and_odd_methods_another(
    client: FlaskClient,
) -> None:
    unmatched = requests_of("unmatched", "GET", "404")
    odd = requests_of("unmatched", "other", "405")

    for n in range(3):
        client.get(f"/no/such/page/{uuid.uuid4()}/{n}")
    client.open("/posts", method="BREW")

    assert requests_of("unmatched", "GET", "404") == unmatched + 3
    assert requests_of("unmatched", "other", "405") == odd + 1


def test_probes_and_scrapes_are_neither_counted_nor_logged(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    def seen() -> float:
        return sum(
            requests_of(endpoint, "GET", status)
            for endpoint in ("healthz", "readyz", "metrics")
            for status in ("200", "403", "503")
        )

    before = seen()
    with caplog.at_level(logging.INFO, logger="shared.web"):
        client.get("/healthz")
        client.get("/readyz")
        client.get("/metrics")
        client.get("/metrics", environ_overrides=PUBLIC_ADDR)

    assert seen() == before
    assert caplog.records == []


# --- correlation ids -----------------------------------------------------------------


@pytest.fixture()
def contexts() -> Iterator[list[dict[str, str]]]:
    """The log context of each line shared.web writes."""
    seen: list[dict[str, str]] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(logs.current())

    handler = Grab(logging.INFO)
    web_logger = logging.getLogger("shared.web")
    saved = web_logger.level
    web_logger.addHandler(handler)
    web_logger.setLevel(logging.INFO)
    yield seen
    web_logger.removeHandler(handler)
    web_logger.setLevel(saved)


def test_an_incoming_correlation_id_is_in_the_log_line_and_the_answer(
    client: FlaskClient, contexts: list[dict[str, str]]
) -> None:
    response = client.get(
        "/conflict", headers={"X-Correlation-Id": "corr-42", "X-Request-Id": "req-1"}
    )

    assert contexts == [{"request_id": "req-1", "correlation_id": "corr-42"}]
    assert response.headers["X-Correlation-Id"] == "corr-42"
    assert response.headers["X-Request-Id"] == "req-1"
    assert logs.current() == {}


def test_without_a_correlation_id_the_request_id_is_the_correlation_id(
    client: FlaskClient, contexts: list[dict[str, str]]
) -> None:
    given = client.get("/conflict", headers={"X-Request-Id": "req-2"})
    fresh = client.get("/conflict")

    assert contexts[0] == {"request_id": "req-2", "correlation_id": "req-2"}
    assert given.headers["X-Correlation-Id"] == "req-2"
    made = fresh.headers["X-Request-Id"]
    assert uuid.UUID(made)
    assert contexts[1] == {"request_id": made, "correlation_id": made}
    assert fresh.headers["X-Correlation-Id"] == made


@pytest.mark.parametrize(
    "bad", ["has space", "x" * 129, "-leading-dash", "tab\tin", "{json}", "é"]
)
def test_an_implausible_incoming_id_is_replaced_by_a_new_one(
    client: FlaskClient, contexts: list[dict[str, str]], bad: str
) -> None:
    response = client.get(
        "/conflict",
        headers={"X-Correlation-Id": bad.encode("utf-8").decode("latin-1")},
    )

    [line] = contexts
    assert line["correlation_id"] != bad
    assert uuid.UUID(line["correlation_id"]) and (
        line["correlation_id"] == line["request_id"]
    )
    assert response.headers["X-Correlation-Id"] == line["correlation_id"]


def test_a_trace_style_id_is_kept(
    client: FlaskClient, contexts: list[dict[str, str]]
) -> None:
    trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    client.get("/conflict", headers={"X-Correlation-Id": trace})

    assert contexts[0]["correlation_id"] == trace
