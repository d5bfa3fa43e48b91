"""Approval's handlers: one per incoming message; each returns the messages to send."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from services.approval import domain
from services.approval.ports import DeliveryBoard, FitAnswers, PhotoReports, PostBook
from shared import contracts
from shared.errors import ConcurrentUpdateError, DomainError, NotFoundError

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def open_post(
    event: contracts.PostSubmitted,
    *,
    book: PostBook,
    reports: PhotoReports,
    fits: FitAnswers,
    now: Clock,
) -> list[contracts.Message]:
    """Create the post (status redacting); photos reported early settle it at once,
    and a post awaiting approval is checked against its accounts' limits."""
    post = book.get(event.post_id)
    if post is None:
        post = domain.new_post(
            event.post_id,
            event.school_id,
            event.author_id,
            event.caption,
            tuple(event.accounts),
            tuple(p.photo_id for p in event.photos),
            now(),
        )
        post = domain.settle_redaction(post, reports.for_post(post.post_id), now())
        book.save(post)
    return _check_fit(post, reports, fits)


def photo_redacted(
    event: contracts.PhotoRedacted,
    *,
    book: PostBook,
    reports: PhotoReports,
    fits: FitAnswers,
    now: Clock,
) -> list[contracts.Message]:
    """Keep the photo's newest report; with every photo redacted the post awaits
    approval and publishing is asked whether it fits each target account (again
    after each re-rendering). An older revision arriving late is ignored."""
    faces = tuple(
        domain.Face(
            f.index, f.masked, f.reason, f.box, f.pupil_id, tuple(f.consent_versions)
        )
        for f in event.faces
    )
    arrived = domain.PhotoReport(
        photo_id=event.photo_id,
        post_id=event.post_id,
        redacted_key=event.redacted_key,
        preview_key=event.preview_key,
        sha256=event.sha256,
        faces=faces,
        texts=tuple(
            domain.Text(t.index, t.box, t.masked, t.reason) for t in event.texts
        ),
        ocr=event.ocr,
        revision=event.revision,
        added_masks=tuple(event.added_masks),
        width=event.width,
        height=event.height,
    )
    kept = reports.for_post(event.post_id).get(event.photo_id)
    report = domain.newest(kept, arrived)
    if report != kept:
        reports.put(report)
    post = _settle(event.post_id, book=book, reports=reports, now=now)
    if post is None or report.revision != arrived.revision:
        return []  # the post comes later (open_post asks), or this one is stale
    return _check_fit(post, reports, fits)


def _check_fit(
    post: domain.Post, reports: PhotoReports, fits: FitAnswers
) -> list[contracts.Message]:
    """Ask publishing whether a post awaiting approval, with every photo's newest
    rendering in, fits each target account; until it answers the page says
    "checking…"."""
    photos = reports.for_post(post.post_id)
    if post.status != domain.AWAITING or not post.accounts:
        return []
    if any(r.rerendering for r in photos.values()):
        return []  # asked again when the new rendering arrives
    images = [
        contracts.FitImage(photo_id=p, redacted_key=photos[p].redacted_key or "")
        for p in post.photo_ids
        if p in photos and photos[p].redacted
    ]
    if len(images) != len(post.photo_ids):
        return []
    fits.ask_fit(post.post_id, post.accounts)
    return [
        contracts.CheckFit(
            post_id=post.post_id,
            school_id=post.school_id,
            caption=post.caption,
            accounts=list(post.accounts),
            images=images,
        )
    ]


def fit_checked(
    event: contracts.PostFitChecked, *, book: PostBook, fits: FitAnswers
) -> list[contracts.Message]:
    """Keep publishing's answer per target account, for the approver's page and
    the approval rule (a post that does not fit every account is not approved)."""
    post = book.get(event.post_id)
    if post is None or post.school_id != event.school_id:
        logger.warning("fit answer for unknown post %s ignored", event.post_id)
        return []
    answers = [
        domain.Fit(a.account_id, a.fits, a.platform, a.name, tuple(a.problems), a.note)
        for a in event.accounts
        if a.account_id in post.accounts
    ]
    fits.answer_fit(post.post_id, answers)
    return []


