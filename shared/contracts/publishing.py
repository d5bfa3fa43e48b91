"""Messages produced by the publishing service."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from shared.contracts.base import Event, Message, Model


class PostPublished(Event):
    """A post went live on one account (exactly once per post and account)."""

    TYPE: ClassVar[str] = "post.published"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    account: str
    target: str  # folder, webhook, facebook, ...
    location: str  # where it went: a path, a URL or the network's post id


class PublishFailed(Event):
    """Publishing to one account failed for good (after its retries)."""

    TYPE: ClassVar[str] = "post.publish_failed"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    account: str
    reason: str
    detail: str = ""


class AccountChanged(Event):
    """A publishing account was added or changed: which school it belongs to, its
    platform, and whose consent its audience needs (``purpose`` and, for a social
    platform, ``consent_platform``: the platform's own answer narrows the purpose's).
    Consent keeps these to decide per target account (never from an uploader's form).
    """

    TYPE: ClassVar[str] = "account.changed"
    VERSION: ClassVar[int] = 1

    account_id: str
    school_id: str
    platform: str  # facebook | instagram | x | linkedin | webhook | folder
    purpose: str  # social_media | website | ...
    consent_platform: str | None = None
    status: str  # active | needs_reconnect | disabled


class PublicationHeld(Event):
    """Publishing's final gate stopped an approved post before any platform was
    called: consent changed since the approver saw it. Approval returns it to the
    approver, re-rendered. Pupils by id only."""

    TYPE: ClassVar[str] = "post.publication_held"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    round: int
    reason: str  # consent_changed | consent_unknown_account
    pupils: list[str] = []


class AccountFit(Model):
    """Whether a post fits one target account, checked before anyone approves it."""

    account_id: str
    platform: str
    name: str = ""
    fits: bool
    problems: list[str] = []  # plain English, e.g. "The caption is 312 characters..."
    note: str = ""  # e.g. X's price for this post


class PostFitChecked(Event):
    """Publishing checked a post against each target account's limits (caption with
    the account's footer, images, formats, sizes, aspect ratio): nothing is ever
    truncated or cropped, so a post that cannot go somewhere says so before approval.
    """

    TYPE: ClassVar[str] = "post.fit_checked"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    accounts: list[AccountFit] = []


class DeliveryUpdated(Event):
    """The state of one post on one account changed (what the pages show).

    ``state``: pending, sending, live, waiting (``reason`` says why: rate_limited,
    retrying, needs_reconnect, site_not_approved, account_disabled...), failed,
    unconfirmed (a person must say whether it went live), held, taking_down,
    taken_down, takedown_failed, manual_takedown_required."""

    TYPE: ClassVar[str] = "delivery.updated"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    account_id: str
    platform: str
    state: str
    reason: str = ""
    detail: str = ""
    url: str = ""
    attempts: int = 0
    retry_at: datetime | None = None
    at: datetime


class TakedownRequested(Event):
    """Live copies of a post are to come down: consent changed for a pupil it shows
    (``pupil_id``, id only), or a person asked (``by``, with a reason)."""

    TYPE: ClassVar[str] = "takedown.requested"
    VERSION: ClassVar[int] = 1

    takedown_id: str
    post_id: str
    school_id: str
    accounts: list[str] = []
    reason: str  # withdrawn | never_publish_or_left | expired | on_request
    detail: str = ""
    pupil_id: str | None = None
    by: str | None = None


class ManualTakedownOpened(Event):
    """A platform could not delete a live copy (no API for it, a refusal, an expired
    token): a person must remove it. For the account's designated owner and the
    approver, with a link to the live post."""

    TYPE: ClassVar[str] = "takedown.manual_opened"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    account_id: str
    platform: str
    owner: str = ""
    url: str = ""
    reason: str
    detail: str = ""


class ManualTakedownEscalated(Event):
    """A manual takedown is still open after the set time (default 24 h)."""

    TYPE: ClassVar[str] = "takedown.manual_escalated"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    account_id: str
    owner: str = ""
    opened_at: datetime
    hours_open: float


class ManualTakedownClosed(Event):
    """A person confirmed that the copy is no longer visible on the platform."""

    TYPE: ClassVar[str] = "takedown.manual_closed"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    account_id: str
    closed_by: str
    confirmation: str


class TakedownCompleted(Event):
    """Every copy a takedown concerned is gone (deleted, or removed by a person):
    the time from the change being saved to the last copy gone."""

    TYPE: ClassVar[str] = "takedown.completed"
    VERSION: ClassVar[int] = 1

    takedown_id: str
    school_id: str
    pupil_id: str | None = None
    reason: str
    posts: list[str] = []
    copies: int = 0
    manual: int = 0  # removed by a person
    requested_at: datetime
    completed_at: datetime
    seconds: float


class SiteChanged(Event):
    """The trust's register of approved sites changed: a platform approved (with the
    due-diligence answers) or withdrawn (with the reason). By whom: the actor."""

    TYPE: ClassVar[str] = "site.changed"
    VERSION: ClassVar[int] = 1

    platform: str
    approved: bool
    by: str
    answers: dict[str, str] = {}
    note: str = ""


# Every message class this producer defines (the registry in __init__ collects them).
CONTRACTS: tuple[type[Message], ...] = (
    AccountChanged,
    PostPublished,
    PublishFailed,
    PublicationHeld,
    PostFitChecked,
    DeliveryUpdated,
    TakedownRequested,
    ManualTakedownOpened,
    ManualTakedownEscalated,
    ManualTakedownClosed,
    TakedownCompleted,
    SiteChanged,
)

__all__ = [
    "SiteChanged",
    "ManualTakedownClosed",
    "ManualTakedownEscalated",
    "ManualTakedownOpened",
    "TakedownCompleted",
    "TakedownRequested",
    "AccountChanged",
    "AccountFit",
    "DeliveryUpdated",
    "PostFitChecked",
    "PublicationHeld",
    "PostPublished",
    "PublishFailed",
]
