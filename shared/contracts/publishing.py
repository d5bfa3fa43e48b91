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


# Every message class this producer defines (the registry in __init__ collects them).
CONTRACTS: tuple[type[Message], ...] = (
    PostPublished,
    PublishFailed,
)

__all__ = [
    "PostPublished",
    "PublishFailed",
]
