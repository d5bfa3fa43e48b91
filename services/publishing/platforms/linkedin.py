"""LinkedIn adapter: organisation posts with images over the versioned REST API.

What it calls (``Destination.base_url`` is ``https://api.linkedin.com`` or the
sandbox; ``external_id`` is the organisation URN, ``urn:li:organization:{id}``; every
call carries ``Authorization: Bearer``, ``LinkedIn-Version: YYYYMM`` from
``Destination.api_version`` (default ``DEFAULT_API_VERSION``) and
``X-Restli-Protocol-Version: 2.0.0``):

- per image ``POST /rest/images?action=initializeUpload``
  ``{"initializeUploadRequest": {"owner": org}}`` -> ``{"value": {"uploadUrl",
  "image"}}``, then ``PUT`` the bytes to ``uploadUrl`` (201);
- ``POST /rest/posts`` as the organisation: ``commentary`` (the caption, with
  LinkedIn's reserved "little text" characters escaped), ``visibility: PUBLIC``,
  ``distribution.feedDistribution: MAIN_FEED``, ``lifecycleState: PUBLISHED`` and
  ``content.media`` (one image) or ``content.multiImage`` (2-20) -> 201 with the post
  URN in the ``x-restli-id`` header;
- ``DELETE /rest/posts/{urn}`` (204; 404 is already gone), ``GET /rest/posts/{urn}``,
  ``GET /rest/posts?q=author&author={org}&sortBy=CREATED&start=...&count=100`` (the
  author finder, read page by page for ``recent``).

Answers are classified by status and LinkedIn's ``code``/``serviceErrorCode`` fields:
401 auth; 403 auth too (the member lost the page role or the scope: an admin must
reconnect); 429 rate-limited until ``Retry-After`` if given, else the next midnight
UTC, when LinkedIn's daily limits reset; 426 ``NONEXISTENT_VERSION`` (the API version
is retired: change the setting) and other 4xx permanent with LinkedIn's ``message``;
5xx, timeouts and dropped connections on ``POST /rest/posts`` ambiguous, elsewhere
transient. An uploaded but unused image is never public, and the Images API has no
delete, so a failed post leaves nothing to clean up.

OAuth: 3-legged authorisation code (Authlib) with ``w_organization_social`` and
``r_organization_social``. Access tokens last 60 days; refresh tokens (365 days,
not rotated) are only granted to approved Marketing Developer Platform apps, so
``Credentials.refresh_token`` may be None: then the owner must reconnect before
``expires_at`` (``reconnect_due``).

Documentation (checked 2026-11):

- https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/images-api
- https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/posts-api
  (schema, multiImage, author finder, delete, little-text escaping)
- https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/pagination
  (``start``/``count``; the end of the data set is a page with fewer elements than
  ``count``); the posts finder's ``count`` is at most 100, ``sortBy`` ``CREATED`` or
  ``LAST_MODIFIED`` (the default), ``start`` from 0 (posts-api, "Find Posts by
  Authors")
- https://learn.microsoft.com/en-us/linkedin/marketing/versioning (monthly versions,
  each supported for at least a year; 202601 the latest documented at writing)
- https://learn.microsoft.com/en-us/linkedin/shared/api-guide/concepts/rate-limits
  (429; daily limits reset at midnight UTC)
- https://learn.microsoft.com/en-us/linkedin/shared/authentication/authorization-code-flow
- https://learn.microsoft.com/en-us/linkedin/shared/authentication/programmatic-refresh-tokens
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client

from services.publishing.platforms import paging
from services.publishing.platforms.base import (
    AmbiguousError,
    AuthError,
    Credentials,
    Destination,
    LivePost,
    Media,
    PermanentError,
    PlatformError,
    RateLimitedError,
    RecentPost,
    TransientError,
)

API_URL = "https://api.linkedin.com"
WEB_URL = "https://www.linkedin.com"  # Destination.settings["web_url"] overrides
AUTHORIZE_URL = "https://www.linkedin.com/oauth/v2/authorization"
TOKEN_URL = "https://www.linkedin.com/oauth/v2/accessToken"
SCOPES = ("w_organization_social", "r_organization_social")
# LinkedIn retires each monthly version about a year after release: bump this (or
# set the account's api_version) before it is sunset.
DEFAULT_API_VERSION = "202601"
MAX_IMAGES = 20
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif")
RECENT_PAGE_SIZE = 100  # the posts finder's largest ``count``
# Characters LinkedIn's "little text" format reserves in a commentary; unescaped,
# they are read as markup and the text can be cut short.
RESERVED = "\\|{}@[]()<>#*_~"

_ORG = re.compile(r"^urn:li:organization:[0-9]+$")
_POST = re.compile(r"^urn:li:(share|ugcPost):[0-9]+$")
_IMAGE = re.compile(r"^urn:li:image:[A-Za-z0-9_-]+$")
_ESCAPED = re.compile(r"\\([\\|{}@\[\]()<>#*_~])")


def escape_commentary(text: str) -> str:
    """The caption in LinkedIn's little-text format: every reserved character
    backslash-escaped, so it shows exactly as written."""
    return "".join(f"\\{c}" if c in RESERVED else c for c in text)


def unescape_commentary(text: str) -> str:
    return _ESCAPED.sub(r"\1", text)


def reconnect_due(
    creds: Credentials, now: datetime, warning: timedelta = timedelta(days=14)
) -> bool:
    """Whether the owner must reconnect soon: no refresh token, and the access token
    expires within ``warning`` (or has expired)."""
    if creds.refresh_token or creds.expires_at is None:
        return False
    return creds.expires_at - warning <= now


class LinkedInAdapter:
    """Publishes as one LinkedIn organisation (Company Page)."""

    platform = "linkedin"

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        recent_page_size: int = RECENT_PAGE_SIZE,
        recent_max_pages: int = paging.MAX_PAGES,
    ):
        paging.check_bounds(recent_page_size, recent_max_pages, RECENT_PAGE_SIZE)
        self.timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self.now = now
        self.recent_page_size = recent_page_size
        self.recent_max_pages = recent_max_pages

    def publish(
        self, dest: Destination, caption: str, media: Sequence[Media]
    ) -> LivePost:
        _check_media(media)
        org = _organisation(dest.external_id)
        with self._client(dest) as client:
            images = [self._upload(client, dest, org, image) for image in media]
            body = _post_body(org, caption, images)
            resp = self._call(client, "POST", "/rest/posts", create=True, json=body)
        urn = resp.headers.get("x-restli-id", "")
        if resp.status_code != 201 or not _POST.match(urn):
            raise AmbiguousError("LinkedIn's answer has no post URN", code="malformed")
        return LivePost(urn, _post_url(dest, urn))

    def delete(self, dest: Destination, external_id: str) -> None:
        path = f"/rest/posts/{_path_urn(external_id)}"
        with self._client(dest) as client:
            self._call(client, "DELETE", path, headers={"X-RestLi-Method": "DELETE"})

    def lookup(self, dest: Destination, external_id: str) -> LivePost | None:
        path = f"/rest/posts/{_path_urn(external_id)}"
        with self._client(dest) as client:
            resp = self._call(client, "GET", path)
        if resp.status_code == 404:
            return None
        urn = _json(resp).get("id")
        if not isinstance(urn, str) or not _POST.match(urn):
            raise TransientError("LinkedIn's post has no valid id", code="malformed")
        return LivePost(urn, _post_url(dest, urn))

    def recent(self, dest: Destination, since: datetime) -> list[RecentPost]:
        """The organisation's posts since ``since``, newest first, read with the
        author finder sorted by creation (``sortBy=CREATED``) page by page
        (``start``/``count``) until a page is short (LinkedIn's end of the data set:
        fewer elements than ``count``, and ``paging.total`` reached when given) or
        ends with a post older than ``since``. More than ``recent_max_pages`` pages
        is ``TransientError`` (``recent_incomplete``), never a partial list.

        Offsets shift when posts are made or deleted between two pages, so each
        page starts at the previous page's last post: it must be there again (a
        deletion before it would otherwise skip a post unseen: then the list is
        incomplete), and a post shown twice is kept once."""
        org = _organisation(dest.external_id)
        count, start = self.recent_page_size, 0
        last: str | None = None
        found: list[RecentPost] = []
        with self._client(dest) as client:
            for _ in range(self.recent_max_pages):
                params = {
                    "q": "author",
                    "author": org,
                    "sortBy": "CREATED",
                    "start": str(start),
                    "count": str(count),
                }
                resp = self._call(
                    client,
                    "GET",
                    "/rest/posts",
                    params=params,
                    headers={"X-RestLi-Method": "FINDER"},
                )
                body = _json(resp)
                posts = [_recent_post(dest, e) for e in _elements(body)]
                if last is not None and last not in {p.external_id for p in posts}:
                    raise paging.incomplete("LinkedIn", "the list shifted while read")
                found += [p for p in posts if paging.is_since(p, since)]
                older = bool(posts) and paging.is_before(posts[-1], since)
                if older or not _more(body, start, len(posts), count):
                    return paging.unique(found)
                start, last = start + len(posts) - 1, posts[-1].external_id
        raise paging.too_many_pages("LinkedIn", self.recent_max_pages)

    # -- HTTP ------------------------------------------------------------------------

    @contextmanager
    def _client(self, dest: Destination) -> Iterator[httpx.Client]:
        if dest.credentials is None or not dest.credentials.access_token:
            raise AuthError("the LinkedIn account has no access token", code="no_token")
        headers = {
            "Authorization": f"Bearer {dest.credentials.access_token}",
            "LinkedIn-Version": dest.api_version or DEFAULT_API_VERSION,
            "X-Restli-Protocol-Version": "2.0.0",
        }
        with httpx.Client(
            base_url=dest.base_url or API_URL, headers=headers, timeout=self.timeout
        ) as client:
            yield client

    def _upload(
        self, client: httpx.Client, dest: Destination, org: str, image: Media
    ) -> str:
        request = {"initializeUploadRequest": {"owner": org}}
        resp = self._call(
            client,
            "POST",
            "/rest/images",
            params={"action": "initializeUpload"},
            json=request,
        )
        value = _json(resp).get("value")
        value = value if isinstance(value, dict) else {}
        upload_url, urn = value.get("uploadUrl"), value.get("image")
        if not isinstance(urn, str) or not _IMAGE.match(urn):
            raise TransientError("LinkedIn gave no image URN", code="malformed")
        if not isinstance(upload_url, str) or not _trusted(upload_url, dest):
            raise TransientError("LinkedIn gave no usable upload URL", code="malformed")
        headers = {"Content-Type": "application/octet-stream"}
        self._call(client, "PUT", upload_url, content=image.data, headers=headers)
        return urn

    def _call(
        self,
        client: httpx.Client,
        method: str,
        url: str,
        *,
        create: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """One call, classified: a 2xx answer, or a 404 for a post (gone)."""
        unsure: type[PlatformError] = AmbiguousError if create else TransientError
        try:
            resp = client.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientError(
                "LinkedIn could not be reached", code="unreachable"
            ) from exc
        except httpx.TransportError as exc:
            where = urlsplit(url).path
            raise unsure(
                f"no answer from LinkedIn to {method} {where} ({type(exc).__name__})",
                code="no_answer",
            ) from exc
        if resp.is_success:
            return resp
        if resp.status_code == 404 and url.startswith("/rest/posts/"):
            return resp
        raise self._error(resp, unsure)

    def _error(
        self, resp: httpx.Response, unsure: type[PlatformError]
    ) -> PlatformError:
        status = resp.status_code
        code, message = _problem(resp)
        if status in (401, 403):
            return AuthError(message, status=status, code=code)
        if status == 429:
            retry_at = _retry_after(resp, self.now()) or _next_midnight(self.now())
            return RateLimitedError(
                message, status=status, code=code, retry_at=retry_at
            )
        if status >= 500:
            return unsure(message, status=status, code=code)
        return PermanentError(message, status=status, code=code)


# -- OAuth 2.0 (3-legged) -------------------------------------------------------------


def authorize_url(
    client_id: str,
    redirect_uri: str,
    state: str,
    *,
    scopes: Sequence[str] = SCOPES,
    endpoint: str = AUTHORIZE_URL,
) -> str:
    """Where a page admin grants Safepost the right to post as the organisation."""
    with _oauth(
        client_id, None, redirect_uri, " ".join(scopes), httpx.Timeout(5.0)
    ) as c:
        url, _ = c.create_authorization_url(endpoint, state=state)
    return str(url)


def exchange_code(
    client_id: str,
    client_secret: str,
    code: str,
    redirect_uri: str,
    *,
    endpoint: str = TOKEN_URL,
    timeout: httpx.Timeout = httpx.Timeout(30.0, connect=5.0),  # noqa: B008
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Credentials:
    """The tokens for an authorisation code; ``refresh_token`` is None unless the
    app is approved for programmatic refresh tokens."""
    with _oauth(client_id, client_secret, redirect_uri, None, timeout) as client:
        token = _token_call(
            lambda: client.fetch_token(
                endpoint, grant_type="authorization_code", code=code
            )
        )
    return _credentials(token, now())


def refresh(
    client_id: str,
    client_secret: str,
    refresh_token: str,
    *,
    endpoint: str = TOKEN_URL,
    timeout: httpx.Timeout = httpx.Timeout(30.0, connect=5.0),  # noqa: B008
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Credentials:
    """A new 60-day access token. LinkedIn's refresh token is not rotated: it keeps
    its original 365-day life, after which the owner must reconnect."""
    with _oauth(client_id, client_secret, None, None, timeout) as client:
        token = _token_call(
            lambda: client.refresh_token(endpoint, refresh_token=refresh_token)
        )
    return _credentials(token, now())


@contextmanager
def _oauth(
    client_id: str,
    client_secret: str | None,
    redirect_uri: str | None,
    scope: str | None,
    timeout: httpx.Timeout,
) -> Iterator[Any]:
    client = OAuth2Client(
        client_id=client_id,
        client_secret=client_secret,
        token_endpoint_auth_method="client_secret_post",  # LinkedIn: in the body
        scope=scope,
        redirect_uri=redirect_uri,
        timeout=timeout,
    )
    client.register_compliance_hook("access_token_response", _token_status)
    client.register_compliance_hook("refresh_token_response", _token_status)
    with client:
        yield client


def _token_status(resp: httpx.Response) -> httpx.Response:
    if resp.status_code == 429:
        now = datetime.now(UTC)
        retry_at = _retry_after(resp, now) or _next_midnight(now)
        raise RateLimitedError(
            "LinkedIn's token endpoint is rate limited", retry_at=retry_at
        )
    if resp.status_code >= 500:
        raise TransientError(
            "LinkedIn's token endpoint failed", status=resp.status_code
        )
    return resp


def _token_call(call: Callable[[], Any]) -> dict[str, Any]:
    try:
        token = call()
    except OAuthError as exc:
        message = f"LinkedIn refused the token request: {exc.error}: {exc.description}"
        raise AuthError(message, code=str(exc.error)) from None
    except (httpx.TransportError, httpx.HTTPStatusError, ValueError) as exc:
        raise TransientError(
            f"no usable answer from LinkedIn's token endpoint ({type(exc).__name__})",
            code="no_answer",
        ) from None
    if not isinstance(token, dict):
        raise TransientError(
            "LinkedIn's token answer is not an object", code="malformed"
        )
    return dict(token)


def _credentials(token: dict[str, Any], at: datetime) -> Credentials:
    access = token.get("access_token")
    if not isinstance(access, str) or not access:
        raise TransientError("LinkedIn's answer has no access token", code="malformed")
    refresh_token = token.get("refresh_token")
    expires_in = token.get("expires_in")
    expires_at = None
    if isinstance(expires_in, int | float) and expires_in > 0:
        expires_at = at + timedelta(seconds=float(expires_in))
    scope = token.get("scope")
    scopes = tuple(re.split(r"[ ,]+", scope.strip())) if isinstance(scope, str) else ()
    return Credentials(
        access,
        refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        expires_at,
        tuple(s for s in scopes if s),
    )


# -- requests and answers ------------------------------------------------------------


def _check_media(media: Sequence[Media]) -> None:
    if not 1 <= len(media) <= MAX_IMAGES:
        raise PermanentError(
            f"LinkedIn takes 1 to {MAX_IMAGES} images in a post, not {len(media)}",
            code="image_count",
        )
    for image in media:
        if image.content_type not in IMAGE_TYPES or not image.data:
            raise PermanentError(
                f"LinkedIn does not take this image ({image.content_type})",
                code="image_type",
            )


def _organisation(external_id: str) -> str:
    urn = (
        external_id
        if external_id.startswith("urn:")
        else f"urn:li:organization:{external_id}"
    )
    if not _ORG.match(urn):
        raise PermanentError("not a LinkedIn organisation URN", code="bad_author")
    return urn


def _path_urn(external_id: str) -> str:
    if not _POST.match(external_id):
        raise PermanentError("not a LinkedIn post URN", code="bad_id")
    return quote(external_id, safe="")


def _post_body(org: str, caption: str, images: list[str]) -> dict[str, Any]:
    content: dict[str, Any] = (
        {"media": {"id": images[0]}}
        if len(images) == 1
        else {"multiImage": {"images": [{"id": urn} for urn in images]}}
    )
    return {
        "author": org,
        "commentary": escape_commentary(caption),
        "visibility": "PUBLIC",
        "distribution": {
            "feedDistribution": "MAIN_FEED",
            "targetEntities": [],
            "thirdPartyDistributionChannels": [],
        },
        "content": content,
        "lifecycleState": "PUBLISHED",
        "isReshareDisabledByAuthor": False,
    }


def _trusted(upload_url: str, dest: Destination) -> bool:
    """Only LinkedIn's own hosts (or the API's own origin) get the bearer token."""
    url, api = urlsplit(upload_url), urlsplit(dest.base_url or API_URL)
    if (url.scheme, url.netloc) == (api.scheme, api.netloc):
        return True
    host = url.hostname or ""
    return url.scheme == "https" and (
        host == "linkedin.com" or host.endswith(".linkedin.com")
    )


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TransientError("LinkedIn answered with no JSON object", code="malformed")
    return body


def _elements(body: dict[str, Any]) -> list[dict[str, Any]]:
    elements = body.get("elements")
    if not isinstance(elements, list) or not all(isinstance(e, dict) for e in elements):
        raise TransientError("LinkedIn's post list is malformed", code="malformed")
    return elements


def _more(body: dict[str, Any], start: int, shown: int, count: int) -> bool:
    """Whether the finder has more after this page: a full page (LinkedIn: the end
    is a page with fewer elements than ``count``), or a ``paging.total`` beyond it."""
    page = body.get("paging")
    total = page.get("total") if isinstance(page, dict) else None
    beyond = isinstance(total, int) and start + shown < total
    return shown > 0 and (shown >= count or beyond)


def _recent_post(dest: Destination, post: dict[str, Any]) -> RecentPost:
    urn, text, created = (
        post.get("id"),
        post.get("commentary", ""),
        post.get("createdAt"),
    )
    if not isinstance(urn, str) or not _POST.match(urn) or not isinstance(text, str):
        raise TransientError("a listed post has no valid id or text", code="malformed")
    content = post.get("content")
    content = content if isinstance(content, dict) else {}
    multi = content.get("multiImage")
    if isinstance(multi, dict) and isinstance(multi.get("images"), list):
        count = len(multi["images"])
    else:
        count = 1 if "media" in content else 0
    at = (
        datetime.fromtimestamp(created / 1000, UTC)
        if isinstance(created, int)
        else None
    )
    return RecentPost(urn, _post_url(dest, urn), unescape_commentary(text), count, at)


def _problem(resp: httpx.Response) -> tuple[str, str]:
    """(code, message) of a LinkedIn error: ``code``, else ``serviceErrorCode``."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"http_{resp.status_code}", f"LinkedIn answered HTTP {resp.status_code}"
    code = body.get("code") or (
        f"service_{body['serviceErrorCode']}" if "serviceErrorCode" in body else ""
    )
    message = body.get("message") or f"HTTP {resp.status_code}"
    return str(code or f"http_{resp.status_code}"), str(message)


def _retry_after(resp: httpx.Response, now: datetime) -> datetime | None:
    value = resp.headers.get("retry-after", "").strip()
    if value.isdigit():
        return now + timedelta(seconds=int(value))
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def _next_midnight(now: datetime) -> datetime:
    day = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _post_url(dest: Destination, urn: str) -> str:
    web = str(dest.settings.get("web_url") or WEB_URL).rstrip("/")
    return f"{web}/feed/update/{urn}/"