def revision_requested(
    command: contracts.ReviseRedaction, *, reports: PhotoReports
) -> list[contracts.Message]:
    """An approver asked redaction for a new revision: until it arrives the photo is
    shown as being re-rendered and the post cannot be approved."""
    kept = reports.for_post(command.post_id).get(command.photo_id)
    if kept is None:
        logger.warning("revision of unknown photo %s ignored", command.photo_id)
        return []
    changed = domain.request_revision(kept, command.revision)
    if changed != kept:
        reports.put(changed)
    return []


def photo_refused(
    event: contracts.PhotoRefused, *, book: PostBook, reports: PhotoReports, now: Clock
) -> list[contracts.Message]:
    """A photo that cannot be redacted safely rejects the whole post."""
    reports.put(
        domain.PhotoReport(
            photo_id=event.photo_id,
            post_id=event.post_id,
            refused=event.reason or "refused",
        )
    )
    post = _settle(event.post_id, book=book, reports=reports, now=now)
    if post is not None and (post.status != domain.REJECTED or post.decided_by):
        return []  # decided otherwise before this refusal: nothing to announce
    reason = post.reason if post else f"photo refused: {event.reason}"
    return [
        contracts.PostRejected(
            post_id=event.post_id,
            school_id=event.school_id,
            reason=reason,
            rejected_by=None,
        )
    ]


def decide(
    command: contracts.RecordDecision,
    *,
    book: PostBook,
    reports: PhotoReports,
    fits: FitAnswers,
    now: Clock,
) -> list[contracts.Message]:
    """Apply an approver's decision, or raise why not (a ``DomainError``): never by
    its author, never on anything but the photos the approver saw (``seen``), never by
    whoever named a face in it, never while an answer says it does not fit one of its
    accounts. The post's version makes one of two concurrent decisions lose
    (``ConcurrentUpdateError``). Returns the decision's results."""
    post = book.get(command.post_id)
    if post is None:
        raise NotFoundError("no such post")
    seen = {
        photo_id: domain.Seen(s.revision, s.sha256)
        for photo_id, s in command.seen.items()
    }
    post = domain.decide(
        post,
        command.approver_id,
        command.approve,
        command.reason,
        now(),
        reports.for_post(post.post_id),
        fits.fits([post.post_id]).get(post.post_id, {}),
        (seen or None) if command.approve else None,  # none given: an older release
    )
    book.save(post)
    return _outcome(post, command, reports)


def refused(
    command: contracts.RecordDecision, school_id: str, error: DomainError
) -> contracts.DecisionRefused:
    """The trail's record of a decision that did not happen, and why."""
    return contracts.DecisionRefused(
        post_id=command.post_id,
        school_id=school_id,
        approver_id=command.approver_id,
        approve=command.approve,
        code=error.code,
        reason=error.message,
    )


def record_decision(
    command: contracts.RecordDecision,
    *,
    book: PostBook,
    reports: PhotoReports,
    fits: FitAnswers,
    now: Clock,
) -> list[contracts.Message]:
    """A decision from the bus: the API applies decisions itself and sends this as
    the trail's record, so one the post already holds changes nothing; one sent by
    an older release is applied now, or recorded as refused."""
    post = book.get(command.post_id)
    if post is None:
        logger.warning("decision for unknown post %s ignored", command.post_id)
        return []
    if domain.decided_by_this(post, command.approver_id, command.approve):
        return []
    try:
        return decide(command, book=book, reports=reports, fits=fits, now=now)
    except ConcurrentUpdateError:
        raise  # retried: someone saved the post meanwhile
    except DomainError as exc:
        logger.warning("decision on post %s refused: %s", post.post_id, exc.code)
        return [refused(command, post.school_id, exc)]


