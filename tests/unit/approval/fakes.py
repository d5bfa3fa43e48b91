"""Fakes of approval's ports."""

from __future__ import annotations

from services.approval.domain import PhotoReport, Post


class InMemoryPostBook:
    def __init__(self) -> None:
        self.posts: dict[str, Post] = {}
        self.saves = 0

    def get(self, post_id: str) -> Post | None:
        return self.posts.get(post_id)

    def save(self, post: Post) -> None:
        self.saves += 1
        self.posts[post.post_id] = post

    def find(
        self,
        *,
        schools: set[str] | None = None,
        author_id: str | None = None,
        status: str | None = None,
        limit: int = 200,
    ) -> list[Post]:
        found = [
            p
            for p in self.posts.values()
            if (schools is None or p.school_id in schools)
            and (author_id is None or p.author_id == author_id)
            and (status is None or p.status == status)
        ]
        return sorted(found, key=lambda p: p.created_at, reverse=True)[:limit]


class InMemoryPhotoReports:
    def __init__(self) -> None:
        self.reports: dict[str, PhotoReport] = {}

    def put(self, report: PhotoReport) -> None:
        self.reports[report.photo_id] = report

    def for_post(self, post_id: str) -> dict[str, PhotoReport]:
        return {k: r for k, r in self.reports.items() if r.post_id == post_id}

    def posts_showing(self, school_id: str, pupil_id: str) -> list[str]:
        # The fake has no school per report: the handler filters by the post's school.
        return sorted(
            {
                r.post_id
                for r in self.reports.values()
                if any(not f.masked and f.pupil_id == pupil_id for f in r.faces)
            }
        )
