"""Publishing's HTTP side: the JSON API of accounts per school, connecting them by
OAuth, the trust's register of approved sites, deliveries (the pages, on the same
blueprint, are in ``pages``; takedowns and a person's actions on a delivery in
``takedown_api``).

Every view requires a role, then checks it for the school the resource belongs to
(``auth.require_role``). Writes are use cases (``admin``, ``connect``, ``sites``),
each in one unit of work.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from services.publishing import admin, connect, domain, sites
from shared import auth, web
from shared.errors import InvalidInputError, NotFoundError

bp = Blueprint("publishing", __name__, template_folder="templates")
STAFF = ("teacher", "approver", "admin")
REGISTER = ("admin", "it_auditor")  # who may read the register of approved sites


class AccountBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    school: str = Field(pattern=domain.SCHOOL.pattern)
    account_id: str = Field(pattern=domain.ACCOUNT_ID.pattern)
    kind: str = "folder"
    name: str = Field(default="", max_length=admin.MAX_NAME)
    external_id: str = Field(default="", max_length=admin.MAX_URL)
    owner: str = Field(default="", max_length=64)
    footer: str = Field(default="", max_length=2000)
    config: dict[str, Any] = Field(default_factory=dict)
    enabled: StrictBool = True


class AccountChanges(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, max_length=admin.MAX_NAME)
    external_id: str | None = Field(default=None, max_length=admin.MAX_URL)
    owner: str | None = Field(default=None, max_length=64)
    footer: str | None = Field(default=None, max_length=2000)
    config: dict[str, Any] | None = None
    enabled: StrictBool | None = None


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: dict[str, str]


class WithdrawBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    note: str = Field(max_length=sites.MAX_NOTE)


# -- JSON ---------------------------------------------------------------------------


def _account(account: domain.Account, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "account_id": account.account_id,
        "school": account.school_id,
        "kind": account.kind,
        "name": account.name,
        "enabled": account.enabled,
    }
    if full:
        expires = account.token_expires_at
        out |= {
            "external_id": account.external_id,
            "owner": account.owner,
            "footer": account.footer,
            "status": account.status,
            "status_reason": account.status_reason,
            "token_expires_at": expires.isoformat() if expires else None,
            "config": dict(account.config),
        }
    return out


def _site(site: domain.Site) -> dict[str, Any]:
    def when(at: Any) -> str | None:
        return at.isoformat() if at else None

    return {
        "platform": site.platform,
        "name": sites.name(site.platform),
        "approved": site.approved,
        "answers": dict(site.answers),
        "approved_by": site.approved_by,
        "approved_at": when(site.approved_at),
        "withdrawn_by": site.withdrawn_by,
        "withdrawn_at": when(site.withdrawn_at),
        "note": site.note,
    }


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
    """The school's accounts, for its teachers, approvers and admins (admins see
    every setting and the connection state)."""
    identity = auth.current_identity()
    school = request.args.get("school", "")
    if not school:
        raise InvalidInputError("say which school: ?school=<slug>")
    auth.require_role(identity, school, *STAFF)
    found = web.ports().accounts.for_school(school)
    full = identity.has("admin", school)
    return jsonify(accounts=[_account(a, full) for a in found])


@bp.post("/api/accounts")
@auth.login_required("admin")
def add_account() -> Any:
    """Add an account for a school (its admins): 201 if added, 200 if it was there."""
    identity = auth.current_identity()
    body = AccountBody.model_validate(web.json_body())
    auth.require_role(identity, body.school, "admin")
    added = admin.add_account(
        web.ports(),
        body.school,
        body.account_id,
        body.kind,
        body.name,
        body.config,
        body.enabled,
        external_id=body.external_id,
        owner=body.owner,
        footer=body.footer,
        by=identity,
    )
    account = web.ports().accounts.get(body.account_id)
    return jsonify(created=added, account=_account(account, True)), (
        201 if added else 200
    )


@bp.patch("/api/accounts/<account_id>")
@auth.login_required("admin")
def update_account(account_id: str) -> Any:
    """Change an account's settings (an admin of its school)."""
    identity = auth.current_identity()
    account = school_account(account_id, identity)
    body = AccountChanges.model_validate(web.json_body())
    changes = body.model_dump(exclude_none=True)
    updated = admin.update_account(
        web.ports(), account.account_id, changes, by=identity
    )
    return jsonify(account=_account(updated, True))


@bp.post("/api/accounts/<account_id>/connect")
@auth.login_required("admin")
def connect_account(account_id: str) -> Any:
    """Start connecting the account: where to send the admin's browser."""
    identity = auth.current_identity()
    account = school_account(account_id, identity)
    return jsonify(redirect=connect.start(web.ports(), account.account_id, identity))


@bp.post("/api/accounts/<account_id>/secret")
@auth.login_required("admin")
def webhook_secret(account_id: str) -> Any:
    """A new shared secret for a webhook account, shown this once."""
    identity = auth.current_identity()
    account = school_account(account_id, identity)
    secret = connect.new_webhook_secret(web.ports(), account.account_id, identity)
    response = jsonify(secret=secret)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/api/sites")
@auth.login_required(*REGISTER)
def list_sites() -> Any:
    """The register of approved sites (read-only for school admins and IT)."""
    identity = auth.current_identity()
    return jsonify(
        sites=[_site(s) for s in sites.register(web.ports())],
        checklist=[{"key": k, "question": q} for k, q in sites.CHECKLIST],
        may_change=sites.may_change(identity),
    )


@bp.post("/api/sites/<platform>/approve")
@auth.login_required(*REGISTER)
def approve_site(platform: str) -> Any:
    """Approve a platform with every checklist question answered (trust IT)."""
    identity = register_keeper()
    body = ApproveBody.model_validate(web.json_body())
    site = sites.approve(web.ports(), platform, body.answers, identity.username)
    return jsonify(site=_site(site))


@bp.post("/api/sites/<platform>/withdraw")
@auth.login_required(*REGISTER)
def withdraw_site(platform: str) -> Any:
    """Withdraw a platform's approval, saying why (trust IT)."""
    identity = register_keeper()
    body = WithdrawBody.model_validate(web.json_body())
    site = sites.withdraw(web.ports(), platform, identity.username, body.note)
    return jsonify(site=_site(site))


@bp.get("/api/deliveries")
@auth.login_required(*STAFF)
def list_deliveries() -> Any:
    identity = auth.current_identity()
    schools = auth.visible_schools(identity, *STAFF)
    found = web.ports().deliveries.recent(
        schools=schools, post_id=request.args.get("post") or None
    )
    return jsonify(deliveries=[_delivery(d) for d in found])


def school_account(account_id: str, identity: auth.Identity) -> domain.Account:
    account: domain.Account | None = web.ports().accounts.get(account_id)
    if account is None:
        raise NotFoundError(f"no account {account_id}", code="unknown_account")
    auth.require_role(identity, account.school_id, "admin")
    return account


def register_keeper() -> auth.Identity:
    identity = auth.current_identity()
    auth.require_role(identity, auth.TRUST_WIDE, "it_auditor", "admin")
    return identity
