"""Approval's HTTP side: the queue, the post page (with each target account's fit and
state), previews and the decision command."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request, url_for
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from services.approval import domain, handlers
from services.approval.bootstrap import Ports
from shared import auth, contracts, web
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


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: StrictBool
    reason: str = Field(default="", max_length=domain.MAX_REASON)
    # photo id -> {revision, sha256} of what the approver looked at (required to
    # approve: the post page sends it; GET /api/posts/<id> gives both per photo)
    seen: dict[str, contracts.SeenPhoto] = Field(default_factory=dict, max_length=50)


class RevisionBody(BaseModel):
    """An approver's edits to one photo, in the redacted preview's pixels."""

    model_config = ConfigDict(extra="forbid")

    add_masks: list[tuple[int, int, int, int]] = Field(default=[], max_length=50)
    named: dict[int, str] = Field(default={}, max_length=50)


OCR_WARNING = (
    "Text recognition (OCR) is unavailable: text in this photo was NOT checked for "
    "pupils' names. Look at every sign, badge and certificate yourself."
)
HANDWRITING_NOTE = "Handwriting is mostly not read by OCR: check any handwriting."


def _post(post_id: str) -> domain.Post:
    """The post if the caller may see it: its author, or its school's approver/admin."""
    post: domain.Post | None = web.ports().book.get(post_id)
    if post is None:
        raise NotFoundError("no such post")
    identity = auth.current_identity()
    if post.author_id != identity.user_id:
        auth.require_role(identity, post.school_id, *OVERSEERS)
    return post


def _summaries(posts: list[domain.Post]) -> list[dict[str, Any]]:
    """The posts, each with its state per target account (two queries in all)."""
    book = web.ports().book
    ids = [p.post_id for p in posts]
    fits, deliveries = book.fits(ids), book.deliveries(ids)
    return [
        _summary(p, fits.get(p.post_id, {}), deliveries.get(p.post_id, {}))
        for p in posts
    ]


def _summary(
    post: domain.Post,
    fits: dict[str, domain.Fit],
    deliveries: dict[str, domain.Delivery],
) -> dict[str, Any]:
    return {
        "post_id": post.post_id,
        "school_id": post.school_id,
        "author_id": post.author_id,
        "caption": post.caption,
        "accounts": list(post.accounts),
        "status": post.status,
        "reason": domain.without_paths(post.reason),
        "decided_by": post.decided_by,
        "created_at": post.created_at.isoformat(),
        "photos": len(post.photo_ids),
        "targets": [_target(a, fits.get(a), deliveries.get(a)) for a in post.accounts],
    }


FIT_WORDS = {
    domain.FITS: "Fits",
    domain.DOES_NOT_FIT: "Does not fit",
    domain.CHECKING: "Checking…",
    domain.UNCHECKED: "Not checked",
}


def _target(
    account_id: str, fit: domain.Fit | None, delivery: domain.Delivery | None
) -> dict[str, Any]:
    """One target account: whether the post fits it and its state there, in words.
    Never a server path: only a web address is ever a link."""
    state = domain.fit_state(fit)
    return {
        "account_id": account_id,
        "name": (fit.name if fit else "") or account_id,
        "platform": (fit.platform if fit else "")
        or (delivery.platform if delivery else ""),
        "fit": {
            "state": state,
            "text": FIT_WORDS[state],
            "problems": list(fit.problems) if fit else [],
            "note": fit.note if fit else "",
        },
        "delivery": None
        if delivery is None
        else {
            "state": delivery.state,
            "reason": domain.without_paths(delivery.reason),
            "text": domain.describe_delivery(delivery),
            "url": domain.public_url(delivery.url),
            "attempts": delivery.attempts,
            "retry_at": delivery.retry_at.isoformat() if delivery.retry_at else None,
            "at": delivery.at.isoformat(),
        },
    }


def _warnings(report: domain.PhotoReport | None) -> list[str]:
    if report is None or not report.redacted:
        return []
    out = []
    if report.ocr != "ok":
        out.append(OCR_WARNING)
    visible = [t for t in report.texts if not t.masked]
    if visible:
        out.append(
            f"Certificate text visible: {len(visible)} region(s) of readable text "
            "are shown; check none names a pupil."
        )
    if any(t.masked and t.reason == "pupil_name" for t in report.texts):
        out.append("A pupil's name was found in the photo and masked.")
    return out


STAGES = {
    domain.REDACTING: "while its photos were being redacted",
    domain.AWAITING: "while it awaited approval",
    domain.APPROVED: "after it was approved, before it went live",
}


