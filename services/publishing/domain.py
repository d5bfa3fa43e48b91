"""Publishing rules: accounts, whether a post may go to one, delivery markers. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SOCIAL = ("facebook", "instagram", "x", "linkedin")
KINDS = (*SOCIAL, "webhook", "folder")
# An account's connection: its token works, or a person must connect it again.
ACTIVE, NEEDS_RECONNECT, DISABLED = "active", "needs_reconnect", "disabled"
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
SCHOOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")
# A post on one account: pending -> sending -> live | waiting (reason, retried) |
# reconciling (the answer was lost: look for it before any retry) | unconfirmed (a
# person must say) | failed (reason) | held (consent changed, or recalled).
PENDING, SENDING, LIVE, WAITING = "pending", "sending", "live", "waiting"
RECONCILING, UNCONFIRMED, FAILED, HELD = "reconciling", "unconfirmed", "failed", "held"
STARTED, DONE = SENDING, LIVE  # the names before deliveries retried
# Taking a live copy down: live -> taking_down -> taken_down | takedown_failed
# (retried) | manual_takedown_required (a person removes it, and says so).
TAKING_DOWN, TAKEN_DOWN = "taking_down", "taken_down"
TAKEDOWN_FAILED, MANUAL = "takedown_failed", "manual_takedown_required"
# picked up by the delivery loop when due
DUE = (PENDING, WAITING, RECONCILING, TAKING_DOWN, TAKEDOWN_FAILED)
FINAL = (LIVE, FAILED, HELD, TAKEN_DOWN)
UNSETTLED = (LIVE, SENDING, RECONCILING, UNCONFIRMED)  # may be on the platform
# An approval round, as publishing keeps it until it goes out.
VERIFYING, CLEARED, ROUND_HELD, RECALLED = "verifying", "cleared", "held", "recalled"
PURPOSES = ("social_media", "website", "press", "internal_display")


@dataclass(frozen=True)
class Account:
    account_id: str
    school_id: str
    kind: str
    name: str
    config: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True
    # The platform's id of the account: Page id, Instagram user id, X user id,
    # LinkedIn organisation URN, webhook URL; "<school>/<account>" for a folder.
    external_id: str = ""
    owner: str = ""  # the designated staff member who oversees it (username)
    footer: str = ""  # added to every caption (e.g. the registered-office text)
    connection: str = ACTIVE  # active | needs_reconnect
    status_reason: str = ""  # why it needs reconnecting, in words
    token_expires_at: datetime | None = None
    api_base: str = ""  # the API's base URL ("" = the platform's own)

    @property
    def purpose(self) -> str:
        """Whose consent its audience needs: a social platform is ``social_media``;
        a folder or webhook says (a school website is ``website``)."""
        if self.kind in SOCIAL:
            return "social_media"
        configured = str(self.config.get("purpose") or "")
        if configured in PURPOSES:
            return configured
        return "website" if self.kind == "webhook" else "social_media"

    @property
    def consent_platform(self) -> str | None:
        """The platform whose own consent answer narrows the purpose's: the social
        platform itself, else one a folder or webhook names (e.g. a folder standing
        in for a Facebook page), else none."""
        if self.kind in SOCIAL:
            return self.kind
        named = self.config.get("consent_platform")
        return str(named) if named else None

    @property
    def status(self) -> str:
        """active, needs_reconnect or disabled (as the admin page shows it)."""
        return self.connection if self.enabled else DISABLED


@dataclass(frozen=True)
class Delivery:
    """The marker of one post on one account: started before the write, then done."""

    post_id: str
    account_id: str
    school_id: str
    status: str
    at: datetime
    target: str = ""
    location: str = ""
    reason: str = ""
    round: int = 1
    attempts: int = 0
    next_attempt_at: datetime | None = None
    external_id: str = ""  # the platform's id of the live post
    url: str = ""  # the live post's address
    detail: str = ""  # the platform's own words when it refused
    sending_since: datetime | None = None
    live_at: datetime | None = None
    takedown_id: str | None = None  # the takedown this copy is to come down for
    taken_down_at: datetime | None = None


@dataclass(frozen=True)
class Site:
    """A platform in the trust's register of approved sites (kept by IT)."""

    platform: str
    approved: bool
    answers: Mapping[str, Any] = field(default_factory=dict)  # due diligence
    approved_by: str | None = None
    approved_at: datetime | None = None
    withdrawn_by: str | None = None
    withdrawn_at: datetime | None = None
    note: str = ""


def refusal(account: Account | None, account_id: str, school_id: str) -> str | None:
    """Why the post may not go to this account (default deny), or None if it may."""
    if account is None:
        return "unknown_account"
    if not account.enabled:
        return "account_disabled"
    if account.school_id != school_id:
        return "school_mismatch"
    if account.kind not in KINDS:
        return "unsupported_target"
    return None


@dataclass(frozen=True)
class Takedown:
    """Live copies to come down for one reason: a consent change for a pupil (id
    only), or a person's request."""

    takedown_id: str
    school_id: str
    reason: str  # withdrawn | no_longer_shown | expired | on_request
    requested_at: datetime
    pupil_id: str | None = None
    detail: str = ""
    by: str | None = None
    changed_at: datetime | None = None  # when the consent change was saved
    completed_at: datetime | None = None


@dataclass(frozen=True)
class ManualTask:
    """A copy a platform would not delete: a person must remove it and say so."""

    post_id: str
    account_id: str
    school_id: str
    reason: str
    opened_at: datetime
    owner: str = ""
    url: str = ""
    escalated_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    confirmation: str = ""


Scope = tuple[str, str | None]  # (purpose, platform or None: the whole purpose)


def affected(account: Account | None, scopes: Sequence[Scope]) -> bool:
    """Whether a takedown for these consent scopes concerns this account: its
    purpose, and either the whole purpose or the account's own platform. Unknown
    account: yes (fail closed)."""
    if account is None:
        return True
    return any(
        purpose == account.purpose
        and (platform is None or platform == account.consent_platform)
        for purpose, platform in scopes
    )
