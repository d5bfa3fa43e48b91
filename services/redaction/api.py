"""Redaction's JSON API: the status of one photo."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from shared import auth, web
from shared.errors import NotFoundError

bp = Blueprint("redaction", __name__)

VIEWERS = ("approver", "admin", "teacher")


@bp.get("/api/photos/<photo_id>")
@auth.login_required(*VIEWERS)
def photo_status(photo_id: str) -> Any:
    record = web.ports().records.find(photo_id)
    if record is None:
        raise NotFoundError(f"no photo {photo_id}")
    auth.require_role(auth.current_identity(), record.school_id, *VIEWERS)
    redaction = record.redaction
    masked = sum(o.masked for o in redaction.faces) if redaction else None
    return jsonify(
        photo_id=record.photo_id,
        post_id=record.post_id,
        school_id=record.school_id,
        status=record.status,
        faces=len(record.faces),
        masked=masked,
        shown=None if masked is None else len(record.faces) - masked,
        width=redaction.width if redaction else record.width,
        height=redaction.height if redaction else record.height,
        refusal=record.refusal.reason if record.refusal else None,
    )
