"""Ports intake needs: the ledger of posts with its outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from services.intake import domain
from shared import contracts


@dataclass(frozen=True)
class StoredPhoto:
    photo_id: str
    receipt_id: str
    key: str
    photo: domain.Photo


@dataclass(frozen=True)
class NewPost:
    post_id: str
    draft: domain.Draft
    photos: tuple[StoredPhoto, ...]


class PostLedger(Protocol):
    def record(self, post: NewPost, envelope: contracts.Envelope) -> None:
        """Store the post, its photos and ``envelope``'s outbox row: one transaction."""

    def pending(self, limit: int = 100) -> list[contracts.Envelope]:
        """Outbox envelopes not yet confirmed by the broker, oldest first."""

    def mark_sent(self, envelope_ids: Sequence[str]) -> None:
        """The broker confirmed these envelopes; the relay will not send them again."""
