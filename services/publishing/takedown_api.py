"""Taking a post down on request, manual takedown tasks, and a person's actions on a
delivery (send again, say whether an unconfirmed one went live). JSON API; each
write is a use case in one unit of work (``takedown``, ``delivery.people``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from pydantic import BaseModel, ConfigDict, Field

from services.publishing import bootstrap, delivery, domain, takedown
from shared import auth, web
from shared.errors import ConflictError, InvalidInputError, NotFoundError

bp = Blueprint("publishing_takedown", __name__)
OVERSEERS = ("approver", "admin")
TAKERS = ("approver", "admin", "it_auditor")  # the policies: may require removal


class TakedownBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    reason: str = Field(min_length=1, max_length=1000)


class CloseBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    confirmation: str = Field(min_length=1, max_length=500)


class ConfirmBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    live_url: str | None = Field(default=None, max_length=1000)


def _engine() -> delivery.Engine:
    return bootstrap.delivery_engine(web.ports())


def _school_of(post_id: str) -> str:
    markers: list[domain.Delivery] = web.ports().deliveries.for_post(post_id)
    if not markers:
        raise NotFoundError("no such post here")
    return markers[0].school_id


def _delivery_json(d: domain.Delivery) -> dict[str, Any]:
    return {
        "post_id": d.post_id,
        "account": d.account_id,
        "state": d.status,
        "reason": d.reason,
        "url": d.url if d.url.startswith(("http://", "https://")) else "",
        "at": d.at.isoformat(),
        "taken_down_at": d.taken_down_at.isoformat() if d.taken_down_at else None,
    }


@bp.post("/api/posts/<post_id>/takedown")
@auth.login_required(*TAKERS)
def take_down(post_id: str) -> Any:
    """Take every live copy of the post down, with a reason (202: under way)."""
    identity = auth.current_identity()
    auth.require_role(identity, _school_of(post_id), *TAKERS)
    body = TakedownBody.model_validate(web.json_body())
    ports = web.ports()
    if ports.takedowns is None:
        raise ConflictError("takedowns are not kept here")
    try:
        coming_down = takedown.on_request(
            _engine(), post_id, body.reason, identity.username
        )
    except takedown.TakedownError as exc:
        raise ConflictError(str(exc), code="nothing_live") from None
    return jsonify(deliveries=[_delivery_json(d) for d in coming_down]), 202


@bp.get("/api/takedowns/manual")
@auth.login_required(*OVERSEERS, "teacher")
def manual_tasks() -> Any:
    """Open manual takedowns of the caller's schools (and the ones they own)."""
    identity = auth.current_identity()
    ports = web.ports()
    tasks = ports.takedowns.manual() if ports.takedowns else []
    schools = auth.visible_schools(identity, *OVERSEERS)
    mine = [
        t
        for t in tasks
        if (schools is None or t.school_id in schools) or t.owner == identity.username
    ]
    return jsonify(
        tasks=[
            {
                "post_id": t.post_id,
                "account": t.account_id,
                "school": t.school_id,
                "owner": t.owner,
                "url": t.url,
                "reason": t.reason,
                "opened_at": t.opened_at.isoformat(),
                "escalated": t.escalated_at is not None,
            }
            for t in mine
        ]
    )


@bp.post("/api/posts/<post_id>/accounts/<account_id>/manual-takedown")
@auth.login_required(*OVERSEERS, "teacher")
def close_manual(post_id: str, account_id: str) -> Any:
    """The account's designated owner, or the school's approver or admin, confirms
    the copy is no longer visible on the platform."""
    identity = auth.current_identity()
    account = web.ports().accounts.get(account_id)
    if account is None:
        raise NotFoundError("no such account")
    if account.owner != identity.username:
        auth.require_role(identity, account.school_id, *OVERSEERS)
    body = CloseBody.model_validate(web.json_body())
    try:
        gone = takedown.close_manual(
            _engine(), post_id, account_id, identity.username, body.confirmation
        )
    except takedown.TakedownError as exc:
        raise ConflictError(str(exc), code="no_open_task") from None
    return jsonify(delivery=_delivery_json(gone))


@bp.post("/api/posts/<post_id>/accounts/<account_id>/retry")
@auth.login_required(*OVERSEERS)
def retry(post_id: str, account_id: str) -> Any:
    """Send a failed or waiting delivery again now."""
    identity = auth.current_identity()
    auth.require_role(identity, _school_of(post_id), *OVERSEERS)
    try:
        again = delivery.retry(_engine(), post_id, account_id)
    except delivery.DeliveryStateError as exc:
        raise ConflictError(str(exc), code="not_retryable") from None
    return jsonify(delivery=_delivery_json(again)), 202


@bp.post("/api/posts/<post_id>/accounts/<account_id>/confirm")
@auth.login_required(*OVERSEERS)
def confirm(post_id: str, account_id: str) -> Any:
    """An unconfirmed delivery, checked on the platform by a person: live at
    ``live_url``, or not there (``null``: it is sent again)."""
    identity = auth.current_identity()
    auth.require_role(identity, _school_of(post_id), *OVERSEERS)
    body = ConfirmBody.model_validate(web.json_body())
    if body.live_url and not body.live_url.startswith("https://"):
        raise InvalidInputError("the live post's address starts with https://")
    try:
        done = delivery.confirm(_engine(), post_id, account_id, body.live_url)
    except delivery.DeliveryStateError as exc:
        raise ConflictError(str(exc), code="not_unconfirmed") from None
    return jsonify(delivery=_delivery_json(done))
