"""A post's lifecycle: legal transitions, approval rules, photo reports. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable
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
    # consent changed after approval, before it went live: back to the approver
    APPROVED: frozenset({PUBLISHED, FAILED, AWAITING}),
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


class RerenderingError(ConflictError):
    code = "rerendering"


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
    consent_versions: tuple[str, ...] = ()  # a shown face: the consent it rests on


Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Text:
    """A region of readable text redaction found (never the words themselves)."""

    index: int
    box: Box
    masked: bool
    reason: str  # pupil_name (masked) | readable_text (visible: check it) | unknown


@dataclass(frozen=True)
class PhotoReport:
    """What redaction said about one photo: its redacted copy, or why it was refused.

    Only the newest revision is kept; ``requested_revision`` above ``revision`` means
    an approver's edits are being re-rendered and the photo may not be approved yet.
    """

    photo_id: str
    post_id: str
    redacted_key: str | None = None
    preview_key: str | None = None
    sha256: str | None = None
    faces: tuple[Face, ...] = ()
    refused: str | None = None  # reason code when the photo could not be redacted
    texts: tuple[Text, ...] = ()
    ocr: str = "unavailable"
    revision: int = 0
    requested_revision: int = 0
    added_masks: tuple[Box, ...] = ()
    width: int = 0
    height: int = 0

    @property
    def redacted(self) -> bool:
        return self.redacted_key is not None and self.refused is None

    @property
    def rerendering(self) -> bool:
        return self.requested_revision > self.revision

    @property
    def next_revision(self) -> int:
        return max(self.revision, self.requested_revision) + 1


def newest(kept: PhotoReport | None, arrived: PhotoReport) -> PhotoReport:
    """The report to keep: never an older revision over a newer one; a request for a
    revision is remembered until that revision (or a newer one) arrives."""
    if kept is None:
        return arrived
    if arrived.redacted_key is not None and arrived.revision < kept.revision:
        return kept
    return replace(
        arrived,
        requested_revision=max(kept.requested_revision, arrived.requested_revision),
    )


def request_revision(report: PhotoReport, revision: int) -> PhotoReport:
    return replace(report, requested_revision=max(report.requested_revision, revision))


# Two capitalised words in a row (the first not starting a sentence) look like a name.
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|[.!?\n]")


def caption_warnings(caption: str) -> list[str]:
    """Possible full names in a caption, for the approver to check (never blocking):
    two or more capitalised words in a row, not counting a sentence's first word."""
    found: list[str] = []
    run: list[str] = []
    sentence_start = True

    def flush() -> None:
        if len(run) >= 2 and " ".join(run) not in found:
            found.append(" ".join(run))
        run.clear()

    for token in _WORD.findall(caption):
        if token in ".!?\n":
            flush()
            sentence_start = True
            continue
        if token[:1].isupper() and not sentence_start:
            run.append(token)
        else:
            flush()
        sentence_start = False
    flush()
    return found


@dataclass(frozen=True)
class Notice:
    """Consent changed for a pupil a post shows, after its photos were decided: what
    the approver is told ("consent changed since upload"). Ids and states only."""

    at: datetime
    pupil_id: str
    cause: str  # recorded | expired | restricted | unrestricted | final_check
    stage: str  # the post's status when it happened
    changes: tuple[str, ...] = ()  # e.g. "social_media/facebook: withdrawn"


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
    round: int = 0  # how many times it was approved (a re-approval is a new round)
    notices: tuple[Notice, ...] = ()


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


def check_decision(
    post: Post,
    approver_id: str,
    approve: bool,
    reason: str,
    reports: dict[str, PhotoReport] | None = None,
) -> None:
    """Raise unless this person may decide this post now (rejecting needs a reason;
    approving waits for every photo's newest revision)."""
    if not approve and not reason.strip():
        raise ReasonRequiredError("say why the post is rejected")
    if approver_id == post.author_id:
        raise OwnPostError("you cannot decide on your own post")
    if post.status != AWAITING:
        raise NotAwaitingApprovalError(
            f"the post is {post.status}, not awaiting approval"
        )
    if approve and any(r.rerendering for r in (reports or {}).values()):
        raise RerenderingError("a photo is being re-rendered; approve it once shown")


