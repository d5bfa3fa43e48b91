"""Intake's HTTP side: the teacher's upload page and API, the device register for IT,
enrolment, deletion confirmations.

Uploads need BOTH a staff identity (teacher of the school; bearer token or session
cookie, from ``shared.auth``) and an approved device token of that staff member:
``X-Device-Token`` from the uploader, or the HttpOnly ``safepost_device`` cookie a
browser gets when it exchanges an enrolment code on the upload page.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request
from pydantic import BaseModel, ConfigDict, Field

from services.intake import devices, domain, submit
from shared import auth, web
from shared.errors import ForbiddenError, NotFoundError

logger = logging.getLogger(__name__)
bp = Blueprint("intake", __name__, template_folder="templates")

DEVICE_HEADER = "X-Device-Token"
DEVICE_COOKIE = "safepost_device"
DEVICE_COOKIE_SECONDS = 400 * 24 * 3600  # the browser's limit; revocation ends it
IT = ("it_auditor", "admin")
APPROVERS = ("approver", "admin", "it_auditor")


class PostForm(BaseModel):
    """The non-file fields of an upload."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    school: str = Field(pattern=domain.SCHOOL.pattern)
    caption: str = Field(default="", max_length=domain.MAX_CAPTION)
    purpose: str = Field(default="social_media", pattern=domain.PURPOSE.pattern)
    publish_on: date | None = None


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


