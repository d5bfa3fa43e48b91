"""No route of any app answers without authentication and a role (least privilege).

Walks the whole route table of the portal and of every service: each view is either
marked public on purpose or requires a role; without credentials it answers 401 JSON;
with a valid identity that holds no role it answers 403 JSON; a forged token is 401.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from safepost import embedded
from shared import auth

PUBLIC = {
    ("identity", "/"),
    ("identity", "/login"),
    ("identity", "/logout"),
    ("identity", "/auth/token"),
    ("identity", "/static/<path:filename>"),
    # a redacted image behind a short-lived signed link, for Instagram to fetch
    ("publishing", "/media/<token>"),
}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> embedded.System:
    return embedded.build(tmp_path_factory.mktemp("var"))


def routes(system: embedded.System) -> list[tuple[str, Any, Any, str, str]]:
    out = []
    for name, app in system.apps.items():
        for rule in app.url_map.iter_rules():
            view = app.view_functions[rule.endpoint]
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                out.append((name, app, view, rule.rule, method))
    return out


def concrete(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: f"x-{m.group(1)}", rule)


def test_every_view_is_either_public_on_purpose_or_requires_a_role(
    system: embedded.System,
) -> None:
    unmarked = []
    for name, _, view, rule, _ in routes(system):
        public = getattr(view, "safepost_public", False)
        guarded = hasattr(view, "safepost_roles")
        if rule in ("/healthz", "/readyz"):
            assert public, f"{name} {rule} should be public"
            continue
        if rule == "/metrics":  # its own guard: METRICS_TOKEN, else internal callers
            assert getattr(view, "safepost_guard", None) == "metrics", name
            continue
        if (name, rule) in PUBLIC:
            continue
        if rule.startswith("/static"):
            continue
        if public or not guarded:
            unmarked.append(f"{name} {rule}")

    assert unmarked == []


def test_no_route_answers_without_credentials(system: embedded.System) -> None:
    answered = []
    for name, app, view, rule, method in routes(system):
        if getattr(view, "safepost_public", False) or rule.startswith("/static"):
            continue
        client = app.test_client()

        response = client.open(
            concrete(rule), method=method, headers={"Accept": "application/json"}
        )

        if (
            response.status_code != 401
            or response.get_json().get("error") != "unauthenticated"
        ):
            answered.append(f"{name} {method} {rule} -> {response.status_code}")

    assert answered == []


def test_no_route_answers_an_identity_without_the_right_role(
    system: embedded.System,
) -> None:
    secret = system.settings["identity"].secret_key
    nobody = auth.Identity("u-nobody", "nobody", "No Roles", frozenset())
    token = auth.issue_token(secret, nobody, kind="api")
    answered = []
    for name, app, view, rule, method in routes(system):
        if getattr(view, "safepost_public", False) or rule.startswith("/static"):
            continue
        if getattr(view, "safepost_roles", None) == () and (name, rule) == (
            "identity",
            "/auth/me",
        ):
            continue  # "who am I" answers any signed-in identity, and nothing else

        response = app.test_client().open(
            concrete(rule),
            method=method,
            headers={"Accept": "application/json", "Authorization": f"Bearer {token}"},
        )

        if response.status_code != 403:
            answered.append(f"{name} {method} {rule} -> {response.status_code}")

    assert answered == []


def test_a_forged_or_foreign_token_is_refused(
    system: embedded.System, tmp_path: Path
) -> None:
    boss = auth.Identity(
        "u-boss", "boss", "Boss", frozenset({("*", "admin"), ("*", "it_auditor")})
    )
    forged = auth.issue_token("someone-elses-secret" * 3, boss, kind="api")
    audit = system.apps["audit"].test_client()

    response = audit.get(
        "/api/events",
        headers={"Authorization": f"Bearer {forged}", "Accept": "application/json"},
    )

    assert response.status_code == 401
