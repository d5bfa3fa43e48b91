"""Fakes of publishing's ports, and its unit of work over them."""

from __future__ import annotations

from services.publishing.domain import Account, Delivery
from tests.support.uow import FakeUnit


class OutboxUnit(FakeUnit):
    """``FakeUnit`` whose outbox keeps an envelope once, as publishing's SQL outbox
    does: a transition written again (ids fixed by the transition) or a message
    handled again is not sent twice."""

    def commit(self) -> None:
        seen = {e.id for e in self.publisher.published}
        fresh = []
        for envelope in self.emitted:
            if envelope.id not in seen:
                seen.add(envelope.id)
                fresh.append(envelope)
        self.emitted = fresh
        super().commit()


class InMemoryAccountDirectory:
    def __init__(self, *accounts: Account) -> None:
        self.accounts = {a.account_id: a for a in accounts}

    def get(self, account_id: str) -> Account | None:
        return self.accounts.get(account_id)

    def for_school(self, school_id: str) -> list[Account]:
        return sorted(
            (a for a in self.accounts.values() if a.school_id == school_id),
            key=lambda a: a.account_id,
        )

    def add(self, account: Account) -> bool:
        if account.account_id in self.accounts:
            return False
        self.accounts[account.account_id] = account
        return True

    def update(self, account: Account) -> None:
        self.accounts[account.account_id] = account

    def all(self) -> list[Account]:
        return sorted(self.accounts.values(), key=lambda a: a.account_id)


