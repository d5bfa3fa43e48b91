"""The device register API (IT, approvers) and enrolment (teachers)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from services.intake import domain, handlers, views
from services.intake.api.common import (
    APPROVERS,
    DEVICE_COOKIE,
    DEVICE_COOKIE_SECONDS,
    IT,
    bp,
    device_json,
    device_token,
    iso,
    ports,
)
from shared import auth, web
from shared.errors import NotFoundError


class NewDevice(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    school: str = Field(pattern=domain.SCHOOL.pattern)
    owner: str = Field(min_length=1, max_length=64)
    kind: str = Field(pattern=r"^(trust|personal)$")
    name: str = Field(default="", max_length=100)


class Revocation(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    reason: str = Field(default="", max_length=500)


class Enrolment(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    code: str = Field(min_length=1, max_length=40)


@bp.get("/api/devices")
@auth.login_required(*APPROVERS)
def list_devices() -> Any:
    identity = auth.current_identity()
    schools = auth.visible_schools(identity, *APPROVERS)
    school = request.args.get("school")
    if school:
        auth.require_role(identity, school, *APPROVERS)
        schools = {school}
    p = ports()
    lines = views.device_listing(
        p.register, p.obligations, None if schools is None else set(schools), p.now()
    )
    return jsonify(
        devices=[
            device_json(
                line.device,
                open_deletions=line.open_deletions,
                overdue_deletions=line.overdue_deletions,
            )
            for line in lines
        ]
    )


@bp.post("/api/devices")
@auth.login_required(*IT)
def register_device() -> Any:
    identity = auth.current_identity()
    body = NewDevice.model_validate(web.json_body())
    auth.require_role(identity, body.school, *IT)
    device = handlers.register(
        ports(),
        school=body.school,
        owner=body.owner,
        kind=body.kind,
        name=body.name,
        by=identity.username,
    )
    return jsonify(device_json(device)), 201


def _device_for(device_id: str, *roles: str) -> domain.Device:
    identity = auth.current_identity()
    device = views.device(ports().register, device_id)
    auth.require_role(identity, device.school_id, *roles)
    return device


@bp.get("/api/devices/<device_id>")
@auth.login_required(*APPROVERS)
def show_device(device_id: str) -> Any:
    return jsonify(device_json(_device_for(device_id, *APPROVERS)))


@bp.post("/api/devices/<device_id>/approve")
@auth.login_required(*APPROVERS)
def approve_device(device_id: str) -> Any:
    _device_for(device_id, *APPROVERS)
    who = auth.current_identity().user_id
    return jsonify(device_json(handlers.approve(ports(), device_id, who)))


@bp.post("/api/devices/<device_id>/revoke")
@auth.login_required(*APPROVERS)
def revoke_device(device_id: str) -> Any:
    _device_for(device_id, *APPROVERS)
    body = Revocation.model_validate(request.get_json(silent=True) or {})
    who = auth.current_identity().user_id
    return jsonify(device_json(handlers.revoke(ports(), device_id, who, body.reason)))


@bp.post("/api/devices/<device_id>/enrolment-code")
@auth.login_required(*IT)
def enrolment_code(device_id: str) -> Any:
    """A one-time code (shown once, kept hashed) the device exchanges for its token."""
    _device_for(device_id, *IT)
    code, expires = handlers.enrolment_code(
        ports(), device_id, auth.current_identity().user_id
    )
    return jsonify(device_id=device_id, code=code, expires_at=iso(expires)), 201


@bp.post("/api/enrol")
@auth.login_required("teacher")
def enrol() -> Any:
    """The uploader exchanges a one-time code for its device token (shown once).

    The device's owner must be the one signed in: a code seen over someone's shoulder
    is useless to anyone else (and stays unused).
    """
    identity = auth.current_identity()
    body = Enrolment.model_validate(web.json_body())
    device, token = handlers.enrol(
        ports(), body.code, via="api", owner=identity.username
    )
    return jsonify(device_json(device, token=token)), 201


@bp.post("/api/enrol-browser")
@auth.login_required("teacher")
def enrol_browser() -> Response:
    """This browser becomes the signed-in teacher's device: the token goes into an
    HttpOnly cookie (scripts never see it). The code must be for the teacher's own
    device; otherwise it is refused and stays unused."""
    identity = auth.current_identity()
    body = Enrolment.model_validate(web.json_body())
    p = ports()
    device, token = handlers.enrol(p, body.code, via="browser", owner=identity.username)
    response = jsonify(device_json(device))
    response.status_code = 201
    response.set_cookie(
        DEVICE_COOKIE,
        token,
        max_age=DEVICE_COOKIE_SECONDS,
        path=request.script_root or "/",
        secure=p.secure_cookies,
        httponly=True,
        samesite="Strict",
    )
    return response


@bp.get("/api/device")
@auth.login_required("teacher")
def this_device() -> Any:
    """The device whose token came with the request (kind, status), or 404."""
    device = views.identify(ports().register, device_token())
    if device is None:
        raise NotFoundError("no enrolled device came with this request")
    if device.owner != auth.current_identity().username:
        raise domain.DeviceRefusedError(
            "this device belongs to another member of staff", code="device_not_yours"
        )
    return jsonify(device_json(device))
