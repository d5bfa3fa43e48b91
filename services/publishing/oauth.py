"""The platforms' side of connecting an account by OAuth: each platform's app
settings (``PlatformConfig``, from ``ports.platform_env``, defaulting to the real
platforms), its authorisation URL, and the code exchange that gives the account's
tokens (Facebook and Instagram Page tokens checked with ``/debug_token``, X with
PKCE, LinkedIn three-legged). The use cases are in ``connect``; nothing here stores
anything, and no token ever goes in a message, an exception or a log line."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from services.publishing import domain, sites
from services.publishing.bootstrap import Ports
from services.publishing.platforms import graph, linkedin, x
from services.publishing.platforms.base import Credentials
from services.publishing.ports import OAuthState
from shared.errors import ConflictError, InvalidInputError

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


def authorize_url(
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


CONNECTORS: dict[str, Connector] = {
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
