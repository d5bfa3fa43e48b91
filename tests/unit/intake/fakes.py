"""Fakes of intake's ports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.intake.ports import NewPost
from shared import contracts
from shared.testing import InMemoryBlobStore


class InMemoryPostLedger:
    def __init__(self) -> None:
        self.posts: dict[str, NewPost] = {}
        self.outbox: dict[str, contracts.Envelope] = {}
        self.sent: set[str] = set()

    def record(self, post: NewPost, envelope: contracts.Envelope) -> None:
        if post.post_id in self.posts:
            raise ValueError("duplicate post")
        self.posts[post.post_id] = post
        self.outbox[envelope.id] = envelope

    def pending(self, limit: int = 100) -> list[contracts.Envelope]:
        return [e for i, e in self.outbox.items() if i not in self.sent][:limit]

    def mark_sent(self, envelope_ids: Sequence[str]) -> None:
        self.sent.update(envelope_ids)


class FailingBlobStore(InMemoryBlobStore):
    """Stores ``good`` blobs, then the disk fails."""

    def __init__(self, good: int = 1) -> None:
        super().__init__()
        self.good = good

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        **kwargs: Any,
    ) -> None:
        if len(self.blobs) >= self.good:
            raise OSError("disk full")
        super().put(key, data, content_type)


class SwitchableBus:
    """A Publisher whose broker can be taken down and brought back."""

    def __init__(self, up: bool = True) -> None:
        self.up = up
        self.published: list[contracts.Envelope] = []

    def publish(self, envelopes: Sequence[contracts.Envelope]) -> None:
        if not self.up:
            raise ConnectionError("broker unavailable")
        self.published.extend(envelopes)
