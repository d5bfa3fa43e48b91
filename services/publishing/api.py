"""Publishing's HTTP side: accounts per school, deliveries, the deliveries page."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from flask import Blueprint, jsonify, render_template, request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from services.publishing import admin, domain
from shared import auth, web
from shared.errors import InvalidInputError

bp = Blueprint("publishing", __name__, template_folder="templates")
STAFF = ("teacher", "approver", "admin")


class AccountBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    school: str = Field(pattern=domain.SCHOOL.pattern)
    account_id: str = Field(pattern=domain.ACCOUNT_ID.pattern)
    kind: str = "folder"
    name: str = Field(default="", max_length=200)
    config: dict[str, Any] = Field(default_factory=dict)
    enabled: StrictBool = True


def _account(account: domain.Account, with_config: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "account_id": account.account_id,
        "school": account.school_id,
        "kind": account.kind,
        "name": account.name,
        "enabled": account.enabled,
    }
    if with_config:
        out["config"] = dict(account.config)
    return out


def _delivery(d: domain.Delivery) -> dict[str, Any]:
    return {
        "post_id": d.post_id,
        "account": d.account_id,
        "school": d.school_id,
        "status": d.status,
        "target": d.target,
        "location": d.location,
        "reason": d.reason,
        "at": d.at.isoformat(),
    }


@bp.get("/api/accounts")
@auth.login_required(*STAFF)
def list_accounts() -> Any:
    """The school's accounts, for its teachers, approvers and admins."""
    identity = auth.current_identity()
    school = request.args.get("school", "")
    if not school:
        raise InvalidInputError("say which school: ?school=<slug>")
    auth.require_role(identity, school, *STAFF)
    found = web.ports().accounts.for_school(school)
    with_config = identity.has("admin", school)
    return jsonify(accounts=[_account(a, with_config) for a in found])


@bp.post("/api/accounts")
@auth.login_required("admin")
def add_account() -> Any:
    """Add an account for a school (its admins): 201 if added, 200 if it was there."""
    identity = auth.current_identity()
    body = AccountBody.model_validate(web.json_body())
    auth.require_role(identity, body.school, "admin")
    _check_folder(body.config)
    added = admin.add_account(
        web.ports(),
        body.school,
        body.account_id,
        body.kind,
        body.name,
        body.config,
        body.enabled,
    )
    account = web.ports().accounts.get(body.account_id)
    return jsonify(
        created=added, account=_account(account, True)
    ), 201 if added else 200


def _check_folder(config: dict[str, Any]) -> None:
    """Over HTTP a folder account may only point inside the publishing root."""
    if "path" not in config:
        return
    root = web.ports().publish_root
    path = PurePath(str(config["path"]))
    if root is None or not domain.within(path, PurePath(root)):
        raise InvalidInputError(
            "the folder must lie inside the publishing root", code="bad_path"
        )


@bp.get("/api/deliveries")
@auth.login_required(*STAFF)
def list_deliveries() -> Any:
    identity = auth.current_identity()
    schools = auth.visible_schools(identity, *STAFF)
    found = web.ports().deliveries.recent(
        schools=schools, post_id=request.args.get("post") or None
    )
    return jsonify(deliveries=[_delivery(d) for d in found])


@bp.get("/")
@auth.login_required(*STAFF)
def index() -> str:
    identity = auth.current_identity()
    found = web.ports().deliveries.recent(
        schools=auth.visible_schools(identity, *STAFF)
    )
    return render_template("publishing/index.html", deliveries=found)