def _notice_text(notice: domain.Notice) -> str:
    """What the approver reads (pupil by id; the page adds initials and class)."""
    if notice.cause == "final_check":
        return (
            "Consent changed since upload: the final check before going live found "
            "that a shown pupil's consent is no longer what you approved. The post "
            "was stopped and its photos re-rendered."
        )
    what = "; ".join(notice.changes) or "consent changed"
    if notice.cause == "restricted":
        what = "may no longer be shown"
    stage = STAGES.get(notice.stage, "")
    return (
        f"Consent changed since upload ({what}) {stage}. The photos showing this "
        "pupil were re-rendered with today's consent."
    ).replace(" .", ".")


def _detail(post: domain.Post) -> dict[str, Any]:
    reports = web.ports().reports.for_post(post.post_id)
    book = web.ports().book
    fits = book.fits([post.post_id]).get(post.post_id, {})
    deliveries = book.deliveries([post.post_id]).get(post.post_id, {})
    photos = []
    for photo_id in post.photo_ids:
        report = reports.get(photo_id)
        photos.append(
            {
                "photo_id": photo_id,
                "redacted": bool(report and report.redacted),
                "refused": report.refused if report else None,
                "revision": report.revision if report else 0,
                # what an approval must name as seen (with the revision)
                "sha256": (report.sha256 or "") if report else "",
                "rerendering": bool(report and report.rerendering),
                "width": report.width if report else 0,
                "height": report.height if report else 0,
                "ocr": report.ocr if report else None,
                "warnings": _warnings(report),
                "texts": [
                    {
                        "index": t.index,
                        "box": list(t.box),
                        "masked": t.masked,
                        "reason": t.reason,
                    }
                    for t in (report.texts if report else ())
                ],
                "added_masks": [
                    list(b) for b in (report.added_masks if report else ())
                ],
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
                        "consent_versions": list(f.consent_versions),
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
            "reason": domain.without_paths(t.reason),
        }
        for t in post.history
    ]
    return {
        **_summary(post, fits, deliveries),
        "photos": photos,
        "does_not_fit": domain.misfits(post, fits),
        "fit_checking": any(
            domain.fit_state(fits.get(a)) == domain.CHECKING for a in post.accounts
        ),
        "history": history,
        "rerendering": any(p["rerendering"] for p in photos),
        "round": post.round,
        "consent_notices": [
            {
                "at": n.at.isoformat(),
                "pupil_id": n.pupil_id,
                "cause": n.cause,
                "stage": n.stage,
                "changes": list(n.changes),
                "text": _notice_text(n),
            }
            for n in post.notices
        ],
        "caption_warnings": domain.caption_warnings(post.caption),
        "handwriting_note": HANDWRITING_NOTE,
    }


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
    return jsonify(posts=_summaries(posts))


@bp.get("/api/posts/<post_id>")
@auth.login_required(*ANYONE)
def get_post(post_id: str) -> Any:
    return jsonify(_detail(_post(post_id)))


@bp.post("/api/posts/<post_id>/decision")
@auth.login_required("approver")
def decide(post_id: str) -> Any:
    """Apply the decision now: 200 with the post's new status, or a 4xx saying why
    not (409 if the photos changed since the approver looked, or someone decided
    first). A refused decision is recorded in the trail all the same."""
    identity = auth.current_identity()
    body = DecisionBody.model_validate(web.json_body())
    if not body.approve and not body.reason.strip():
        raise domain.ReasonRequiredError("say why the post is rejected")
    ports: Ports = web.ports()
    post = ports.book.get(post_id)
    if post is None:
        raise NotFoundError("no such post")
    auth.require_role(identity, post.school_id, "approver")
    if body.approve and not body.seen and post.status == domain.AWAITING:
        raise InvalidInputError(
            "say what you approve: each photo's revision and sha256 as shown"
        )
    command = contracts.RecordDecision(
        post_id=post_id,
        approver_id=identity.user_id,
        approve=body.approve,
        reason=body.reason.strip(),
        school_id=post.school_id,
        seen=body.seen,
    )
    try:
        with ports.unit() as unit:
            results = handlers.decide(
                command,
                book=unit.posts,
                reports=unit.reports,
                fits=unit.posts,
                now=ports.now,
            )
            record = unit.emit(command, actor=identity.username)
            for message in results:
                unit.emit(message, actor=identity.username)
            unit.commit()
    except DomainError as exc:
        with ports.unit() as unit:  # the trail keeps refused decisions too
            unit.emit(
                handlers.refused(command, post.school_id, exc),
                actor=identity.username,
            )
            unit.commit()
        logger.info("decision on post %s refused: %s", post_id, exc.code)
        raise
    status = "approved" if body.approve else "rejected"
    logger.info("post %s %s", post_id, status, extra={"command_id": record.id})
    return jsonify(command_id=record.id, status=status), 200


