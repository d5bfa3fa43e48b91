"""Approval's HTTP side: the queue, the post page, previews and the decision command."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request, url_for
from kombu.exceptions import KombuError
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from services.approval import domain
from shared import auth, contracts, web
from shared.bus import UnroutableError
from shared.errors import (
    DomainError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)

logger = logging.getLogger(__name__)
bp = Blueprint("approval", __name__, template_folder="templates")
SERVICE = "approval"
OVERSEERS = ("approver", "admin")  # who sees a school's posts besides their author
ANYONE = ("teacher", "approver", "admin")


class BusUnavailableError(DomainError):
    code = "bus_unavailable"
    status = 503


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: StrictBool
    reason: str = Field(default="", max_length=domain.MAX_REASON)


def _post(post_id: str) -> domain.Post:
    """The post if the caller may see it: its author, or its school's approver/admin."""
    post: domain.Post | None = web.ports().book.get(post_id)
    if post is None:
        raise NotFoundError("no such post")
    identity = auth.current_identity()
    if post.author_id != identity.user_id:
        auth.require_role(identity, post.school_id, *OVERSEERS)
    return post


def _summary(post: domain.Post) -> dict[str, Any]:
    return {
        "post_id": post.post_id,
        "school_id": post.school_id,
        "author_id": post.author_id,
        "caption": post.caption,
        "accounts": list(post.accounts),
        "status": post.status,
        "reason": post.reason,
        "decided_by": post.decided_by,
        "created_at": post.created_at.isoformat(),
        "photos": len(post.photo_ids),
    }


def _detail(post: domain.Post) -> dict[str, Any]:
    reports = web.ports().reports.for_post(post.post_id)
    photos = []
    for photo_id in post.photo_ids:
        report = reports.get(photo_id)
        photos.append(
            {
                "photo_id": photo_id,
                "redacted": bool(report and report.redacted),
                "refused": report.refused if report else None,
                "preview_url": url_for(
                    "approval.preview", post_id=post.post_id, photo_id=photo_id
                )
                if report and report.preview_key
                else None,
                "faces": [
                    {
                        "index": f.index,
                        "masked": f.masked,
                        "reason": f.reason,
                        "box": list(f.box) if f.box else None,
                        "pupil_id": f.pupil_id,
                    }
                    for f in (report.faces if report else ())
                ],
            }
        )
    history = [
        {
            "from": t.from_status,
            "to": t.to_status,
            "by": t.by,
            "at": t.at.isoformat(),
            "reason": t.reason,
        }
        for t in post.history
    ]
    return {**_summary(post), "photos": photos, "history": history}


@bp.get("/api/posts")
@auth.login_required(*ANYONE)
def list_posts() -> Any:
    """Approvers/admins: their schools' posts; anyone with ``mine=1``: their own."""
    identity = auth.current_identity()
    status = request.args.get("status") or None
    if status is not None and status not in domain.STATUSES:
        raise InvalidInputError(f"unknown status {status}")
    book = web.ports().book
    if request.args.get("mine") in ("1", "true", "yes"):
        posts = book.find(author_id=identity.user_id, status=status)
    else:
        schools = auth.visible_schools(identity, *OVERSEERS)
        if schools == set():
            raise ForbiddenError("needs role approver or admin (or ask for mine=1)")
        posts = book.find(schools=schools, status=status)
    return jsonify(posts=[_summary(p) for p in posts])


@bp.get("/api/posts/<post_id>")
@auth.login_required(*ANYONE)
def get_post(post_id: str) -> Any:
    return jsonify(_detail(_post(post_id)))


@bp.post("/api/posts/<post_id>/decision")
@auth.login_required("approver")
def decide(post_id: str) -> Any:
    """Send the decision to approval's worker: 202 with the command id."""
    identity = auth.current_identity()
    body = DecisionBody.model_validate(web.json_body())
    if not body.approve and not body.reason.strip():
        raise domain.ReasonRequiredError("say why the post is rejected")
    post = web.ports().book.get(post_id)
    if post is None:
        raise NotFoundError("no such post")
    auth.require_role(identity, post.school_id, "approver")
    domain.check_decision(post, identity.user_id, body.approve, body.reason)
    command = contracts.RecordDecision(
        post_id=post_id,
        approver_id=identity.user_id,
        approve=body.approve,
        reason=body.reason.strip(),
        school_id=post.school_id,
    )
    envelope = contracts.seal(command, producer=SERVICE, actor=identity.user_id)
    try:
        web.ports().publisher.publish([envelope])
    except (OSError, KombuError, UnroutableError) as exc:
        logger.error("decision on %s not sent: %s", post_id, type(exc).__name__)
        raise BusUnavailableError("the decision could not be sent; try again") from exc
    logger.info("decision on post %s sent", post_id, extra={"command_id": envelope.id})
    return jsonify(command_id=envelope.id), 202


@bp.get("/")
@auth.login_required("approver")
def queue() -> str:
    identity = auth.current_identity()
    posts = web.ports().book.find(
        schools=auth.visible_schools(identity, "approver"), status=domain.AWAITING
    )
    return render_template("approval/queue.html", posts=posts)


@bp.get("/posts/<post_id>")
@auth.login_required(*ANYONE)
def post_page(post_id: str) -> str:
    identity = auth.current_identity()
    post = _post(post_id)
    can_decide = (
        identity.has("approver", post.school_id)
        and identity.user_id != post.author_id
        and post.status == domain.AWAITING
    )
    return render_template(
        "approval/post.html", post=_detail(post), can_decide=can_decide
    )


@bp.get("/posts/<post_id>/photos/<photo_id>/preview.jpg")
@auth.login_required(*ANYONE)
def preview(post_id: str, photo_id: str) -> Response:
    """The annotated, redacted preview, streamed so no preview URL can leak."""
    post = _post(post_id)
    report = web.ports().reports.for_post(post.post_id).get(photo_id)
    if photo_id not in post.photo_ids or report is None or not report.preview_key:
        raise NotFoundError("no preview for this photo")
    data = web.ports().previews.get(report.preview_key)
    return Response(
        data, mimetype="image/jpeg", headers={"Cache-Control": "private, no-store"}
    )
