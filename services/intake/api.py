"""Intake's HTTP side: the teacher's upload page and ``POST /api/posts``."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from flask import Blueprint, jsonify, render_template, request
from pydantic import BaseModel, ConfigDict, Field

from services.intake import domain, submit
from shared import auth, web

logger = logging.getLogger(__name__)
bp = Blueprint("intake", __name__, template_folder="templates")


class PostForm(BaseModel):
    """The non-file fields of an upload."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    school: str = Field(pattern=domain.SCHOOL.pattern)
    caption: str = Field(default="", max_length=domain.MAX_CAPTION)
    purpose: str = Field(default="social_media", pattern=domain.PURPOSE.pattern)
    publish_on: date | None = None


@bp.get("/")
@auth.login_required("teacher")
def index() -> str:
    identity = auth.current_identity()
    schools = sorted(identity.schools("teacher"))
    return render_template("intake/index.html", schools=schools)


@bp.post("/api/posts")
@auth.login_required("teacher")
def create_post() -> Any:
    """Upload a post: 201 with a receipt per stored file, or a 4xx saying why not."""
    identity = auth.current_identity()
    fields = {k: v for k, v in request.form.items() if k in PostForm.model_fields and v}
    form = PostForm.model_validate(fields)
    auth.require_role(identity, form.school, "teacher")
    draft = domain.Draft(
        school_id=form.school,
        author_id=identity.user_id,
        caption=form.caption,
        purpose=form.purpose,
        accounts=domain.split_accounts(request.form.getlist("accounts")),
        publish_on=form.publish_on,
    )
    ports = web.ports()
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
    )
    return jsonify(
        post_id=receipt.post_id,
        queued=not receipt.published,
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
