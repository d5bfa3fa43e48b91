"""Fakes of approval's ports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from services.approval.domain import Delivery, Fit, PhotoReport, Post, newer
from shared.errors import ConcurrentUpdateError


class InMemoryPostBook:
    def __init__(self) -> None:
        self.posts: dict[str, Post] = {}
        self.saves = 0
        self.fit_answers: dict[tuple[str, str], Fit] = {}
        self.states: dict[tuple[str, str], Delivery] = {}

    def get(self, post_id: str) -> Post | None:
        return self.posts.get(post_id)

    def save(self, post: Post) -> Post:
        stored = self.posts.get(post.post_id)
        if (stored.version if stored else 0) != post.version:
            raise ConcurrentUpdateError(
                f"post {post.post_id} changed since it was read"
            )
        self.saves += 1
        stored = self.posts[post.post_id] = replace(post, version=post.version + 1)
        return stored

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

    def ask_fit(self, post_id: str, accounts: Sequence[str]) -> None:
        for account_id in accounts:
            kept = self.fit_answers.get((post_id, account_id), Fit(account_id))
            self.fit_answers[(post_id, account_id)] = replace(
                kept, fits=None, problems=(), note=""
            )

    def answer_fit(self, post_id: str, fits: Sequence[Fit]) -> None:
        for fit in fits:
            self.fit_answers[(post_id, fit.account_id)] = fit

    def fits(self, post_ids: Sequence[str]) -> dict[str, dict[str, Fit]]:
        out: dict[str, dict[str, Fit]] = {}
        for (post_id, account_id), fit in self.fit_answers.items():
            if post_id in post_ids:
                out.setdefault(post_id, {})[account_id] = fit
        return out

    def record_delivery(self, delivery: Delivery) -> bool:
        key = (delivery.post_id, delivery.account_id)
        if not newer(self.states.get(key), delivery):
            return False
        self.states[key] = delivery
        return True

    def deliveries(self, post_ids: Sequence[str]) -> dict[str, dict[str, Delivery]]:
        out: dict[str, dict[str, Delivery]] = {}
        for (post_id, account_id), state in self.states.items():
            if post_id in post_ids:
                out.setdefault(post_id, {})[account_id] = state
        return out


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