@bp.post("/api/posts/<post_id>/photos/<photo_id>/revisions")
@auth.login_required("approver")
def revise(post_id: str, photo_id: str) -> Any:
    """Ask redaction to re-render a photo from its original with extra masks (in the
    preview's pixels) and faces named as pupils (shown only if consent allows):
    202 with the command id and the revision number."""
    identity = auth.current_identity()
    body = RevisionBody.model_validate(web.json_body())
    if not body.add_masks and not body.named:
        raise InvalidInputError("add a mask region or name a face")
    post = web.ports().book.get(post_id)
    if post is None or photo_id not in post.photo_ids:
        raise NotFoundError("no such photo")
    auth.require_role(identity, post.school_id, "approver")
    domain.check_revision(post, identity.user_id)
    report = web.ports().reports.for_post(post_id).get(photo_id)
    if report is None or not report.redacted:
        raise NotFoundError("this photo has no redacted copy to edit")
    for left, top, right, bottom in body.add_masks:
        if not (
            0 <= left < right <= report.width and 0 <= top < bottom <= report.height
        ):
            raise InvalidInputError("a mask region lies outside the photo")
    known = {f.index for f in report.faces}
    if not set(body.named) <= known:
        raise InvalidInputError("no such face in this photo")
    if any(not pupil.strip() or len(pupil) > 64 for pupil in body.named.values()):
        raise InvalidInputError("name each face with a pupil id")
    command = contracts.ReviseRedaction(
        photo_id=photo_id,
        post_id=post_id,
        school_id=post.school_id,
        revision=report.next_revision,
        add_masks=body.add_masks,
        named={i: p.strip() for i, p in body.named.items()},
        requested_by=identity.user_id,
    )
    ports: Ports = web.ports()
    with ports.unit() as unit:  # the request and who named a face, with the command
        kept = unit.reports.for_post(post_id).get(photo_id, report)
        namer = identity.user_id if command.named else None
        unit.reports.put(domain.request_revision(kept, command.revision, namer))
        envelope = unit.emit(command, actor=identity.username)
        unit.commit()
    logger.info("revision on post %s sent", post_id, extra={"command_id": envelope.id})
    return jsonify(command_id=envelope.id, revision=command.revision), 202


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
    )  # the same rule lets them edit the redaction
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


# Where is this pupil shown? (issue 8 section 3): every post whose newest rendering
# shows the pupil unmasked, with its state on each account. Ids only: the pupil's
# name stays in consent (its page calls this from the browser).
PUPIL_READERS = ("admin", "it_auditor")


def _pupil_posts(school: str, pupil_id: str) -> list[dict[str, Any]]:
    ports = web.ports()
    post_ids = ports.reports.posts_showing(school, pupil_id)
    posts = [p for p in (ports.book.get(i) for i in post_ids) if p is not None]
    states = ports.book.deliveries([p.post_id for p in posts])
    out = []
    for post in sorted(posts, key=lambda p: p.created_at, reverse=True):
        accounts = states.get(post.post_id, {})
        out.append(
            {
                "post_id": post.post_id,
                "status": post.status,
                "created_at": post.created_at.isoformat(),
                "accounts": [
                    {
                        "account": a,
                        "state": accounts[a].state if a in accounts else "not_sent",
                        "at": accounts[a].at.isoformat() if a in accounts else None,
                        "url": (accounts[a].url if a in accounts else "")
                        if (a in accounts and accounts[a].url.startswith("http"))
                        else "",
                    }
                    for a in post.accounts
                ],
            }
        )
    return out


@bp.get("/api/schools/<school>/pupils/<pupil_id>/posts")
@auth.login_required(*PUPIL_READERS)
def pupil_posts(school: str, pupil_id: str) -> Any:
    """Every post showing the pupil, and its state on each account."""
    auth.require_role(auth.current_identity(), school, *PUPIL_READERS)
    return jsonify(pupil_id=pupil_id, posts=_pupil_posts(school, pupil_id))


@bp.get("/api/schools/<school>/pupils/<pupil_id>/posts.csv")
@auth.login_required(*PUPIL_READERS)
def pupil_posts_csv(school: str, pupil_id: str) -> Response:
    """The same, for the DPO: one row per post and account."""
    import csv
    import io

    auth.require_role(auth.current_identity(), school, *PUPIL_READERS)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["pupil_id", "post_id", "post_status", "account", "state", "at", "url"]
    )
    for post in _pupil_posts(school, pupil_id):
        for account in post["accounts"]:
            writer.writerow(
                [
                    pupil_id,
                    post["post_id"],
                    post["status"],
                    account["account"],
                    account["state"],
                    account["at"] or "",
                    account["url"],
                ]
            )
    response = Response(out.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="posts-showing-{pupil_id}.csv"'
    )
    return response
