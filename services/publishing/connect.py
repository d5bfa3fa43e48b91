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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import httpx

from services.publishing import domain, sites
from services.publishing.bootstrap import Ports
from services.publishing.platforms import graph, linkedin, x
from services.publishing.platforms.base import (
    AuthError,
    Credentials,
    PermanentError,
    PlatformError,
)
from services.publishing.ports import OAuthState
from shared import auth
from shared.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
)

logger = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)
CALLBACK_PATH = "/publishing/oauth/callback"
OAUTH_PLATFORMS = ("facebook", "instagram", "x", "linkedin")
FACEBOOK_SCOPES = ("pages_manage_posts",)
INSTAGRAM_SCOPES = ("instagram_content_publish", "instagram_manage_contents")
X_SCOPES = ("tweet.write", "media.write")
LINKEDIN_SCOPES = ("w_organization_social",)
POSTING_TASK = "CREATE_CONTENT"  # a Page role that may post (Graph's Page tasks)


class ConnectError(ConflictError):
    """The account could not be connected; the message says why in plain words and
    never holds a token."""

    code = "connect_failed"


@dataclass(frozen=True)
class _Vars:
    client_id: str
    client_secret: str
    api_base: tuple[str, str]  # (setting, the real platform's default)
    auth_base: tuple[str, str]
    api_version: tuple[str, str] = ("", "")


_GRAPH = _Vars(
    "FACEBOOK_APP_ID",
    "FACEBOOK_APP_SECRET",
    ("GRAPH_API_BASE", graph.GRAPH_URL),
    ("FACEBOOK_DIALOG_BASE", graph.DIALOG_URL),
    ("GRAPH_API_VERSION", graph.DEFAULT_VERSION),
)
_VARS = {
    "facebook": _GRAPH,
    "instagram": _GRAPH,  # Instagram API with Facebook Login: the same Meta app
    "x": _Vars(
        "X_CLIENT_ID",
        "X_CLIENT_SECRET",
        ("X_API_BASE", x.API_URL),
        ("X_AUTH_BASE", x.WEB_URL),
    ),
    "linkedin": _Vars(
        "LINKEDIN_CLIENT_ID",
        "LINKEDIN_CLIENT_SECRET",
        ("LINKEDIN_API_BASE", linkedin.API_URL),
        ("LINKEDIN_AUTH_BASE", linkedin.WEB_URL),
        ("LINKEDIN_API_VERSION", linkedin.DEFAULT_API_VERSION),
    ),
}


@dataclass(frozen=True)
class PlatformConfig:
    """One platform's app credentials and addresses, from the settings."""

    platform: str
    client_id: str
    client_secret: str = field(repr=False)
    api_base: str
    auth_base: str
    api_version: str = ""

    @classmethod
    def from_env(cls, platform: str, env: dict[str, str]) -> PlatformConfig:
        names = _VARS[platform]

        def read(pair: tuple[str, str]) -> str:
            setting, default = pair
            return (env.get(setting) or default).strip().rstrip("/")

        return cls(
            platform=platform,
            client_id=env.get(names.client_id, "").strip(),
            client_secret=env.get(names.client_secret, "").strip(),
            api_base=read(names.api_base),
            auth_base=read(names.auth_base),
            api_version=read(names.api_version) if names.api_version[0] else "",
        )

    @property
    def graph(self) -> graph.Api:
        return graph.Api(
            base_url=self.api_base,
            dialog_url=self.auth_base,
            version=self.api_version or graph.DEFAULT_VERSION,
        )

    @property
    def authorize_endpoint(self) -> str:
        if self.platform == "x":
            return f"{self.auth_base}/i/oauth2/authorize"
        return f"{self.auth_base}/oauth/v2/authorization"  # LinkedIn

    @property
    def token_endpoint(self) -> str:
        if self.platform == "x":
            return f"{self.api_base}/2/oauth2/token"
        return f"{self.auth_base}/oauth/v2/accessToken"  # LinkedIn


def platform_config(ports: Ports, platform: str) -> PlatformConfig:
    """The platform's settings; ``ConnectError`` naming what is missing."""
    if platform not in _VARS:
        raise InvalidInputError(
            f"{sites.name(platform)} accounts are not connected by signing in",
            code="not_oauth",
        )
    config = PlatformConfig.from_env(platform, dict(ports.platform_env))
    names = _VARS[platform]
    missing = [names.client_id] if not config.client_id else []
    # X may be a public client (PKCE alone); the others need their secret.
    if platform != "x" and not config.client_secret:
        missing.append(names.client_secret)
    if missing:
        raise ConnectError(
            f"{sites.name(platform)} sign-in is not set up on this server: the "
            f"setting(s) {', '.join(missing)} are missing. Ask IT.",
            code="not_configured",
        )
    return config


