"""Tokens renewed before they expire, in the background (every minute).

- X: access tokens last 2 hours; each is renewed about 10 minutes before it ends
  with its refresh token. X's refresh tokens are single-use and rotate, so the
  renewal runs under the account's refresh lock (``tokens.claim_refresh``: another
  process holding it means skip) and the new pair is stored (encrypted) before
  anything else happens: two renewals at once, or a new pair lost, would cost the
  whole token family.
- LinkedIn: access tokens last 60 days; renewed with the refresh token a week before
  they end when LinkedIn granted one (it does not rotate: the same one is kept),
  otherwise the account is marked ``needs_reconnect`` a week ahead, with a warning
  saying when the connection ends, so that its owner reconnects in time.
- Facebook and Instagram: Page tokens taken from a long-lived user token do not
  expire; one that does can only be renewed by signing in again.

A refusal (an ``AuthError``: e.g. ``invalid_grant``, a revoked or spent refresh
token) makes the account ``needs_reconnect`` with a plain-English reason, through
``accounts.needs_reconnect`` in one unit of work (announced as ``account.changed``:
the audit trail has it, and every publishing page shows the banner); its posts wait.
The refresh lock, the new pair and that mark are each their own unit of work; the
platform is called outside any transaction. A platform that does not
answer is tried again next round.

The worker runs ``refresh_forever`` beside the consumer (``background_tasks``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from services.publishing import accounts, connect, domain, sites
from services.publishing.bootstrap import Ports
from services.publishing.platforms import linkedin, x
from services.publishing.platforms.base import (
    AuthError,
    Credentials,
    PermanentError,
    PlatformError,
)
from services.publishing.ports import Tokens
from services.publishing.vault import VaultError
from shared import outbox
from shared.errors import DomainError

logger = logging.getLogger(__name__)

BEFORE = timedelta(minutes=10)  # X: renew a 2-hour token 10 minutes before its end
LINKEDIN_BEFORE = timedelta(days=7)  # LinkedIn: renew (or warn) a week ahead
LOCK_SECONDS = 120  # longer than a token call can take (5 s connect + 30 s read)
EVERY_SECONDS = 60.0
REFRESHER = "safepost-refresh"  # who stored the renewed tokens


@dataclass
class Round:
    """What one round did, by account id."""

    refreshed: list[str] = field(default_factory=list)
    reconnect: list[str] = field(default_factory=list)  # marked needs_reconnect
    busy: list[str] = field(default_factory=list)  # another process had the lock
    retry: list[str] = field(default_factory=list)  # no answer: next round


def refresh_due(ports: Ports, now: datetime, within: timedelta = BEFORE) -> Round:
    """Renew every active account's token that ends within its window."""
    done = Round()
    if ports.tokens is None:
        return done
    for account in ports.accounts.all():
        window = _window(account, within)
        if window is None or not _ends_within(account.token_expires_at, now, window):
            continue
        outcome = refresh_account(ports, account, now, window)
        getattr(done, outcome).append(account.account_id)
    return done


def refresh_forever(
    ports: Ports, stop: threading.Event, interval: float = EVERY_SECONDS
) -> None:
    """The background loop: a round every minute until ``stop``."""
    outbox.every(
        interval, lambda: refresh_due(ports, ports.now()), stop, "token refresh"
    )


def refresh_account(
    ports: Ports, account: domain.Account, now: datetime, window: timedelta
) -> str:
    """One account under its refresh lock: ``refreshed``, ``reconnect``, ``busy``
    or ``retry``."""
    tokens = ports.tokens
    if tokens is None:
        return "retry"
    with ports.unit() as unit:  # the lock: committed before any platform call
        locked = unit.tokens is not None and unit.tokens.claim_refresh(
            account.account_id, now, LOCK_SECONDS
        )
        unit.commit()
    if not locked:
        return "busy"
    try:
        return _claimed(ports, tokens, account, now, window)
    finally:
        with ports.unit() as unit:
            if unit.tokens is not None:
                unit.tokens.release_refresh(account.account_id)
            unit.commit()


