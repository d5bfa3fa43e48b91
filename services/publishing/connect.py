"""Connecting a school's account by OAuth, from the accounts page.

``start`` keeps a random ``state`` (and, for X, the PKCE code verifier, encrypted)
and gives the platform's authorisation URL; the platform sends the admin back to
``{public_url}/publishing/oauth/callback`` with ``code`` and ``state``, and ``finish``
checks the state (known, under 10 minutes old, started by the same person, used
once), exchanges the code and stores the tokens, encrypted, through ``ports.tokens``:

- Facebook (Facebook Login for Pages): the long-lived user token's Page token for
  the account's Page (its ``external_id``; when that is empty and the person manages
  exactly one Page, that one), checked with ``/debug_token`` to be a Page token of
  this app for that Page with the posting permission;
- Instagram (through Facebook Login, the only route on which its API can delete a
  post): the Page token of the Page linked to the account's Instagram professional
  account, checked the same way with ``instagram_manage_contents``; the Instagram
  user id becomes the account's ``external_id``;
- X (OAuth 2.0 authorisation code with PKCE and ``offline.access``): access token,
  refresh token and expiry;
- LinkedIn (3-legged OAuth): access token, the refresh token if LinkedIn granted
  one, and expiry.

Only an admin of the account's school connects it, and only on a site the trust's
register approves. Connecting stores the account's new state with
``accounts.update`` (which announces ``account.changed``); tokens never go in a
message, an exception or a log line.

The platforms' app credentials, API and login addresses and API versions come from
``ports.platform_env`` (``PlatformConfig``), defaulting to the real platforms.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from datetime import timedelta

from services.publishing import accounts, domain, sites
from services.publishing.bootstrap import Ports
from services.publishing.oauth import (
    CALLBACK_PATH,
    CONNECTORS,
    OAUTH_PLATFORMS,
    ConnectError,
    PlatformConfig,
    authorize_url,
    platform_config,
    redirect_uri,
)
from services.publishing.platforms import x
from services.publishing.platforms.base import (
    AuthError,
    Credentials,
    PermanentError,
    PlatformError,
)
from services.publishing.ports import OAuthState, OAuthStates, Tokens, Unit
from shared import auth
from shared.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)

logger = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)
__all__ = [  # the platforms' side, from ``oauth``
    "CALLBACK_PATH",
    "OAUTH_PLATFORMS",
    "ConnectError",
    "PlatformConfig",
    "platform_config",
    "redirect_uri",
]


# -- use cases ---------------------------------------------------------------------


def start(ports: Ports, account_id: str, user: auth.Identity) -> str:
    """Where to send the admin to grant Safepost access to the account."""
    account = connectable(ports, account_id, user)
    config = platform_config(ports, account.kind)
    now = ports.now()
    state = secrets.token_urlsafe(32)
    verifier = x.new_code_verifier() if account.kind == "x" else None
    with ports.unit() as unit:
        states = _states(unit.oauth_states)
        states.purge(now - STATE_TTL)
        states.put(OAuthState(state, account.account_id, user.username, now, verifier))
        unit.commit()
    logger.info("connecting account %s: started by %s", account_id, user.username)
    return authorize_url(config, redirect_uri(ports), state, verifier)


def finish(ports: Ports, state: str, code: str, user: auth.Identity) -> domain.Account:
    """Complete a connection the platform sent back; the connected account."""
    pending = _pending(ports, state, user)
    account = connectable(ports, pending.account_id, user)
    if not code:
        raise ConnectError(
            f"{sites.name(account.kind)} sent no authorisation code: press Connect "
            "again.",
            code="no_code",
        )
    config = platform_config(ports, account.kind)
    connector = CONNECTORS[account.kind]
    try:  # the platform: outside any transaction
        credentials, external_id = connector(
            config, code, redirect_uri(ports), pending, account, ports
        )
    except PlatformError as exc:
        raise _refused(account.kind, exc) from None
    connected = replace(
        account,
        external_id=external_id,
        connection=domain.ACTIVE,
        status_reason="",
        token_expires_at=credentials.expires_at,
    )
    with ports.unit() as unit:  # the tokens and the account's new state together
        _tokens(unit.tokens).put(account.account_id, credentials, by=user.username)
        accounts.save(unit, connected)
        unit.commit()
    logger.info("account %s connected by %s", account.account_id, user.username)
    return connected


def abandon(ports: Ports, state: str, user: auth.Identity) -> domain.Account | None:
    """The person declined on the platform: forget the state; the account it was for
    (if it was this person's), to show the page it came from."""
    try:
        pending = _pending(ports, state, user)
    except (ConflictError, ForbiddenError):
        return None
    account = ports.accounts.get(pending.account_id)
    if account is None or not user.has("admin", account.school_id):
        return None
    return account


def new_webhook_secret(ports: Ports, account_id: str, user: auth.Identity) -> str:
    """A fresh shared secret for a webhook account (the school's website checks each
    post's signature with it), stored encrypted; shown once to the admin, never
    again."""
    account = _admin_account(ports, account_id, user)
    if account.kind != "webhook":
        raise InvalidInputError(
            "only a webhook account has a shared secret", code="not_webhook"
        )
    _approved(ports, account)
    secret = secrets.token_urlsafe(32)
    with ports.unit() as unit:
        tokens = _tokens(unit.tokens)
        tokens.put(account.account_id, Credentials(secret), by=user.username)
        accounts.save(
            unit,
            replace(
                account,
                connection=domain.ACTIVE,
                status_reason="",
                token_expires_at=None,
            ),
        )
        unit.commit()
    logger.info("account %s: new shared secret set by %s", account_id, user.username)
    return secret


def connectable(ports: Ports, account_id: str, user: auth.Identity) -> domain.Account:
    """The account, if this person may connect it by OAuth now."""
    account = _admin_account(ports, account_id, user)
    if account.kind not in OAUTH_PLATFORMS:
        raise InvalidInputError(
            f"{sites.name(account.kind)} accounts are not connected by signing in",
            code="not_oauth",
        )
    _approved(ports, account)
    _tokens(ports.tokens)
    _states(ports.oauth_states)
    return account


# -- checks ------------------------------------------------------------------------


def _admin_account(
    ports: Ports, account_id: str, user: auth.Identity
) -> domain.Account:
    account = ports.accounts.get(account_id)
    if account is None:
        raise NotFoundError(f"no account {account_id}", code="unknown_account")
    auth.require_role(user, account.school_id, "admin")
    return account


def _approved(ports: Ports, account: domain.Account) -> None:
    if not sites.is_approved(ports, account.kind):
        raise ConnectError(
            f"{sites.name(account.kind)} is not an approved site in the trust's "
            "register: ask IT to approve it before connecting an account there.",
            code="site_not_approved",
        )


def _tokens(tokens: Tokens | None) -> Tokens:
    if tokens is None:
        raise ConnectError(
            "tokens cannot be stored: no token encryption key is configured",
            code="no_token_store",
        )
    return tokens


def _states(states: OAuthStates | None) -> OAuthStates:
    if states is None:
        raise ConnectError(
            "connections cannot be started: no token encryption key is configured",
            code="no_token_store",
        )
    return states


def _take(unit: Unit, state: str) -> OAuthState | None:
    pending = _states(unit.oauth_states).take(state)
    unit.commit()  # used once, whatever is then found wrong with it
    return pending


def _pending(ports: Ports, state: str, user: auth.Identity) -> OAuthState:
    """The pending authorisation of ``state``, taken (it works once)."""
    _states(ports.oauth_states)
    pending: OAuthState | None = None
    if state:
        with ports.unit() as unit:
            pending = _take(unit, state)
    if pending is None:
        raise ConnectError(
            "This connection link is unknown or was already used: press Connect "
            "again on the accounts page.",
            code="state_unknown",
        )
    if pending.user != user.username:
        raise ForbiddenError(
            "This connection was started by someone else: press Connect yourself.",
            code="state_other_user",
        )
    if ports.now() - pending.created_at > STATE_TTL:
        raise ConnectError(
            "This connection link is more than 10 minutes old: press Connect again.",
            code="state_expired",
        )
    return pending


def _refused(platform: str, exc: PlatformError) -> ConnectError:
    name = sites.name(platform)
    if isinstance(exc, AuthError | PermanentError):
        return ConnectError(
            f"{name} refused the connection: {exc.message}", code="connect_refused"
        )
    return ConnectError(
        f"{name} did not answer properly ({exc.message}); nothing was stored. "
        "Press Connect to try again.",
        code="platform_unavailable",
        status=502,
    )
