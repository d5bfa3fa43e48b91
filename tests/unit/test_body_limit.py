"""Every app, as its real factory builds it, refuses a request body over its cap with
413 JSON before reading it (shared.web: 40 MiB unless the app asks for another limit;
intake: ten photos of ``MAX_UPLOAD_BYTES`` and the form around them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from safepost import embedded
from services.intake.app import FORM_OVERHEAD
from services.intake.domain import MAX_PHOTOS
from shared import auth, web

UPLOAD = 1024 * 1024  # intake's MAX_UPLOAD_BYTES here, to keep its cap small
CAPS = {
    "identity": web.MAX_CONTENT_LENGTH,
    "intake": UPLOAD * MAX_PHOTOS + FORM_OVERHEAD,
    "consent": web.MAX_CONTENT_LENGTH,
    "redaction": web.MAX_CONTENT_LENGTH,
    "approval": web.MAX_CONTENT_LENGTH,
    "publishing": web.MAX_CONTENT_LENGTH,
    "audit": web.MAX_CONTENT_LENGTH,
}
APPS = list(CAPS)


@auth.public
def read_body() -> ResponseReturnValue:
    return jsonify(read=len(request.get_data()))


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Flask]:
    """The apps of the embedded system, each with a view that reads the whole body
    (only some apps have a write route, and each reads its body its own way)."""
    env = {**os.environ, "MAX_UPLOAD_BYTES": str(UPLOAD)}
    system = embedded.build(Path(tmp_path_factory.mktemp("var")), env)
    for app in system.apps.values():
        app.add_url_rule("/_test/body", "read_body", read_body, methods=["POST"])
    return dict(system.apps)


def test_every_app_is_checked() -> None:
    assert set(CAPS) == {"identity", *embedded.SERVICES}


@pytest.mark.parametrize("name", APPS)
def test_a_body_over_the_apps_cap_is_refused_with_413_and_one_under_is_read(
    apps: dict[str, Flask], name: str
) -> None:
    client = apps[name].test_client()

    small = client.post("/_test/body", data=b"x" * 1024)
    over = client.post("/_test/body", data=bytes(CAPS[name] + 1))

    assert small.status_code == 200 and small.json == {"read": 1024}
    assert over.status_code == 413
    assert over.json == {
        "error": "payload_too_large",
        "message": "the upload is too large",
    }
