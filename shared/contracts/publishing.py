"""Messages produced by the publishing service."""

from __future__ import annotations

from typing import ClassVar

from shared.contracts.base import Event, Message


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


# Every message class this producer defines (the registry in __init__ collects them).
CONTRACTS: tuple[type[Message], ...] = (
    AccountChanged,
    PostPublished,
    PublishFailed,
    PublicationHeld,
)

__all__ = [
    "AccountChanged",
    "PublicationHeld",
    "PostPublished",
    "PublishFailed",
]