def _outcome(
    post: domain.Post, command: contracts.RecordDecision, reports: PhotoReports
) -> list[contracts.Message]:
    if not command.approve:
        return [
            contracts.PostRejected(
                post_id=post.post_id,
                school_id=post.school_id,
                reason=post.reason,
                rejected_by=post.decided_by,
            )
        ]
    photos = reports.for_post(post.post_id)
    images = [
        contracts.ApprovedImage(
            photo_id=p,
            redacted_key=photos[p].redacted_key or "",
            sha256=photos[p].sha256 or "",
            shown=[
                contracts.ShownFace(
                    pupil_id=f.pupil_id, consent_versions=list(f.consent_versions)
                )
                for f in photos[p].faces
                if not f.masked and f.pupil_id
            ],
        )
        for p in post.photo_ids
    ]
    return [
        contracts.PostApproved(
            post_id=post.post_id,
            school_id=post.school_id,
            author_id=post.author_id,
            approved_by=command.approver_id,
            caption=post.caption,
            accounts=list(post.accounts),
            images=images,
            round=max(post.round, 1),
        )
    ]


def post_published(
    event: contracts.PostPublished,
    *,
    book: PostBook,
    deliveries: DeliveryBoard,
    now: Clock,
) -> list[contracts.Message]:
    """Published once every target account has it; the account shows it live
    unless ``delivery.updated`` already said more."""
    post = book.get(event.post_id)
    if post is None:
        logger.warning("publication of unknown post %s ignored", event.post_id)
        return []
    at = now()
    changed = domain.record_published(post, event.account, at)
    if changed != post:
        book.save(changed)
    if event.account in post.accounts:
        live = domain.Delivery(
            post.post_id,
            event.account,
            post.school_id,
            domain.LIVE,
            at,
            platform=event.target,
            url=domain.public_url(event.location),
            timed=False,
        )
        deliveries.record_delivery(live)
    return []


def publish_failed(
    event: contracts.PublishFailed,
    *,
    book: PostBook,
    deliveries: DeliveryBoard,
    now: Clock,
) -> list[contracts.Message]:
    """A target account failed for good: the post failed (with the reason), and the
    account shows the failure unless ``delivery.updated`` already said more."""
    post = book.get(event.post_id)
    if post is None:
        logger.warning("failure of unknown post %s ignored", event.post_id)
        return []
    at = now()
    changed = domain.record_failed(post, event.account, event.reason, at)
    if changed != post:
        book.save(changed)
    if event.account in post.accounts:
        failed = domain.Delivery(
            post.post_id,
            event.account,
            post.school_id,
            "failed",
            at,
            reason=event.reason,
            detail=event.detail,
            timed=False,
        )
        deliveries.record_delivery(failed)
    return []


def delivery_updated(
    event: contracts.DeliveryUpdated, *, book: PostBook, deliveries: DeliveryBoard
) -> list[contracts.Message]:
    """Keep the post's newest state on the account (publishing's ``at`` orders them:
    a redelivered or older update changes nothing). Only a web address is kept as
    its link, never a server path."""
    post = book.get(event.post_id)
    if (
        post is None
        or post.school_id != event.school_id
        or event.account_id not in post.accounts
    ):
        logger.warning("delivery update for unknown post %s ignored", event.post_id)
        return []
    state = domain.Delivery(
        post.post_id,
        event.account_id,
        post.school_id,
        event.state,
        _utc(event.at),
        platform=event.platform,
        reason=event.reason,
        detail=event.detail,
        url=domain.public_url(event.url),
        attempts=event.attempts,
        retry_at=_utc(event.retry_at) if event.retry_at else None,
    )
    if deliveries.record_delivery(state):
        logger.info("post %s on %s: %s", post.post_id, event.account_id, event.state)
    return []


