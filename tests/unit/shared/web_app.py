"""A tiny app built with shared.web.create_app, for the auth and web tests."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel

from shared import auth, web
from shared.auth import Identity
from shared.errors import ConflictError

SECRET = "test-secret-" + "x" * 32
bp = Blueprint("tiny", __name__)


class Caption(BaseModel):
    text: str
    length: int


@bp.get("/posts")
@auth.login_required("teacher", "approver")
def list_posts() -> ResponseReturnValue:
    return jsonify(user=auth.current_identity().user_id)


@bp.post("/posts")
@auth.login_required("teacher")
def create_post() -> ResponseReturnValue:
    Caption.model_validate(web.json_body())
    return jsonify(accepted=True), 202


@bp.post("/schools/<school>/approve")
@auth.login_required("approver")
def approve(school: str) -> ResponseReturnValue:
    auth.require_role(auth.current_identity(), school, "approver")
    return jsonify(approved=school)


@bp.get("/conflict")
@auth.public
def conflict() -> ResponseReturnValue:
    raise ConflictError("the post is not pending", code="post_not_pending")


@bp.get("/boom")
@auth.public
def boom() -> ResponseReturnValue:
    raise RuntimeError("secret internals /etc/shadow")


@bp.get("/database-away")
@auth.public
def database_away() -> ResponseReturnValue:
    from sqlalchemy.exc import OperationalError

    raise OperationalError("SELECT 1", {}, Exception("connection refused"))


def make_app(
    checks: dict[str, web.ReadyCheck] | None = None, max_bytes: int = 1024
) -> Flask:
    app = web.create_app(
        "tiny",
        secret_key=SECRET,
        ports=object(),
        ready_checks=checks,
        max_content_length=max_bytes,
    )
    app.register_blueprint(bp)
    return app


def a_person(*roles: tuple[str, str], session_id: str = "") -> Identity:
    return Identity(
        user_id="u1",
        username="ada",
        display_name="Ada",
        roles=frozenset(roles),
        session_id=session_id,
    )


def bearer(identity: Identity, secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": "Bearer " + auth.issue_token(secret, identity, kind="api")}
