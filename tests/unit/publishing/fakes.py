"""Fakes of publishing's ports."""

from __future__ import annotations

from services.publishing.domain import Account, Delivery, Publication


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


class InMemoryDeliveryLog:
    def __init__(self) -> None:
        self.markers: dict[tuple[str, str], Delivery] = {}
        self.history: list[Delivery] = []

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


class RecordingTarget:
    """A target that remembers what it was given (and can fail)."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple[Publication, Account]] = []
        self.fail = fail

    def publish(self, publication: Publication, account: Account) -> str:
        self.calls.append((publication, account))
        if self.fail:
            raise self.fail
        return f"mem://{account.account_id}/{publication.post_id}"


class InMemoryApprovals:
    def __init__(self) -> None:
        from services.publishing.ports import Approval

        self.rounds: dict[tuple[str, int], Approval] = {}

    def open(self, event):
        from dataclasses import replace

        from services.publishing import domain
        from services.publishing.ports import Approval

        key = (event.post_id, event.round)
        kept = self.rounds.get(key)
        if kept is None:
            kept = Approval(
                event.post_id, event.round, event.school_id, domain.VERIFYING, event
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
            replace(kept, state=state)
            if kept
            else Approval(post_id, round_, school_id, state, None)
        )