class Deletion(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    deleted_at: datetime | None = None
    method: str = Field(default="confirmed", pattern=r"^[a-z][a-z0-9_\-]{0,39}$")


class HeldQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sha256: list[str] = Field(max_length=1000)


def _device_token() -> str | None:
    return request.headers.get(DEVICE_HEADER) or request.cookies.get(DEVICE_COOKIE)


def _device_json(d: domain.Device, **extra: Any) -> dict[str, Any]:
    return {
        "device_id": d.device_id,
        "school": d.school_id,
        "name": d.name,
        "owner": d.owner,
        "kind": d.kind,
        "status": d.status,
        "registered_by": d.registered_by,
        "registered_at": _iso(d.registered_at),
        "approved_by": d.approved_by,
        "approved_at": _iso(d.approved_at),
        "revoked_by": d.revoked_by,
        "revoked_at": _iso(d.revoked_at),
        "enrolled_at": _iso(d.enrolled_at),
        "last_seen_at": _iso(d.last_seen_at),
        **extra,
    }


def _obligation_json(o: domain.Obligation, now: datetime) -> dict[str, Any]:
    return {
        "receipt_id": o.receipt_id,
        "post_id": o.post_id,
        "school": o.school_id,
        "device_id": o.device_id,
        "owner": o.owner,
        "file": o.filename,
        "sha256": o.sha256,
        "due_at": _iso(o.due_at),
        "overdue": o.overdue(now),
        "closed_at": _iso(o.closed_at),
        "method": o.method,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# -- pages ---------------------------------------------------------------------------


@bp.get("/")
@auth.login_required("teacher")
def index() -> str:
    identity = auth.current_identity()
    schools = sorted(identity.schools("teacher"))
    device = devices.identify(web.ports(), request.cookies.get(DEVICE_COOKIE))
    return render_template("intake/index.html", schools=schools, device=device)


@bp.get("/devices")
@auth.login_required(*APPROVERS)
def devices_page() -> str:
    identity = auth.current_identity()
    schools = sorted(
        s for r in APPROVERS for s in identity.schools(r) if s != auth.TRUST_WIDE
    )
    return render_template(
        "intake/devices.html",
        schools=schools,
        trust_wide=auth.visible_schools(identity, *APPROVERS) is None,
        may_register=identity.has("it_auditor") or identity.has("admin"),
    )


# -- uploads -------------------------------------------------------------------------


@bp.post("/api/posts")
@auth.login_required("teacher")
def create_post() -> Any:
    """Upload a post: 201 with a receipt per stored file, or a 4xx saying why not."""
    identity = auth.current_identity()
    fields = {k: v for k, v in request.form.items() if k in PostForm.model_fields and v}
    form = PostForm.model_validate(fields)
    auth.require_role(identity, form.school, "teacher")
    ports = web.ports()
    device = devices.authorise_upload(
        ports,
        _device_token(),
        user_id=identity.user_id,
        username=identity.username,
        school=form.school,
    )
    draft = domain.Draft(
        school_id=form.school,
        author_id=identity.user_id,
        author_name=identity.username,
        caption=form.caption,
        purpose=form.purpose,
        accounts=domain.split_accounts(request.form.getlist("accounts")),
        publish_on=form.publish_on,
    )
    uploads = [
        submit.Upload(f.filename or "", f.stream)
        for f in request.files.getlist("photos")
    ]
    receipt = submit.submit_post(
        draft,
        uploads,
        ports=ports,
        post_id=ports.new_id(),
        limit=ports.max_upload_bytes,
        device=device,
        now=ports.now(),
        grace=ports.deletion_grace,
    )
    return jsonify(
        post_id=receipt.post_id,
        queued=not receipt.published,
        device_id=device.device_id,
        delete_from_device=device.must_delete,
        deletion_due_at=_iso(receipt.deletion_due_at),
        receipts=[
            {
                "file": p.photo.filename,
                "sha256": p.photo.sha256,
                "bytes": p.photo.size,
                "stored_at": p.key,
                "receipt_id": p.receipt_id,
                "photo_id": p.photo_id,
            }
            for p in receipt.photos
        ],
    ), 201


@bp.post("/api/photos/held")
@auth.login_required("teacher")
def held_photos() -> Any:
    """Which of these hashes the caller uploaded already (a resumed upload skips them),
    with each one's receipt and whether its deletion is still expected."""
    identity = auth.current_identity()
    query = HeldQuery.model_validate(web.json_body())
    ports = web.ports()
    held = ports.ledger.held(identity.user_id, {s.lower() for s in query.sha256})
    open_ = {
        o.receipt_id
        for o in ports.register.obligations(owner=identity.username, open_only=True)
    }
    return jsonify(
        held=[
            {
                "sha256": h.sha256,
                "receipt_id": h.receipt_id,
                "post_id": h.post_id,
                "bytes": h.bytes,
                "stored_at": h.stored_at,
                "file": h.filename,
                "deletion_expected": h.receipt_id in open_,
            }
            for h in held
        ]
    )


@bp.post("/api/receipts/<receipt_id>/deletion")
@auth.login_required("teacher", *IT)
def confirm_deletion(receipt_id: str) -> Any:
    """The owner confirms the original is gone from the device (or IT resolves it)."""
    identity = auth.current_identity()
    body = Deletion.model_validate(web.json_body())
    ports = web.ports()
    mine = ports.register.obligations(
        owner=identity.username, receipt_id=receipt_id, open_only=False
    )
    as_it = False
    if not mine:
        found = ports.register.obligations(receipt_id=receipt_id, open_only=False)
        if not found:
            raise NotFoundError("no deletion is expected for that receipt")
        auth.require_role(identity, found[0].school_id, *IT)
        as_it = True
    closed = devices.confirm_deletion(
        ports,
        receipt_id,
        deleted_at=body.deleted_at,
        method="it-resolved" if as_it else body.method,
        username=identity.username,
        actor=identity.username,
        as_it=as_it,
    )
    return jsonify(_obligation_json(closed, ports.now()))


@bp.get("/api/obligations")
@auth.login_required("teacher", *IT)
def list_obligations() -> Any:
    """Open deletion obligations: the caller's own (``?mine=1``) or, for IT, every
    one of the schools they audit (``?all=1`` includes closed ones)."""
    identity = auth.current_identity()
    ports = web.ports()
    open_only = request.args.get("all") != "1"
    if request.args.get("mine") == "1":
        found = ports.register.obligations(owner=identity.username, open_only=True)
    else:
        if not any(identity.has(r) for r in IT):
            raise ForbiddenError("needs role: it_auditor or admin")
        schools = auth.visible_schools(identity, *IT)
        found = [
            o
            for o in ports.register.obligations(open_only=open_only)
            if schools is None or o.school_id in schools
        ]
    now = ports.now()
    return jsonify(obligations=[_obligation_json(o, now) for o in found])


# -- devices ---------------------------------------------------------------------------


@bp.get("/api/devices")
@auth.login_required(*APPROVERS)
def list_devices() -> Any:
    identity = auth.current_identity()
    ports = web.ports()
    schools = auth.visible_schools(identity, *APPROVERS)
    school = request.args.get("school")
    if school:
        auth.require_role(identity, school, *APPROVERS)
        schools = {school}
    found = ports.register.listing(schools)
    now = ports.now()
    duties = ports.register.obligations(device_ids=[d.device_id for d in found])
    counts: dict[str, list[int]] = {}
    for o in duties:
        c = counts.setdefault(o.device_id, [0, 0])
        c[0] += 1
        c[1] += int(o.overdue(now))
    return jsonify(
        devices=[
            _device_json(
                d,
                open_deletions=counts.get(d.device_id, [0, 0])[0],
                overdue_deletions=counts.get(d.device_id, [0, 0])[1],
            )
            for d in found
        ]
    )


@bp.post("/api/devices")
@auth.login_required(*IT)
def register_device() -> Any:
    identity = auth.current_identity()
    body = NewDevice.model_validate(web.json_body())
    auth.require_role(identity, body.school, *IT)
    device = devices.register(
        web.ports(),
        school=body.school,
        owner=body.owner,
        kind=body.kind,
        name=body.name,
        by=identity.username,
    )
    return jsonify(_device_json(device)), 201


def _device_for(device_id: str, *roles: str) -> domain.Device:
    identity = auth.current_identity()
    device = devices.get(web.ports(), device_id)
    auth.require_role(identity, device.school_id, *roles)
    return device


@bp.get("/api/devices/<device_id>")
@auth.login_required(*APPROVERS)
def show_device(device_id: str) -> Any:
    return jsonify(_device_json(_device_for(device_id, *APPROVERS)))


@bp.post("/api/devices/<device_id>/approve")
@auth.login_required(*APPROVERS)
def approve_device(device_id: str) -> Any:
    _device_for(device_id, *APPROVERS)
    who = auth.current_identity().user_id
    return jsonify(_device_json(devices.approve(web.ports(), device_id, who)))


@bp.post("/api/devices/<device_id>/revoke")
@auth.login_required(*APPROVERS)
def revoke_device(device_id: str) -> Any:
    _device_for(device_id, *APPROVERS)
    body = Revocation.model_validate(request.get_json(silent=True) or {})
    who = auth.current_identity().user_id
    return jsonify(
        _device_json(devices.revoke(web.ports(), device_id, who, body.reason))
    )


@bp.post("/api/devices/<device_id>/enrolment-code")
@auth.login_required(*IT)
def enrolment_code(device_id: str) -> Any:
    """A one-time code (shown once, kept hashed) the device exchanges for its token."""
    _device_for(device_id, *IT)
    code, expires = devices.enrolment_code(
        web.ports(), device_id, auth.current_identity().user_id
    )
    return jsonify(device_id=device_id, code=code, expires_at=_iso(expires)), 201


@bp.post("/api/enrol")
@auth.login_required("teacher")
def enrol() -> Any:
    """The uploader exchanges a one-time code for its device token (shown once).

    The device's owner must be the one signed in: a code seen over someone's shoulder
    is useless to anyone else (and stays unused).
    """
    identity = auth.current_identity()
    body = Enrolment.model_validate(web.json_body())
    device, token = devices.enrol(
        web.ports(), body.code, via="api", owner=identity.username
    )
    return jsonify(_device_json(device, token=token)), 201


@bp.post("/api/enrol-browser")
@auth.login_required("teacher")
def enrol_browser() -> Response:
    """This browser becomes the signed-in teacher's device: the token goes into an
    HttpOnly cookie (scripts never see it). The code must be for the teacher's own
    device; otherwise it is refused and stays unused."""
    identity = auth.current_identity()
    body = Enrolment.model_validate(web.json_body())
    ports = web.ports()
    device, token = devices.enrol(
        ports, body.code, via="browser", owner=identity.username
    )
    response = jsonify(_device_json(device))
    response.status_code = 201
    response.set_cookie(
        DEVICE_COOKIE,
        token,
        max_age=DEVICE_COOKIE_SECONDS,
        path=request.script_root or "/",
        secure=ports.secure_cookies,
        httponly=True,
        samesite="Strict",
    )
    return response


@bp.get("/api/device")
@auth.login_required("teacher")
def this_device() -> Any:
    """The device whose token came with the request (kind, status), or 404."""
    device = devices.identify(web.ports(), _device_token())
    if device is None:
        raise NotFoundError("no enrolled device came with this request")
    if device.owner != auth.current_identity().username:
        raise domain.DeviceRefusedError(
            "this device belongs to another member of staff", code="device_not_yours"
        )
    return jsonify(_device_json(device))
