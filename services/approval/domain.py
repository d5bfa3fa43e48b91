"""A post's lifecycle: legal transitions, approval rules, photo reports. Pure."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from shared.errors import ConflictError, ForbiddenError, InvalidInputError

SUBMITTED = "submitted"
REDACTING = "redacting"
AWAITING = "awaiting_approval"
APPROVED = "approved"
REJECTED = "rejected"
PUBLISHED = "published"
FAILED = "failed"
STATUSES = (SUBMITTED, REDACTING, AWAITING, APPROVED, REJECTED, PUBLISHED, FAILED)

ALLOWED: dict[str, frozenset[str]] = {
    SUBMITTED: frozenset({REDACTING}),
    REDACTING: frozenset({AWAITING, REJECTED}),
    AWAITING: frozenset({APPROVED, REJECTED}),
    APPROVED: frozenset({PUBLISHED, FAILED}),
    REJECTED: frozenset(),
    PUBLISHED: frozenset(),
    FAILED: frozenset(),
}
MAX_REASON = 1000


class IllegalTransitionError(ConflictError):
    code = "illegal_transition"


class NotAwaitingApprovalError(ConflictError):
    code = "not_awaiting_approval"


class OwnPostError(ForbiddenError):
    code = "own_post"


class ReasonRequiredError(InvalidInputError):
    code = "reason_required"


@dataclass(frozen=True)
class Transition:
    from_status: str | None
    to_status: str
    by: str | None  # a user id; None for the system
    at: datetime
    reason: str = ""


@dataclass(frozen=True)
class Face:
    index: int
    masked: bool
    reason: str | None = None
    box: tuple[int, int, int, int] | None = None  # masked region, or a shown face's box
    pupil_id: str | None = None


@dataclass(frozen=True)
class PhotoReport:
    """What redaction said about one photo: its redacted copy, or why it was refused."""

    photo_id: str
    post_id: str
    redacted_key: str | None = None
    preview_key: str | None = None
    sha256: str | None = None
    faces: tuple[Face, ...] = ()
    refused: str | None = None  # reason code when the photo could not be redacted

    @property
    def redacted(self) -> bool:
        return self.redacted_key is not None and self.refused is None


@dataclass(frozen=True)
class Post:
    post_id: str
    school_id: str
    author_id: str
    caption: str
    accounts: tuple[str, ...]
    photo_ids: tuple[str, ...]
    status: str
    created_at: datetime
    history: tuple[Transition, ...] = ()
    reason: str = ""
    decided_by: str | None = None
    published_accounts: tuple[str, ...] = ()


def new_post(
    post_id: str,
    school_id: str,
    author_id: str,
    caption: str,
    accounts: tuple[str, ...],
    photo_ids: tuple[str, ...],
    at: datetime,
) -> Post:
    """A submitted post goes straight to redaction."""
    post = Post(
        post_id=post_id,
        school_id=school_id,
        author_id=author_id,
        caption=caption,
        accounts=accounts,
        photo_ids=photo_ids,
        status=SUBMITTED,
        created_at=at,
        history=(Transition(None, SUBMITTED, author_id, at),),
    )
    return move(post, REDACTING, by=None, at=at)


def move(
    post: Post, to: str, *, by: str | None, at: datetime, reason: str = ""
) -> Post:
    """The post moved to ``to`` with the step in its history; illegal steps raise."""
    if to not in ALLOWED[post.status]:
        raise IllegalTransitionError(f"a post cannot go from {post.status} to {to}")
    step = Transition(post.status, to, by, at, reason)
    return replace(
        post, status=to, history=(*post.history, step), reason=reason or post.reason
    )


def settle_redaction(post: Post, reports: dict[str, PhotoReport], at: datetime) -> Post:
    """While redacting: a refused photo rejects; all photos redacted awaits approval."""
    if post.status != REDACTING:
        return post
    mine = [reports[p] for p in post.photo_ids if p in reports]
    refused = [r for r in mine if r.refused]
    if refused:
        return move(
            post,
            REJECTED,
            by=None,
            at=at,
            reason=f"photo refused: {refused[0].refused}",
        )
    if len(mine) == len(post.photo_ids) and all(r.redacted for r in mine):
        return move(post, AWAITING, by=None, at=at)
    return post


def check_decision(post: Post, approver_id: str, approve: bool, reason: str) -> None:
    """Raise unless this person may decide this post now (rejecting needs a reason)."""
    if not approve and not reason.strip():
        raise ReasonRequiredError("say why the post is rejected")
    if approver_id == post.author_id:
        raise OwnPostError("you cannot decide on your own post")
    if post.status != AWAITING:
        raise NotAwaitingApprovalError(
            f"the post is {post.status}, not awaiting approval"
        )


def decide(
    post: Post, approver_id: str, approve: bool, reason: str, at: datetime
) -> Post:
    check_decision(post, approver_id, approve, reason)
    decided = move(
        post,
        APPROVED if approve else REJECTED,
        by=approver_id,
        at=at,
        reason=reason.strip(),
    )
    return replace(decided, decided_by=approver_id)


def decided_by_this(post: Post, approver_id: str, approve: bool) -> bool:
    """Whether ``post`` already holds this very decision (a redelivered command)."""
    if post.decided_by != approver_id:
        return False
    if approve:
        return post.status in (APPROVED, PUBLISHED, FAILED)
    return post.status == REJECTED


def record_published(post: Post, account: str, at: datetime) -> Post:
    """Published once every target account has published it."""
    if account in post.published_accounts or post.status not in (APPROVED, FAILED):
        return post
    post = replace(post, published_accounts=(*post.published_accounts, account))
    if post.status == APPROVED and set(post.accounts) <= set(post.published_accounts):
        return move(post, PUBLISHED, by=None, at=at)
    return post


def record_failed(post: Post, account: str, reason: str, at: datetime) -> Post:
    if post.status != APPROVED:
        return post
    return move(post, FAILED, by=None, at=at, reason=f"{account}: {reason}")
