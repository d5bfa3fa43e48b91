"""Ports publishing needs: accounts, delivery markers and the publishing targets."""

from __future__ import annotations

from typing import Protocol

from services.publishing.domain import Account, Delivery, Publication


class AccountDirectory(Protocol):
    def get(self, account_id: str) -> Account | None:
        """The account, enabled or not, or None."""

    def for_school(self, school_id: str) -> list[Account]:
        """The school's accounts, by account id."""

    def add(self, account: Account) -> bool:
        """Add the account unless its id exists; True if it was added."""


class DeliveryLog(Protocol):
    def get(self, post_id: str, account_id: str) -> Delivery | None:
        """The marker of this post on this account, or None."""

    def record(self, delivery: Delivery) -> None:
        """Insert or replace the marker of (post, account)."""

    def recent(
        self,
        *,
        schools: set[str] | None = None,
        post_id: str | None = None,
        limit: int = 100,
    ) -> list[Delivery]:
        """Markers, newest first; ``schools`` None means every school."""


class Target(Protocol):
    def publish(self, publication: Publication, account: Account) -> str:
        """Put the publication on the account (idempotent per post); where it went."""
