"""Ports approval needs: its posts and the photo reports from redaction."""

from __future__ import annotations

from typing import Protocol

from services.approval.domain import PhotoReport, Post


class PostBook(Protocol):
    def get(self, post_id: str) -> Post | None:
        """The post with its history, or None."""

    def save(self, post: Post) -> None:
        """Upsert the post and append its new transitions: one transaction."""

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
