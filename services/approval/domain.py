"""A post's lifecycle: legal transitions, approval rules, photo reports. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

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


class PhotoChangedError(ConflictError):
    code = "photo_changed"


class NamedFaceError(ForbiddenError):
    code = "named_a_face"


@dataclass(frozen=True)
class Seen:
    """What the approver had in front of them for one photo: its revision and the
    hash of its redacted image."""

    revision: int
    sha256: str


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
    # who named a face in this photo as a pupil (it may un-mask it): they may not
    # also approve the post
    named_by: tuple[str, ...] = ()

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
        named_by=tuple(sorted({*kept.named_by, *arrived.named_by})),
    )


def request_revision(
    report: PhotoReport, revision: int, named_by: str | None = None
) -> PhotoReport:
    """A revision is on its way; ``named_by`` named a face in it as a pupil."""
    named = {*report.named_by, named_by} if named_by else set(report.named_by)
    return replace(
        report,
        requested_revision=max(report.requested_revision, revision),
        named_by=tuple(sorted(named)),
    )


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
    version: int = 0  # how often it was saved: a save over a newer one is refused


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
    fits: Mapping[str, Fit] | None = None,
    seen: Mapping[str, Seen] | None = None,
) -> None:
    """Raise unless this person may decide this post now (rejecting needs a reason;
    approving waits for every photo's newest revision, binds what the approver saw —
    ``seen``: each photo's revision and image hash, when given — is refused to whoever
    named a face in it, and needs the post to fit every target account)."""
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
    if approve and seen is not None:
        check_seen(post, reports or {}, seen)
    if approve and any(approver_id in r.named_by for r in (reports or {}).values()):
        raise NamedFaceError(
            "you named a face in this post as a pupil, so another approver must "
            "check and approve it"
        )
    if approve:
        check_fit(post, fits or {})


def check_seen(
    post: Post, reports: Mapping[str, PhotoReport], seen: Mapping[str, Seen]
) -> None:
    """The approver's view must be every photo's current rendering."""
    for photo_id in post.photo_ids:
        report, looked = reports.get(photo_id), seen.get(photo_id)
        if (
            report is None
            or looked is None
            or looked.revision != report.revision
            or looked.sha256 != (report.sha256 or "")
        ):
            raise PhotoChangedError(
                "a photo changed since you looked at it; look at the post again "
                "before you approve it"
            )


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
    fits: Mapping[str, Fit] | None = None,
    seen: Mapping[str, Seen] | None = None,
) -> Post:
    check_decision(post, approver_id, approve, reason, reports, fits, seen)
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


# Whether the post fits each target account (issue 9 section 4): publishing checks
# the caption with the account's footer, the images' number, formats, sizes and shape.
# Nothing is ever shortened or cropped, so a post that does not fit every account
# cannot be approved: the approver rejects it saying what to change.

CHECKING, FITS, DOES_NOT_FIT, UNCHECKED = (
    "checking",
    "fits",
    "does_not_fit",
    "unchecked",
)


class DoesNotFitError(ConflictError):
    code = "does_not_fit"

    def __init__(self, reasons: Iterable[str]):
        self.reasons = tuple(reasons)
        super().__init__(
            "This post does not fit every account it is for, and Safepost never "
            "shortens a caption or crops a photo: "
            + " ".join(self.reasons)
            + " Reject it saying what to change; the teacher can submit it again."
        )

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Fit:
    """Publishing's answer for one target account; ``fits`` None: asked, not yet
    answered (the page says "checking…")."""

    account_id: str
    fits: bool | None = None
    platform: str = ""
    name: str = ""
    problems: tuple[str, ...] = ()
    note: str = ""

    @property
    def state(self) -> str:
        if self.fits is None:
            return CHECKING
        return FITS if self.fits else DOES_NOT_FIT


def fit_state(fit: Fit | None) -> str:
    """checking, fits, does_not_fit, or unchecked (never asked: an older post)."""
    return UNCHECKED if fit is None else fit.state


def misfits(post: Post, fits: Mapping[str, Fit]) -> list[str]:
    """Each way the post does not fit one of its accounts, as a sentence naming the
    account ("Trust X (x): The caption is 312 characters..."); empty if none."""
    out = []
    for account_id in post.accounts:
        fit = fits.get(account_id)
        if fit is None or fit.fits is not False:
            continue
        label = f"{fit.name or account_id} ({fit.platform or 'unknown'})"
        for problem in fit.problems or ("It does not fit this account.",):
            out.append(f"{label}: {problem}")
    return out


def check_fit(post: Post, fits: Mapping[str, Fit]) -> None:
    """Raise while an answer says the post does not fit one of its accounts (it
    would go out cut, cropped or not at all); a check still running does not stop
    an approval (the page asks the approver to wait for it)."""
    reasons = misfits(post, fits)
    if reasons:
        raise DoesNotFitError(reasons)


# Each post's state per target account (issue 9 section 5), as publishing announces
# it (``delivery.updated``, and ``post.published``/``post.publish_failed``).

LIVE = "live"
TAKEDOWN = ("taking_down", "taken_down", "takedown_failed", "manual_takedown_required")


@dataclass(frozen=True)
class Delivery:
    """The newest known state of a post on one account. ``timed``: from
    ``delivery.updated`` (``at`` is publishing's time); else from a summary event
    (``post.published`` / ``post.publish_failed``, ``at`` is when approval heard)."""

    post_id: str
    account_id: str
    school_id: str
    state: str
    at: datetime
    platform: str = ""
    reason: str = ""
    detail: str = ""
    url: str = ""
    attempts: int = 0
    retry_at: datetime | None = None
    timed: bool = True


def newer(kept: Delivery | None, arrived: Delivery) -> bool:
    """Whether ``arrived`` replaces ``kept``: a later ``delivery.updated`` wins (the
    same or an older one changes nothing); a summary never overrides a timed state
    (they carry no time), and among summaries only going live replaces a failure."""
    if kept is None:
        return True
    if arrived.timed:
        return not kept.timed or arrived.at > kept.at
    return not kept.timed and arrived.state == LIVE and kept.state != LIVE


def public_url(url: str) -> str:
    """The live post's address if it is a web address; "" for anything else (a
    folder's location is a server path: never shown)."""
    return url if re.match(r"^https?://[^\s]+$", url) else ""


# An absolute path of two or more parts (``/srv/x/y``, ``C:\x\y``), not inside a URL.
_PATH = re.compile(r"(?<![\w:/.\\])(?:[A-Za-z]:)?(?:[/\\][^\s/\\'\"]+){2,}[/\\]?")


def without_paths(text: str) -> str:
    """``text`` with every server file path replaced by "(a file on the server)"."""
    return _PATH.sub("(a file on the server)", text)


WAIT_REASONS = {
    "needs_reconnect": "the account needs reconnecting",
    "rate_limited": "the platform asked us to slow down",
    "site_not_approved": "the site is not on the trust's register of approved sites",
    "account_disabled": "the account is disabled",
    "checking_consent": "consent is being checked once more before it goes out",
    "reconciling": "checking whether an earlier attempt went live",
}
RETRIES = ("", "retrying", "rate_limited")  # waits that end at a set time
STATE_WORDS = {
    "pending": "Queued to go out",
    "sending": "Sending…",
    "unconfirmed": "Someone must check whether it went live",
    "held": "Held: consent changed before it went live",
    "taking_down": "Being taken down",
    "taken_down": "Taken down",
    "manual_takedown_required": "Someone must take it down by hand on the platform",
}


def describe_delivery(d: Delivery) -> str:
    """The state in plain words for the teacher and the approver (no server path)."""
    if d.state == LIVE:
        if d.platform == "folder":
            return "Live — published to the school's folder"
        return "Live — open it" if public_url(d.url) else "Live"
    if d.state == "waiting":
        return _waiting(d)
    if d.state in ("failed", "takedown_failed"):
        what = without_paths(d.detail.strip()) or _words(d.reason) or "no reason given"
        first = "Failed" if d.state == "failed" else "Taking it down failed"
        return f"{first}: {what}"
    return STATE_WORDS.get(d.state, _words(d.state).capitalize() or "Unknown")


def _waiting(d: Delivery) -> str:
    retry = ""
    if d.retry_at is not None and d.reason in RETRIES:
        at = d.retry_at.strftime("%H:%M UTC")
        retry = f"Retrying at {at} (attempt {d.attempts + 1})"
    why = WAIT_REASONS.get(d.reason)
    if why is None and d.reason not in ("", "retrying"):
        why = _words(d.reason)
    if why and retry:
        return f"Waiting: {why}. {retry}"
    return retry or f"Waiting: {why or 'it will be tried again'}"


def _words(code: str) -> str:
    return code.replace("_", " ").strip()