def check_revision(post: Post, approver_id: str) -> None:
    """An approver may edit a photo's redaction only while the post awaits approval,
    and never on their own post."""
    if approver_id == post.author_id:
        raise OwnPostError("you cannot edit your own post")
    if post.status != AWAITING:
        raise NotAwaitingApprovalError(
            f"the post is {post.status}, not awaiting approval"
        )


def decide(
    post: Post,
    approver_id: str,
    approve: bool,
    reason: str,
    at: datetime,
    reports: dict[str, PhotoReport] | None = None,
) -> Post:
    check_decision(post, approver_id, approve, reason, reports)
    decided = move(
        post,
        APPROVED if approve else REJECTED,
        by=approver_id,
        at=at,
        reason=reason.strip(),
    )
    return replace(
        decided,
        decided_by=approver_id,
        round=post.round + 1 if approve else post.round,
    )


def decided_by_this(post: Post, approver_id: str, approve: bool) -> bool:
    """Whether ``post`` already holds this very decision (a redelivered command)."""
    if post.decided_by != approver_id:
        return False
    if approve:
        return post.status in (APPROVED, PUBLISHED, FAILED) and post.round > 0
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


# Consent that changes after the photos were decided (issue 8 section 1).

# Not yet live: a consent change re-decides these posts' photos.
RECHECKED = (REDACTING, AWAITING, APPROVED)


def shown_pupils(reports: dict[str, PhotoReport]) -> dict[str, set[str]]:
    """Photo id -> the pupils shown (unmasked) in its newest rendering."""
    return {
        photo_id: {f.pupil_id for f in r.faces if not f.masked and f.pupil_id}
        for photo_id, r in reports.items()
    }


def consent_changed(post: Post, notice: Notice, at: datetime) -> tuple[Post, bool]:
    """Note the change on a post that shows the pupil and is not live yet; an
    approved post goes back to the approver (the second value: it was recalled).
    A post already live or closed is left as it is (taking it down is another step).
    """
    if post.status not in RECHECKED:
        return post, False
    noted = replace(post, notices=(*post.notices, notice))
    if post.status != APPROVED:
        return noted, False
    back = move(
        noted,
        AWAITING,
        by=None,
        at=at,
        reason="consent changed after approval: re-rendered, approve again",
    )
    return replace(back, decided_by=None), True


def concerns(
    reports: dict[str, PhotoReport],
    pupil_id: str,
    cause: str,
    scopes: Iterable[tuple[str, str, str]],
) -> bool:
    """Whether a consent change can alter how the post shows this pupil.

    Each shown face carries the consent records its decision rested on
    (``<id>:<purpose>/<platform or *>:v<n>``). A change is already accounted for when
    every scope it names is either of a purpose the post does not need (none of the
    records is of that purpose) or still granted on a record the decision used (the
    change arrived after the decision it preceded). Anything else, and a pupil who may
    no longer be shown at all, concerns the post: it is decided again."""
    if cause == "restricted":
        return True
    used = {
        ref
        for r in reports.values()
        for f in r.faces
        if not f.masked and f.pupil_id == pupil_id
        for ref in f.consent_versions
    }
    purposes = {ref.split(":", 1)[-1].split("/", 1)[0] for ref in used}
    for purpose, state, version in scopes:
        if purpose not in purposes:
            continue
        if state == "granted" and version in used:
            continue
        return True
    return False


def rerender(
    reports: dict[str, PhotoReport], pupils: set[str] | None
) -> list[PhotoReport]:
    """The photos to re-render (each with its next revision asked for): those showing
    any of ``pupils`` (None: every redacted photo). Refused photos are left."""
    shown = shown_pupils(reports)
    out = []
    for photo_id, report in sorted(reports.items()):
        if not report.redacted:
            continue
        if pupils is not None and not shown[photo_id] & pupils:
            continue
        out.append(request_revision(report, report.next_revision))
    return out


def describe(scopes: Iterable[tuple[str, str | None, str]]) -> tuple[str, ...]:
    """Plain words for a change's scopes: ``social_media/facebook: withdrawn``."""
    return tuple(
        f"{purpose}/{platform or 'all platforms'}: {state.replace('_', ' ')}"
        for purpose, platform, state in scopes
    )