def _claimed(
    ports: Ports,
    tokens: Tokens,
    account: domain.Account,
    now: datetime,
    window: timedelta,
) -> str:
    try:
        current = tokens.get(account.account_id)
    except VaultError:
        logger.error(
            "account %s: its stored token cannot be opened", account.account_id
        )
        return "retry"
    if current is None:
        return "retry"
    if not _ends_within(current.expires_at, now, window):
        return "busy"  # renewed by another process since we listed the accounts
    if not current.refresh_token:
        _needs_reconnect(ports, account.account_id, _no_refresh(account, current, now))
        return "reconnect"
    try:
        config = connect.platform_config(ports, account.kind)
        renewed = _renew(config, account.kind, current.refresh_token, now)
    except (AuthError, PermanentError) as exc:
        _needs_reconnect(ports, account.account_id, _refused(account, exc))
        return "reconnect"
    except (PlatformError, DomainError) as exc:
        logger.warning(
            "account %s: token refresh failed (%s); next round",
            account.account_id,
            type(exc).__name__,
        )
        return "retry"
    if account.kind == "linkedin" and renewed.refresh_token is None:
        # LinkedIn's refresh token is not rotated: keep using it until it ends.
        renewed = replace(renewed, refresh_token=current.refresh_token)
    # First of all: the new pair (X's old refresh token is already spent).
    with ports.unit() as unit:
        if unit.tokens is None:
            raise RuntimeError("publishing's unit of work keeps no tokens")
        unit.tokens.put(account.account_id, renewed, by=REFRESHER)
        unit.commit()
    logger.info("account %s: token renewed", account.account_id)
    return "refreshed"


def _renew(
    config: connect.PlatformConfig, platform: str, refresh_token: str, now: datetime
) -> Credentials:
    if platform == "x":
        return x.refresh(
            config.client_id,
            config.client_secret or None,
            refresh_token,
            endpoint=config.token_endpoint,
            now=lambda: now,
        )
    if platform == "linkedin":
        return linkedin.refresh(
            config.client_id,
            config.client_secret,
            refresh_token,
            endpoint=config.token_endpoint,
            now=lambda: now,
        )
    raise AuthError(
        f"{sites.name(platform)} tokens cannot be renewed without signing in"
    )


def _window(account: domain.Account, within: timedelta) -> timedelta | None:
    if not account.enabled or account.connection != domain.ACTIVE:
        return None  # disabled, or already waiting for a person
    if account.kind == "linkedin":
        return max(within, LINKEDIN_BEFORE)
    if account.kind in ("x", "facebook", "instagram"):
        return within
    return None


def _ends_within(ends: datetime | None, now: datetime, window: timedelta) -> bool:
    return ends is not None and ends - now <= window


def _no_refresh(account: domain.Account, current: Credentials, now: datetime) -> str:
    name = sites.name(account.kind)
    ends = current.expires_at
    when = "has ended" if ends is None or ends <= now else f"ends {_day(ends)}"
    if account.kind == "linkedin":
        return (
            f"LinkedIn connections last 60 days and LinkedIn gave no refresh token, "
            f"so this one cannot be renewed: it {when}. Reconnect it to keep posting."
        )
    return (
        f"The {name} connection {when} and {name} gave no way to renew it: "
        "reconnect the account."
    )


def _refused(account: domain.Account, exc: PlatformError) -> str:
    name = sites.name(account.kind)
    return (
        f"{name} refused to renew the connection ({exc.message}). Reconnect the "
        "account; its posts wait until then."
    )


def _needs_reconnect(ports: Ports, account_id: str, reason: str) -> None:
    """Marked and announced in one unit of work (its posts wait)."""
    with ports.unit() as unit:
        account = unit.accounts.get(account_id)
        if account is not None:
            accounts.needs_reconnect(unit, account, reason)
        unit.commit()


def _day(at: datetime) -> str:
    return f"on {at.day} {at:%B %Y} at {at:%H:%M} UTC"