class InMemoryDeliveryLog:
    def __init__(self) -> None:
        self.markers: dict[tuple[str, str], Delivery] = {}
        self.history: list[Delivery] = []

    def due(self, now, lease, limit=50):
        from services.publishing import domain

        found = [
            d
            for d in self.markers.values()
            if (
                d.status in domain.DUE
                and d.next_attempt_at is not None
                and d.next_attempt_at <= now
            )
            or (
                d.status == domain.SENDING
                and d.sending_since is not None
                and d.sending_since < now - lease
            )
        ]
        first = {domain.RECONCILING: 0, domain.SENDING: 0, domain.TAKING_DOWN: 1}
        return sorted(
            found,
            key=lambda d: (
                first.get(d.status, 2),
                d.next_attempt_at or now,
                d.post_id,
            ),
        )[:limit]

    def claim(self, expected: Delivery, claimed: Delivery) -> bool:
        if self.markers.get((expected.post_id, expected.account_id)) != expected:
            return False
        self.record(claimed)
        return True

    def for_post(self, post_id):
        return [d for (p, _), d in sorted(self.markers.items()) if p == post_id]

    def with_takedown(self, takedown_id):
        return [d for d in self.markers.values() if d.takedown_id == takedown_id]

    def get(self, post_id: str, account_id: str) -> Delivery | None:
        return self.markers.get((post_id, account_id))

    def record(self, delivery: Delivery) -> None:
        self.history.append(delivery)
        self.markers[(delivery.post_id, delivery.account_id)] = delivery

    def recent(
        self,
        *,
        schools: set[str] | None = None,
        post_id: str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        found = [
            d
            for d in self.markers.values()
            if (schools is None or d.school_id in schools)
            and (post_id is None or d.post_id == post_id)
        ]
        return sorted(found, key=lambda d: d.at, reverse=True)[:limit]


class InMemoryApprovals:
    def __init__(self, now=None) -> None:
        from datetime import UTC, datetime

        from services.publishing.ports import Approval

        self.rounds: dict[tuple[str, int], Approval] = {}
        self.now = now or (lambda: datetime.now(UTC))

    def open(self, event):
        from dataclasses import replace

        from services.publishing import domain
        from services.publishing.ports import Approval

        key = (event.post_id, event.round)
        kept = self.rounds.get(key)
        if kept is None:
            kept = Approval(
                event.post_id,
                event.round,
                event.school_id,
                domain.VERIFYING,
                event,
                self.now(),
            )
        elif kept.event is None:
            kept = replace(kept, event=event)
        self.rounds[key] = kept
        return kept

    def get(self, post_id, round_):
        return self.rounds.get((post_id, round_))

    def newest_round(self, post_id):
        return max((r for p, r in self.rounds if p == post_id), default=0)

    def settle(self, post_id, round_, state, school_id):
        from dataclasses import replace

        from services.publishing.ports import Approval

        kept = self.rounds.get((post_id, round_))
        self.rounds[(post_id, round_)] = (
            replace(kept, state=state, updated_at=self.now())
            if kept
            else Approval(post_id, round_, school_id, state, None, self.now())
        )


class RecordingAdapter:
    """A platform that keeps what it was given; ``errors`` are raised in turn by
    publish (None: succeed), ``answer_lost`` makes a publish that succeeds raise
    AmbiguousError (the post exists but its answer was lost)."""

    def __init__(self, platform: str = "facebook", errors=(), answer_lost=False):
        self.platform = platform
        self.errors = list(errors)
        self.answer_lost = answer_lost
        self.posts: dict[str, dict] = {}
        self.calls = 0
        self.recent_error = None

    def publish(self, dest, caption, media, **kwargs):
        from services.publishing.platforms.base import AmbiguousError, LivePost

        self.calls += 1
        if self.errors:
            error = self.errors.pop(0)
            if error is not None:
                raise error
        post_id = f"{self.platform}-{len(self.posts) + 1}"
        self.posts[post_id] = {
            "dest": dest,
            "caption": caption,
            "media": list(media),
            "kwargs": kwargs,
        }
        if self.answer_lost:
            self.answer_lost = False
            raise AmbiguousError("read timed out")
        return LivePost(post_id, f"https://{self.platform}.example/{post_id}")

    def delete(self, dest, external_id):
        self.deletes = getattr(self, "deletes", 0) + 1
        errors = getattr(self, "delete_errors", [])
        if errors:
            error = errors.pop(0)
            if error is not None:
                raise error
        self.posts.pop(external_id, None)  # already gone counts as deleted

    def lookup(self, dest, external_id):
        from services.publishing.platforms.base import LivePost

        if external_id not in self.posts:
            return None
        return LivePost(external_id, f"https://{self.platform}.example/{external_id}")

    def recent(self, dest, since):
        from services.publishing.platforms.base import RecentPost

        if self.recent_error is not None:
            raise self.recent_error
        return [
            RecentPost(
                k, f"https://{self.platform}.example/{k}", p["caption"], len(p["media"])
            )
            for k, p in self.posts.items()
        ]


class InMemoryTakedowns:
    def __init__(self) -> None:
        self.shown: set[tuple[str, int, str, str]] = set()
        self.takedowns: dict = {}
        self.tasks: dict = {}

    def show(self, post_id, round_, school_id, pupils):
        for p in pupils:
            self.shown.add((post_id, round_, p, school_id))

    def posts_showing(self, school_id, pupil_id):
        return sorted(
            {
                (p, r)
                for p, r, pupil, s in self.shown
                if (s, pupil) == (school_id, pupil_id)
            }
        )

    def open(self, takedown):
        if takedown.takedown_id in self.takedowns:
            return False
        self.takedowns[takedown.takedown_id] = takedown
        return True

    def get(self, takedown_id):
        return self.takedowns.get(takedown_id)

    def complete(self, takedown_id, at):
        from dataclasses import replace

        kept = self.takedowns[takedown_id]
        if kept.completed_at is not None:
            return False
        self.takedowns[takedown_id] = replace(kept, completed_at=at)
        return True

    def open_manual(self, task):
        key = (task.post_id, task.account_id)
        if key in self.tasks and self.tasks[key].closed_at is None:
            return False
        self.tasks[key] = task
        return True

    def manual(self, *, schools=None, open_only=True):
        return [
            t
            for t in self.tasks.values()
            if (schools is None or t.school_id in schools)
            and (not open_only or t.closed_at is None)
        ]

    def escalate(self, post_id, account_id, at):
        from dataclasses import replace

        task = self.tasks.get((post_id, account_id))
        if task is None or task.escalated_at or task.closed_at:
            return False
        self.tasks[(post_id, account_id)] = replace(task, escalated_at=at)
        return True

    def close_manual(self, post_id, account_id, by, confirmation, at):
        from dataclasses import replace

        task = self.tasks.get((post_id, account_id))
        if task is None or task.closed_at is not None:
            return None
        task = replace(task, closed_at=at, closed_by=by, confirmation=confirmation)
        self.tasks[(post_id, account_id)] = task
        return task
