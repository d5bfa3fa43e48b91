"""Messages produced by the intake service."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from pydantic import Field

from shared.contracts.base import Event, Message, Model


class PhotoRef(Model):
    photo_id: str
    original_key: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=1)
    filename: str = ""


class PostSubmitted(Event):
    """A teacher submitted a post; its originals are stored privately."""

    TYPE: ClassVar[str] = "post.submitted"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    author_id: str
    caption: str = ""
    purpose: str = "social_media"
    accounts: list[str] = Field(min_length=1)
    publish_on: date | None = None
    photos: list[PhotoRef] = Field(min_length=1)
    device_id: str | None = None


# Every message class this producer defines (the registry in __init__ collects them).
CONTRACTS: tuple[type[Message], ...] = (PostSubmitted,)

__all__ = [
    "PhotoRef",
    "PostSubmitted",
]