def redirect_uri(ports: Ports) -> str:
    return ports.public_url.rstrip("/") + CALLBACK_PATH


# -- use cases ---------------------------------------------------------------------


def start(ports: Ports, account_id: str, user: auth.Identity) -> str:
    """Where to send the admin to grant Safepost access to the account."""
    account = connectable(ports, account_id, user)
    config = platform_config(ports, account.kind)
    states = _states(ports)
    now = ports.now()
    state = secrets.token_urlsafe(32)
    verifier = x.new_code_verifier() if account.kind == "x" else None
    states.purge(now - STATE_TTL)
    states.put(OAuthState(state, account.account_id, user.username, now, verifier))
    logger.info("connecting account %s: started by %s", account_id, user.username)
    return _authorize_url(config, redirect_uri(ports), state, verifier)


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
    connector = _CONNECTORS[account.kind]
    try:
        credentials, external_id = connector(
            config, code, redirect_uri(ports), pending, account, ports
        )
    except PlatformError as exc:
        raise _refused(account.kind, exc) from None
    tokens = _tokens(ports)
    tokens.put(account.account_id, credentials, by=user.username)
    connected = replace(
        account,
        external_id=external_id,
        connection=domain.ACTIVE,
        status_reason="",
        token_expires_at=credentials.expires_at,
    )
    ports.accounts.update(connected)
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
    _tokens(ports).put(account.account_id, Credentials(secret), by=user.username)
    ports.accounts.update(
        replace(
            account,
            connection=domain.ACTIVE,
            status_reason="",
            token_expires_at=None,
        )
    )
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
    _tokens(ports)
    _states(ports)
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


def _tokens(ports: Ports) -> Any:
    if ports.tokens is None:
        raise ConnectError(
            "tokens cannot be stored: no token encryption key is configured",
            code="no_token_store",
        )
    return ports.tokens


def _states(ports: Ports) -> Any:
    if ports.oauth_states is None:
        raise ConnectError(
            "connections cannot be started: no token encryption key is configured",
            code="no_token_store",
        )
    return ports.oauth_states


def _pending(ports: Ports, state: str, user: auth.Identity) -> OAuthState:
    """The pending authorisation of ``state``, taken (it works once)."""
    pending: OAuthState | None = _states(ports).take(state) if state else None
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


# -- per platform ------------------------------------------------------------------


def _authorize_url(
    config: PlatformConfig, redirect: str, state: str, verifier: str | None
) -> str:
    if config.platform in ("facebook", "instagram"):
        return graph.authorize_url(config.client_id, redirect, state, api=config.graph)
    if config.platform == "x":
        return x.authorize_url(
            config.client_id,
            redirect,
            state,
            verifier or "",
            endpoint=config.authorize_endpoint,
        )
    return linkedin.authorize_url(
        config.client_id, redirect, state, endpoint=config.authorize_endpoint
    )


Connector = Callable[
    [PlatformConfig, str, str, OAuthState, domain.Account, Ports],
    tuple[Credentials, str],
]


def _facebook(
    config: PlatformConfig,
    code: str,
    redirect: str,
    pending: OAuthState,
    account: domain.Account,
    ports: Ports,
) -> tuple[Credentials, str]:
    pages = _pages(config, code, redirect, ports)
    page = _choose(
        [(p, p.page_id) for p in pages], account.external_id, "Facebook Page"
    )
    return _verified(config, page, FACEBOOK_SCOPES), page.page_id


def _instagram(
    config: PlatformConfig,
    code: str,
    redirect: str,
    pending: OAuthState,
    account: domain.Account,
    ports: Ports,
) -> tuple[Credentials, str]:
    linked = []
    for page in _pages(config, code, redirect, ports):
        ig_user = graph.instagram_account(
            page.page_id, page.access_token, api=config.graph
        )
        if ig_user is not None:
            linked.append((page, ig_user))
    page = _choose(linked, account.external_id, "Instagram account")
    ig_user = next(ig for p, ig in linked if p is page)
    return _verified(config, page, INSTAGRAM_SCOPES), ig_user


