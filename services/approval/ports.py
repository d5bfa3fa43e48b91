"""Ports approval needs: its posts (with what publishing said of them: whether they
fit each target account, their state on each) and the photo reports from redaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from services.approval.domain import Delivery, Fit, PhotoReport, Post


class FitAnswers(Protocol):
    def ask_fit(self, post_id: str, accounts: Sequence[str]) -> None:
        """A fit check was asked: each account's earlier answer is set aside until
        the new one comes ("checking…")."""

    def answer_fit(self, post_id: str, fits: Sequence[Fit]) -> None:
        """Keep publishing's answer per account (replacing the one kept)."""

    def fits(self, post_ids: Sequence[str]) -> dict[str, dict[str, Fit]]:
        """Post id -> account id -> answer (or question still open)."""


class DeliveryBoard(Protocol):
    def record_delivery(self, delivery: Delivery) -> bool:
        """Keep this state of the post on the account unless the kept one is as new
        (``domain.newer``), in one transaction; True if it was kept."""

    def deliveries(self, post_ids: Sequence[str]) -> dict[str, dict[str, Delivery]]:
        """Post id -> account id -> newest state."""


class PostBook(FitAnswers, DeliveryBoard, Protocol):
    """Approval's posts. The same store keeps what publishing answers about them."""

    def get(self, post_id: str) -> Post | None:
        """The post with its history, or None."""

    def save(self, post: Post) -> Post:
        """Store the post and append its new transitions, one transaction; the post
        as stored (its version one up). ``ConcurrentUpdateError`` if someone saved it
        since ``post`` was read."""

    def find(
        self,
        *,
        schools: set[str] | None = None,
        author_id: str | None = None,
        status: str | None = None,
        limit: int = 200,
    ) -> list[Post]:
        """Posts, newest first; ``schools`` None means every school."""


class PhotoReports(Protocol):
    def put(self, report: PhotoReport) -> None:
        """Keep redaction's report of one photo (the same report again: no change)."""

    def for_post(self, post_id: str) -> dict[str, PhotoReport]:
        """The post's photo reports by photo id."""

    def posts_showing(self, school_id: str, pupil_id: str) -> list[str]:
        """Ids of the school's posts whose newest rendering of some photo shows this
        pupil unmasked (one indexed query)."""
