"""What the Facebook Page and Instagram adapters share: Graph API URLs and versions,
the classification of every Graph answer, and Facebook Login for Pages.

Meta's documentation this follows (checked 30 November 2026):

- versions, latest v26.0 (29 July 2026):
  https://developers.facebook.com/docs/graph-api/changelog
- error format and codes (190, 102 and the 458-467 subcodes: new token; 1, 2:
  temporary; 4, 17, 32, 341, 613: throttled; 10, 200-299: permission missing;
  368: temporarily blocked; 506: duplicate post):
  https://developers.facebook.com/docs/graph-api/guides/error-handling
- Instagram's codes (-1, -2: try again; 4/2207051: suspected spam; 9/2207042: daily
  publishing limit; 9007/2207027: not ready; 36000-36003: media refused):
  https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/error-codes
- rate limits, ``X-App-Usage`` and ``X-Business-Use-Case-Usage`` (with
  ``estimated_time_to_regain_access`` in minutes), BUC codes 80000-80099:
  https://developers.facebook.com/docs/graph-api/overview/rate-limiting
- the manual login flow (``/dialog/oauth``, code exchange at ``/oauth/access_token``):
  https://developers.facebook.com/docs/facebook-login/guides/advanced/manual-flow
- long-lived user tokens (``grant_type=fb_exchange_token``) and Page tokens that do
  not expire when taken from one:
  https://developers.facebook.com/docs/facebook-login/guides/access-tokens/get-long-lived
- Page tokens from ``GET /me/accounts``: https://developers.facebook.com/docs/pages-api/getting-started
- the Instagram account of a Page (``?fields=instagram_business_account``):
  https://developers.facebook.com/docs/instagram-platform/instagram-api-with-facebook-login/get-started
- ``/debug_token`` (``type`` USER or PAGE, ``profile_id`` of a Page token):
  https://developers.facebook.com/docs/graph-api/reference/debug_token
- permission names: https://developers.facebook.com/docs/permissions

Tokens travel in the ``Authorization: Bearer`` header (Graph accepts it), never in a
URL: httpx logs every request URL at INFO. The one exception is ``/debug_token``,
whose ``input_token`` is documented as a query parameter.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from authlib.integrations.httpx_client import OAuth2Client

from services.publishing.platforms.base import (
    AmbiguousError,
    AuthError,
    Destination,
    PermanentError,
    PlatformError,
    RateLimitedError,
    TransientError,
)

logger = logging.getLogger(__name__)

DEFAULT_VERSION = "v26.0"
GRAPH_URL = "https://graph.facebook.com"
DIALOG_URL = "https://www.facebook.com"
# Facebook Login for Pages: list the Pages, post to them and read back what was
# posted; the linked Instagram account: read, publish, and delete
# (instagram_manage_contents is what DELETE /{ig-media-id} needs).
SCOPES = (
    "pages_show_list",
    "pages_manage_posts",
    "pages_read_engagement",
    "instagram_basic",
    "instagram_content_publish",
    "instagram_manage_contents",
)

Clock = Callable[[], datetime]
_VERSION = re.compile(r"v\d+\.\d+")
_ID = re.compile(r"[A-Za-z0-9_]+")
_AUTH_CODES = frozenset({102, 190})
_AUTH_SUBCODES = frozenset({458, 459, 460, 463, 464, 467, 492, 2207050})
_RATE_CODES = frozenset({4, 17, 32, 341, 613})
_RETRY_CODES = frozenset({-2, 368, 9007})  # an error answer: nothing was created
_SERVER_CODES = frozenset({-1, 1, 2})  # the platform failed: a create may exist
_REFUSED = frozenset({(4, 2207051)})  # suspected spam: a person must look
_PUBLISH_LIMIT = (9, 2207042)
MISSING = frozenset({"100/33", "803"})  # "object does not exist" and kin


def utcnow() -> datetime:
    return datetime.now(UTC)


def timeout(connect: float = 5.0, read: float = 30.0) -> httpx.Timeout:
    return httpx.Timeout(read, connect=connect)


def api_version(dest: Destination) -> str:
    version = dest.api_version or DEFAULT_VERSION
    if not _VERSION.fullmatch(version):
        raise PermanentError(f"not a Graph API version: {version!r}", code="version")
    return version


def object_id(value: str) -> str:
    """An id that is safe in a URL path (Graph ids are digits and underscores)."""
    if not _ID.fullmatch(value):
        raise PermanentError("not a Graph object id", code="bad_id")
    return value


def text_field(body: Mapping[str, Any], name: str, *, create: bool = False) -> str:
    """A required string field of a success answer (a malformed one is no success)."""
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _malformed(create, f"answer without {name}")
    return value


def is_missing(error: PlatformError) -> bool:
    """Graph's answer for an object that does not exist (or no longer does)."""
    return isinstance(error, PermanentError) and error.code in MISSING


