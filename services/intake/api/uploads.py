"""The upload API: posts, the photos already held, deletion confirmations."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from services.intake import domain, handlers
from services.intake.api.common import IT, bp, device_token, iso, obligation_json
from services.intake.api.common import ports as current_ports
from shared import auth, web
from shared.errors import ForbiddenError, NotFoundError


class PostForm(BaseModel):
    """The non-file fields of an upload."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    school: str = Field(pattern=domain.SCHOOL.pattern)
    caption: str = Field(default="", max_length=domain.MAX_CAPTION)
    purpose: str = Field(default="social_media", pattern=domain.PURPOSE.pattern)
    publish_on: date | None = None


class Deletion(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    deleted_at: datetime | None = None
    method: str = Field(default="confirmed", pattern=r"^[a-z][a-z0-9_\-]{0,39}$")


class HeldQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sha256: list[str] = Field(max_length=1000)


@bp.post("/api/posts")
@auth.login_required("teacher")
def create_post() -> Any:
    """Upload a post: 201 with a receipt per stored file, or a 4xx saying why not."""
    identity = auth.current_identity()
    fields = {k: v for k, v in request.form.items() if k in PostForm.model_fields and v}
    form = PostForm.model_validate(fields)
    auth.require_role(identity, form.school, "teacher")
    ports = current_ports()
    device = handlers.authorise_upload(
        ports,
        device_token(),
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
        handlers.Upload(f.filename or "", f.stream)
        for f in request.files.getlist("photos")
    ]
    receipt = handlers.submit_post(
        ports, draft, uploads, post_id=ports.new_id(), device=device
    )
    return jsonify(
        post_id=receipt.post_id,
        queued=not receipt.published,
        device_id=device.device_id,
        delete_from_device=device.must_delete,
        deletion_due_at=iso(receipt.deletion_due_at),
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
    ports = current_ports()
    held = ports.ledger.held(identity.user_id, {s.lower() for s in query.sha256})
    open_ = {
        o.receipt_id
        for o in ports.obligations.find(owner=identity.username, open_only=True)
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
    ports = current_ports()
    mine = ports.obligations.find(
        owner=identity.username, receipt_id=receipt_id, open_only=False
    )
    as_it = False
    if not mine:
        found = ports.obligations.find(receipt_id=receipt_id, open_only=False)
        if not found:
            raise NotFoundError("no deletion is expected for that receipt")
        auth.require_role(identity, found[0].school_id, *IT)
        as_it = True
    closed = handlers.confirm_deletion(
        ports,
        receipt_id,
        deleted_at=body.deleted_at,
        method="it-resolved" if as_it else body.method,
        username=identity.username,
        actor=identity.username,
        as_it=as_it,
    )
    return jsonify(obligation_json(closed, ports.now()))


@bp.get("/api/obligations")
@auth.login_required("teacher", *IT)
def list_obligations() -> Any:
    """Open deletion obligations: the caller's own (``?mine=1``) or, for IT, every
    one of the schools they audit (``?all=1`` includes closed ones)."""
    identity = auth.current_identity()
    ports = current_ports()
    open_only = request.args.get("all") != "1"
    if request.args.get("mine") == "1":
        found = ports.obligations.find(owner=identity.username, open_only=True)
    else:
        if not any(identity.has(r) for r in IT):
            raise ForbiddenError("needs role: it_auditor or admin")
        schools = auth.visible_schools(identity, *IT)
        found = [
            o
            for o in ports.obligations.find(open_only=open_only)
            if schools is None or o.school_id in schools
        ]
    now = ports.now()
    return jsonify(obligations=[obligation_json(o, now) for o in found])