def _pages(
    config: PlatformConfig, code: str, redirect: str, ports: Ports
) -> list[graph.PageToken]:
    user_token = graph.exchange_code(
        config.client_id,
        config.client_secret,
        code,
        redirect,
        api=config.graph,
        now=ports.now,
    )
    return graph.page_tokens(user_token.access_token, api=config.graph)


def _choose(
    found: Sequence[tuple[graph.PageToken, str]], wanted: str, what: str
) -> graph.PageToken:
    """The Page whose id (or linked Instagram id) is ``wanted``; with none wanted,
    the only one. Anything else is refused, naming what the person manages."""
    if wanted:
        for page, key in found:
            if key == wanted:
                _check_tasks(page)
                return page
        raise ConnectError(
            f"The Facebook profile you signed in with does not manage the {what} "
            f"{wanted}. It manages: {_listing(found)}.",
            code="page_not_managed",
        )
    if len(found) == 1:
        _check_tasks(found[0][0])
        return found[0][0]
    if not found:
        raise ConnectError(
            f"The Facebook profile you signed in with manages no {what}.",
            code="page_not_managed",
        )
    raise ConnectError(
        f"The Facebook profile you signed in with manages several: {_listing(found)}. "
        f"Enter the id of the one to use in the account's settings, then connect "
        "again.",
        code="several_pages",
    )


def _listing(found: Sequence[tuple[graph.PageToken, str]]) -> str:
    if not found:
        return "nothing"
    return ", ".join(f"{page.name or 'unnamed'} (id {key})" for page, key in found)


def _check_tasks(page: graph.PageToken) -> None:
    if page.tasks and POSTING_TASK not in page.tasks:
        raise ConnectError(
            f"Your role on the Page {page.name} cannot create posts: ask one of its "
            "admins to give you that role, then connect again.",
            code="page_role",
        )


def _verified(
    config: PlatformConfig, page: graph.PageToken, scopes: Sequence[str]
) -> Credentials:
    """The Page token, once Graph confirms it is this app's token for that Page."""
    logging.getLogger("httpx").addFilter(_strip_queries)  # once: addFilter dedups
    info = graph.verify_page_token(
        page.page_id,
        page.access_token,
        f"{config.client_id}|{config.client_secret}",
        require_scopes=scopes,
        api=config.graph,
    )
    return Credentials(page.access_token, None, info.expires_at, info.scopes)


def _x(
    config: PlatformConfig,
    code: str,
    redirect: str,
    pending: OAuthState,
    account: domain.Account,
    ports: Ports,
) -> tuple[Credentials, str]:
    if not pending.code_verifier:
        raise ConnectError("the PKCE verifier was lost: press Connect again.")
    credentials = x.exchange_code(
        config.client_id,
        config.client_secret or None,
        code,
        redirect,
        pending.code_verifier,
        endpoint=config.token_endpoint,
        now=ports.now,
    )
    _check_scopes(credentials, X_SCOPES, "X")
    return credentials, account.external_id


def _linkedin(
    config: PlatformConfig,
    code: str,
    redirect: str,
    pending: OAuthState,
    account: domain.Account,
    ports: Ports,
) -> tuple[Credentials, str]:
    credentials = linkedin.exchange_code(
        config.client_id,
        config.client_secret,
        code,
        redirect,
        endpoint=config.token_endpoint,
        now=ports.now,
    )
    _check_scopes(credentials, LINKEDIN_SCOPES, "LinkedIn")
    return credentials, account.external_id


def _check_scopes(credentials: Credentials, needed: Sequence[str], name: str) -> None:
    if not credentials.scopes:
        return  # the platform did not say: the first post will tell
    missing = sorted(set(needed) - set(credentials.scopes))
    if missing:
        raise ConnectError(
            f"{name} did not grant what posting needs ({', '.join(missing)}): "
            "connect again and allow every permission asked for.",
            code="scopes",
        )


_CONNECTORS: dict[str, Connector] = {
    "facebook": _facebook,
    "instagram": _instagram,
    "x": _x,
    "linkedin": _linkedin,
}


def _strip_queries(record: logging.LogRecord) -> bool:
    """httpx logs every request URL at INFO, and ``/debug_token`` is the one Graph
    call whose URL carries a token (``input_token``, as Meta documents it): httpx's
    log records lose their URLs' query strings."""
    if isinstance(record.args, tuple):
        record.args = tuple(
            a.copy_with(query=None) if isinstance(a, httpx.URL) else a
            for a in record.args
        )
    return True
