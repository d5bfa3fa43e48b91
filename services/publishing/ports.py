"""Ports publishing needs: its repositories (accounts, approval rounds, delivery
markers, takedowns, the register of approved sites, tokens, pending authorisations)
and its unit of work, which holds them on one transaction with its outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from services.publishing.domain import (
    Account,
    Delivery,
    ManualTask,
    Site,
    Takedown,
)
from services.publishing.platforms.base import Credentials
from shared import contracts
from shared.uow import UnitOfWork


class AccountDirectory(Protocol):
    def get(self, account_id: str) -> Account | None:
        """The account, enabled or not, or None."""

    def for_school(self, school_id: str) -> list[Account]:
        """The school's accounts, by account id."""

    def add(self, account: Account) -> bool:
        """Add the account unless its id exists; True if it was added."""

    def update(self, account: Account) -> None:
        """Store the account's new settings (the use case announces them)."""

    def all(self) -> list[Account]:
        """Every account of every school."""


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

    def due(self, now: datetime, lease: timedelta, limit: int = 50) -> list[Delivery]:
        """Deliveries to work on now: pending, waiting or reconciling whose time has
        come, and any ``sending`` older than ``lease`` (its worker died: reconcile)."""

    def claim(self, expected: Delivery, claimed: Delivery) -> bool:
        """Replace ``expected`` by ``claimed`` only if the row is still exactly
        ``expected`` (status, attempts, time): one worker wins."""

    def for_post(self, post_id: str) -> list[Delivery]:
        """Every account's marker of this post."""

    def with_takedown(self, takedown_id: str) -> list[Delivery]:
        """The copies a takedown concerns."""


@dataclass(frozen=True)
class Approval:
    """One approval round of a post as publishing keeps it until it goes out:
    ``verifying`` (consent asked), ``cleared`` (consent current: delivering),
    ``held`` (consent changed: back to the approver) or ``recalled`` (approval
    withdrew it). ``event`` is None for a round recalled before it arrived."""

    post_id: str
    round: int
    school_id: str
    state: str
    event: contracts.PostApproved | None = None
    updated_at: datetime | None = None  # when the state was last set


class Approvals(Protocol):
    def open(self, event: contracts.PostApproved) -> Approval:
        """Keep this approval round (``verifying``) unless it is known; the stored
        round either way (a recalled round stays recalled)."""

    def get(self, post_id: str, round_: int) -> Approval | None:
        """The round, or None."""

    def newest_round(self, post_id: str) -> int:
        """The highest round known for the post (0: none)."""

    def settle(self, post_id: str, round_: int, state: str, school_id: str) -> None:
        """Set the round's state (inserting a bare round if it is not known yet)."""


class SiteRegister(Protocol):
    """The trust's register of approved sites, kept by IT."""

    def get(self, platform: str) -> Site | None:
        """The platform's entry, or None (not approved)."""

    def all(self) -> list[Site]:
        """Every platform in the register."""

    def put(self, site: Site) -> None:
        """Insert or replace the platform's entry."""


class Tokens(Protocol):
    """Accounts' tokens, encrypted at rest; only a worker ever holds them open."""

    def get(self, account_id: str) -> Credentials | None:
        """The account's tokens, or None if it was never connected."""

    def put(
        self, account_id: str, credentials: Credentials, *, by: str | None = None
    ) -> None:
        """Store new tokens (the account is active again)."""

    def claim_refresh(self, account_id: str, now: datetime, seconds: int) -> bool:
        """Take the account's refresh lock for ``seconds``; False if another has it."""

    def release_refresh(self, account_id: str) -> None:
        """Give the refresh lock back."""


@dataclass(frozen=True)
class OAuthState:
    """One pending authorisation: a random ``state`` sent to the platform, for which
    account, started by whom (username), when, and X's PKCE code verifier."""

    state: str
    account_id: str
    user: str
    created_at: datetime
    code_verifier: str | None = field(default=None, repr=False)


class OAuthStates(Protocol):
    """Pending OAuth authorisations (the verifier encrypted at rest)."""

    def put(self, pending: OAuthState) -> None:
        """Keep a new pending authorisation."""

    def take(self, state: str) -> OAuthState | None:
        """Remove and return it (single use); None if unknown or already taken."""

    def purge(self, before: datetime) -> int:
        """Forget authorisations started before ``before``; how many."""


class Takedowns(Protocol):
    """Who each approved round shows (ids), takedowns and manual takedown tasks."""

    def show(
        self, post_id: str, round_: int, school_id: str, pupils: Sequence[str]
    ) -> None:
        """Remember the pupils an approved round shows unmasked."""

    def posts_showing(self, school_id: str, pupil_id: str) -> list[tuple[str, int]]:
        """(post, round) of every approved round that shows this pupil."""

    def open(self, takedown: Takedown) -> bool:
        """Record a takedown unless known; True if it is new."""

    def get(self, takedown_id: str) -> Takedown | None:
        """The takedown, or None."""

    def complete(self, takedown_id: str, at: datetime) -> bool:
        """Mark it complete, once; True for the caller that did."""

    def open_manual(self, task: ManualTask) -> bool:
        """Open a manual takedown task unless one is open; True if it opened one."""

    def manual(
        self, *, schools: set[str] | None = None, open_only: bool = True
    ) -> list[ManualTask]:
        """Manual tasks, oldest first."""

    def escalate(self, post_id: str, account_id: str, at: datetime) -> bool:
        """Mark an open task escalated, once; True for the caller that did."""

    def close_manual(
        self, post_id: str, account_id: str, by: str, confirmation: str, at: datetime
    ) -> ManualTask | None:
        """Close the open task; None if there is none."""


class Unit(UnitOfWork, Protocol):
    """Publishing's unit of work: its repositories on one transaction, and the
    messages its use case emits (written with the changes, sent after the commit).
    ``sites``, ``takedowns``, ``tokens`` and ``oauth_states`` are None where they are
    not kept (no token key configured; tests that leave them out)."""

    @property
    def accounts(self) -> AccountDirectory: ...

    @property
    def approvals(self) -> Approvals: ...

    @property
    def deliveries(self) -> DeliveryLog: ...

    @property
    def takedowns(self) -> Takedowns | None: ...

    @property
    def sites(self) -> SiteRegister | None: ...

    @property
    def tokens(self) -> Tokens | None: ...

    @property
    def oauth_states(self) -> OAuthStates | None: ...