def _utc(at: datetime) -> datetime:
    """Publishing sends aware times; a naive one is read as UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _settle(
    post_id: str, *, book: PostBook, reports: PhotoReports, now: Clock
) -> domain.Post | None:
    post = book.get(post_id)
    if post is None:
        return None  # reported before the post arrived: open_post settles it
    settled = domain.settle_redaction(post, reports.for_post(post_id), now())
    if settled != post:
        book.save(settled)
    return settled


def consent_changed(
    event: contracts.ConsentChanged,
    *,
    book: PostBook,
    reports: PhotoReports,
    now: Clock,
) -> list[contracts.Message]:
    """A pupil's consent changed. Every post of the school that shows them and is
    not live yet is re-decided: its photos showing the pupil are re-rendered from the
    original (consent decides again: the pupil is masked if they must be), the
    approver is told what changed, and an approved post is recalled from publishing
    and returned to the approver."""
    at = now()
    out: list[contracts.Message] = []
    changes = domain.describe((s.purpose, s.platform, s.state) for s in event.scopes)
    for post_id in reports.posts_showing(event.school_id, event.pupil_id):
        post = book.get(post_id)
        if post is None or post.school_id != event.school_id:
            continue
        if post.status not in domain.RECHECKED:
            continue
        scopes = [(sc.purpose, sc.state, sc.version) for sc in event.scopes]
        photos = reports.for_post(post_id)
        if not domain.concerns(photos, event.pupil_id, event.cause, scopes):
            logger.info("post %s: consent change already accounted for", post_id)
            continue
        notice = domain.Notice(at, event.pupil_id, event.cause, post.status, changes)
        out += _recheck(post, notice, {event.pupil_id}, book=book, reports=reports)
    return out


def publication_held(
    event: contracts.PublicationHeld,
    *,
    book: PostBook,
    reports: PhotoReports,
    now: Clock,
) -> list[contracts.Message]:
    """Publishing's final gate found consent changed before the post went live: the
    post goes back to the approver with its photos re-rendered."""
    post = book.get(event.post_id)
    if post is None or post.status != domain.APPROVED or post.round != event.round:
        return []  # already returned (e.g. by the consent change itself)
    at = now()
    notices = [
        domain.Notice(at, pupil, "final_check", post.status, (event.reason,))
        for pupil in event.pupils
    ] or [domain.Notice(at, "", "final_check", post.status, (event.reason,))]
    out: list[contracts.Message] = []
    first, *rest = notices
    out += _recheck(
        post, first, set(event.pupils) or None, book=book, reports=reports, recall=False
    )
    if rest:
        post = book.get(event.post_id)
        if post is not None:
            book.save(replace(post, notices=(*post.notices, *rest)))
    return out


def _recheck(
    post: domain.Post,
    notice: domain.Notice,
    pupils: set[str] | None,
    *,
    book: PostBook,
    reports: PhotoReports,
    recall: bool = True,
) -> list[contracts.Message]:
    changed, recalled = domain.consent_changed(post, notice, notice.at)
    photos = domain.rerender(reports.for_post(post.post_id), pupils)
    for report in photos:
        reports.put(report)
    book.save(changed)
    logger.info(
        "post %s: consent changed for a shown pupil; %d photo(s) re-rendered%s",
        post.post_id,
        len(photos),
        ", recalled from publishing" if recalled else "",
    )
    out: list[contracts.Message] = [
        contracts.ReviseRedaction(
            photo_id=r.photo_id,
            post_id=r.post_id,
            school_id=post.school_id,
            revision=r.requested_revision,
            requested_by="consent",
        )
        for r in photos
    ]
    if recalled and recall:
        out.append(
            contracts.PostRecalled(
                post_id=post.post_id,
                school_id=post.school_id,
                round=post.round,
                reason="consent_changed",
                pupils=sorted(pupils or ()),
            )
        )
    return out