# -- classification -------------------------------------------------------------


def request(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    token: str,
    create: bool = False,
    now: Clock = utcnow,
    **kwargs: Any,
) -> dict[str, Any]:
    """One Graph call; its JSON object, or the classified ``PlatformError``.
    ``create`` marks the call that makes a post live: silence there is ambiguous."""
    headers = {"Authorization": f"Bearer {token}"}
    try:
        response = client.request(method, url, headers=headers, **kwargs)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        # Nothing reached the platform. `from None`: the exception holds the request.
        name = type(exc).__name__
        raise TransientError(
            f"Graph API unreachable ({name})", code="unreachable"
        ) from None
    except httpx.TransportError as exc:
        kind = AmbiguousError if create else TransientError
        name = type(exc).__name__
        raise kind(f"no answer from the Graph API ({name})", code="no_answer") from None
    return answer(response, create=create, now=now)


def answer(
    response: httpx.Response, *, create: bool = False, now: Clock = utcnow
) -> dict[str, Any]:
    """The JSON object of a success; otherwise raise what the answer means."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success:
        if isinstance(body, dict) and "error" not in body:
            return body
        raise _malformed(create, f"HTTP {response.status_code} without a JSON object")
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        raise classify(error, response.status_code, response.headers, create, now)
    if response.status_code == 429:
        retry_at = regain_at(response.headers, now)
        raise RateLimitedError("HTTP 429", status=429, retry_at=retry_at)
    if response.status_code >= 500:
        kind = AmbiguousError if create else TransientError
        raise kind(f"HTTP {response.status_code}", status=response.status_code)
    raise _malformed(create, f"HTTP {response.status_code} without a Graph error")


def classify(
    error: Mapping[str, Any],
    status: int,
    headers: Mapping[str, str],
    create: bool,
    now: Clock = utcnow,
) -> PlatformError:
    """A Graph ``error`` object as a ``PlatformError``, by its integer codes."""
    code, sub = _integer(error.get("code")), _integer(error.get("error_subcode"))
    if code is None:
        return _malformed(create, f"HTTP {status} with an error without a code")
    transient = error.get("is_transient") is True
    kind = _kind(code, sub, status, transient, create)
    tag = str(code) if sub is None else f"{code}/{sub}"
    text = error.get("error_user_msg") or error.get("message") or "Graph API error"
    retry_at = regain_at(headers, now) if kind is RateLimitedError else None
    return kind(str(text), status=status, code=tag, retry_at=retry_at)


def _kind(
    code: int, sub: int | None, status: int, transient: bool, create: bool
) -> type[PlatformError]:
    if (code, sub) in _REFUSED:
        return PermanentError
    if code in _AUTH_CODES or sub in _AUTH_SUBCODES:
        return AuthError
    if code == 10 or 200 <= code <= 299:
        # A permission was never granted or was removed: reconnecting fixes it.
        return AuthError
    if code in _RATE_CODES or 80000 <= code <= 80099 or (code, sub) == _PUBLISH_LIMIT:
        return RateLimitedError
    if code in _SERVER_CODES or status >= 500 or transient:
        # Graph has been known to create the post and still answer an error.
        return AmbiguousError if create else TransientError
    if code in _RETRY_CODES:
        return TransientError
    return PermanentError


def regain_at(headers: Mapping[str, str], now: Clock = utcnow) -> datetime | None:
    """When access comes back, from ``estimated_time_to_regain_access`` (minutes) in
    the usage headers; None when the platform did not say."""
    minutes = 0
    for name in ("x-business-use-case-usage", "x-app-usage"):
        for usage in _usages(headers.get(name)):
            minutes = max(
                minutes, _integer(usage.get("estimated_time_to_regain_access")) or 0
            )
    return now() + timedelta(minutes=minutes) if minutes > 0 else None


def _usages(raw: str | None) -> list[Mapping[str, Any]]:
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        return []
    if not isinstance(parsed, dict):
        return []
    if "call_count" in parsed:  # X-App-Usage: one flat object
        return [parsed]
    return [
        u
        for v in parsed.values()
        if isinstance(v, list)
        for u in v
        if isinstance(u, dict)
    ]


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _malformed(create: bool, what: str) -> PlatformError:
    kind = AmbiguousError if create else TransientError
    return kind(f"malformed Graph answer: {what}", code="malformed")


# -- one adapter call -----------------------------------------------------------


class Session:
    """One adapter call's connection to the Graph API for one destination."""

    def __init__(self, dest: Destination, limits: httpx.Timeout, now: Clock) -> None:
        if dest.credentials is None or not dest.credentials.access_token:
            raise AuthError("the account has no access token", code="no_token")
        self._token = dest.credentials.access_token
        self._base = f"{dest.base_url.rstrip('/')}/{api_version(dest)}"
        self._client = httpx.Client(timeout=limits, follow_redirects=False)
        self._now = now

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def call(
        self, method: str, path: str, *, create: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        url = f"{self._base}/{path}"
        return request(
            self._client,
            method,
            url,
            token=self._token,
            create=create,
            now=self._now,
            **kwargs,
        )


def parse_time(value: object) -> datetime | None:
    """Graph's ``2026-11-30T23:47:23+0000``."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return None


def not_before(since: datetime) -> datetime:
    """``since`` to the second, as Graph keeps creation times (naive means UTC)."""
    aware = since if since.tzinfo is not None else since.replace(tzinfo=UTC)
    return aware.replace(microsecond=0)


# -- Facebook Login for Pages -----------------------------------------------------


@dataclass(frozen=True)
class Api:
    """Where Facebook Login and the Graph API are (the real ones or a sandbox)."""

    base_url: str = GRAPH_URL
    dialog_url: str = DIALOG_URL
    version: str = DEFAULT_VERSION
    connect_timeout: float = 5.0
    read_timeout: float = 30.0

    def url(self, path: str) -> str:
        if not _VERSION.fullmatch(self.version):
            raise PermanentError(f"not a Graph API version: {self.version!r}")
        return f"{self.base_url.rstrip('/')}/{self.version}/{path}"

    @property
    def limits(self) -> httpx.Timeout:
        return timeout(self.connect_timeout, self.read_timeout)


@dataclass(frozen=True)
class UserToken:
    access_token: str = field(repr=False)
    expires_at: datetime | None


@dataclass(frozen=True)
class PageToken:
    page_id: str
    name: str
    access_token: str = field(repr=False)
    tasks: tuple[str, ...] = ()


@dataclass(frozen=True)
class TokenInfo:
    page_id: str
    expires_at: datetime | None  # None: the token does not expire
    scopes: tuple[str, ...]


def authorize_url(
    app_id: str,
    redirect_uri: str,
    state: str,
    scopes: Collection[str] = SCOPES,
    *,
    api: Api = Api(),
) -> str:
    """Facebook Login's dialog, which sends the person back with ``code`` and
    ``state`` (the caller checks ``state`` against the one it kept)."""
    with OAuth2Client(
        client_id=app_id, redirect_uri=redirect_uri, scope=",".join(scopes)
    ) as oauth:
        dialog = f"{api.dialog_url.rstrip('/')}/{api.version}/dialog/oauth"
        url, _ = oauth.create_authorization_url(dialog, state=state)
    return str(url)


def exchange_code(
    app_id: str,
    app_secret: str,
    code: str,
    redirect_uri: str,
    *,
    api: Api = Api(),
    now: Clock = utcnow,
) -> UserToken:
    """The dialog's code for a short-lived user token, then that for a long-lived one
    (about 60 days), whose Page tokens do not expire.

    Authlib sends both grants as POST forms with the client credentials in the body
    (``client_secret_post``); Meta documents GET with query parameters, but Graph
    takes the same parameters in a POST body, and that keeps the app secret and the
    tokens out of URLs (which httpx logs)."""
    endpoint = api.url("oauth/access_token")
    oauth = OAuth2Client(
        client_id=app_id,
        client_secret=app_secret,
        token_endpoint_auth_method="client_secret_post",
        timeout=api.limits,
    )
    oauth.register_compliance_hook("access_token_response", _token_answer)
    try:
        with oauth:
            short = oauth.fetch_token(endpoint, code=code, redirect_uri=redirect_uri)
            long = oauth.fetch_token(
                endpoint,
                grant_type="fb_exchange_token",
                fb_exchange_token=short["access_token"],
            )
    except httpx.TransportError as exc:
        name = type(exc).__name__
        raise TransientError(f"no answer from Facebook Login ({name})") from None
    expires_in = _integer(long.get("expires_in"))
    expires_at = now() + timedelta(seconds=expires_in) if expires_in else None
    return UserToken(str(long["access_token"]), expires_at)


def _token_answer(response: httpx.Response) -> httpx.Response:
    body = answer(response)
    text_field(body, "access_token")
    return response


def page_tokens(user_token: str, *, api: Api = Api()) -> list[PageToken]:
    """The Pages the person can act on, each with its Page token (which does not
    expire when ``user_token`` is long-lived)."""
    pages: list[PageToken] = []
    params = {"fields": "id,name,access_token,tasks", "limit": "100"}
    with httpx.Client(timeout=api.limits) as client:
        for _ in range(20):  # 2,000 Pages is more than any school has
            body = request(
                client, "GET", api.url("me/accounts"), token=user_token, params=params
            )
            data = body.get("data")
            if not isinstance(data, list):
                raise _malformed(False, "accounts without data")
            pages.extend(_page_token(item) for item in data)
            after = _next_cursor(body)
            if after is None:
                break
            params["after"] = after
    return pages


def _page_token(item: object) -> PageToken:
    if not isinstance(item, dict):
        raise _malformed(False, "an account that is not an object")
    tasks = item.get("tasks")
    return PageToken(
        page_id=text_field(item, "id"),
        name=str(item.get("name") or ""),
        access_token=text_field(item, "access_token"),
        tasks=tuple(str(t) for t in tasks) if isinstance(tasks, list) else (),
    )


def _next_cursor(body: Mapping[str, Any]) -> str | None:
    paging = body.get("paging")
    if not isinstance(paging, dict) or not paging.get("next"):
        return None
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, dict) else None
    return after if isinstance(after, str) and after else None


def instagram_account(page_id: str, page_token: str, *, api: Api = Api()) -> str | None:
    """The Instagram professional account linked to the Page, if any."""
    url = api.url(object_id(page_id))
    params = {"fields": "instagram_business_account"}
    with httpx.Client(timeout=api.limits) as client:
        body = request(client, "GET", url, token=page_token, params=params)
    linked = body.get("instagram_business_account")
    if linked is None:
        return None
    if not isinstance(linked, dict):
        raise _malformed(False, "instagram_business_account is not an object")
    return text_field(linked, "id")


def verify_page_token(
    page_id: str,
    token: str,
    app_token: str,
    *,
    require_scopes: Collection[str] = (),
    api: Api = Api(),
) -> TokenInfo:
    """Check with ``/debug_token`` that ``token`` is a valid Page token of this app
    for ``page_id`` (not the person's user token); ``AuthError`` otherwise."""
    params = {"input_token": token}
    with httpx.Client(timeout=api.limits) as client:
        body = request(
            client, "GET", api.url("debug_token"), token=app_token, params=params
        )
    data = body.get("data")
    if not isinstance(data, dict):
        raise _malformed(False, "debug_token without data")
    if data.get("is_valid") is not True:
        raise AuthError("the token is not valid", code="invalid_token")
    if data.get("type") != "PAGE" or str(data.get("profile_id")) != page_id:
        raise AuthError("not a Page token of this Page", code="not_page_token")
    app_id = app_token.partition("|")[0] if "|" in app_token else None
    if app_id is not None and str(data.get("app_id")) != app_id:
        raise AuthError("the token belongs to another app", code="other_app")
    raw_scopes = data.get("scopes")
    scopes = tuple(str(s) for s in raw_scopes) if isinstance(raw_scopes, list) else ()
    missing = sorted(set(require_scopes) - set(scopes))
    if missing:
        raise AuthError(f"permissions not granted: {', '.join(missing)}", code="scopes")
    expires = _integer(data.get("expires_at")) or 0
    expires_at = datetime.fromtimestamp(expires, UTC) if expires > 0 else None
    return TokenInfo(page_id, expires_at, scopes)
