"""X (Twitter) adapter: v2 media upload, then ``POST /2/tweets``; OAuth 2.0 with PKCE.

What it calls (``Destination.base_url`` is ``https://api.x.com`` or the sandbox;
``external_id`` is the X user id; the bearer is the user's OAuth 2.0 access token):

- ``POST /2/media/upload`` (multipart: ``media`` file, ``media_category=tweet_image``,
  ``media_type``), one request per image (one-shot upload, images up to 5 MB)
  -> ``{"data": {"id", "media_key", ...}}``;
- ``POST /2/tweets`` ``{"text", "media": {"media_ids": [...]}}`` (1-4 images)
  -> 201 ``{"data": {"id", "text"}}``;
- ``DELETE /2/tweets/{id}`` -> ``{"data": {"deleted": true}}``;
- ``GET /2/tweets/{id}`` -> ``{"data": ...}``, or 200 with a ``resource-not-found``
  problem in ``errors`` when the post is gone;
- ``GET /2/users/{id}/tweets?start_time=...&max_results=100&tweet.fields=created_at,
  attachments,entities`` (newest first; each ``meta.next_token`` goes back as
  ``pagination_token`` until there is none; a page may hold fewer than
  ``max_results`` before the end, and only the 3,200 most recent posts are reachable).

Errors are RFC 7807 problems (``title``, ``type``, ``detail``, ``status``), classified
by status and ``type`` only: 401 auth; 429 rate-limited until ``x-rate-limit-reset``
(epoch seconds); 403 (e.g. duplicate content, ``about:blank`` "Forbidden") and other
4xx permanent with X's ``detail`` kept; 5xx, timeouts and dropped connections on
``POST /2/tweets`` ambiguous (the post may exist), on uploads, reads and deletes
transient (an uploaded but unused media id makes nothing public, and X has no call to
delete one: it expires after ``expires_after_secs``).

For reconciliation ``recent`` gives back the text as it was sent: X returns it
HTML-escaped (``&amp;``), with links shortened to t.co and a trailing t.co link for
attached media; the ``entities.urls`` of each post undo both.

Documentation (checked 2026-11):

- https://docs.x.com/x-api/media/upload-media
- https://docs.x.com/x-api/media/quickstart/best-practices (4 photos; 5 MB images)
- https://docs.x.com/x-api/posts/manage-tweets/introduction
- https://developer.x.com/en/docs/x-api/tweets/manage-tweets/api-reference/delete-tweets-id
- https://docs.x.com/x-api/users/get-posts (``start_time``, inclusive, to the second;
  ``max_results`` 5-100; ``pagination_token``; ``meta.next_token``)
- https://docs.x.com/x-api/posts/timelines (the user Post timeline: up to the 3,200
  most recent posts, paginated)
- https://docs.x.com/x-api/fundamentals/response-codes-and-errors (problem types)
- https://docs.x.com/x-api/fundamentals/rate-limits (x-rate-limit-* headers)
- https://docs.x.com/fundamentals/authentication/oauth-2-0/authorization-code (PKCE,
  offline.access, refresh)
- https://docs.x.com/x-api/getting-started/pricing (per-post costs)
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from twitter_text import extract_urls

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

API_URL = "https://api.x.com"
WEB_URL = "https://x.com"  # Destination.settings["web_url"] overrides (sandbox)
AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
TOKEN_URL = "https://api.x.com/2/oauth2/token"
SCOPES = ("tweet.read", "tweet.write", "users.read", "media.write", "offline.access")
MAX_IMAGES = 4
MAX_IMAGE_BYTES = 5 * 1024 * 1024
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
RATE_WINDOW = timedelta(minutes=15)  # X's windows, when no reset header is given
# The user Post timeline: at most 100 posts a page, and only the 3,200 most recent
# posts are reachable at all.
RECENT_PAGE_SIZE = 100
TIMELINE_REACH = 3200

# Pay-per-use write prices per request, https://docs.x.com/x-api/getting-started/pricing
# ("Content: Create" and "Content: Create (with URL)"), in US dollars.
POST_COST_USD = Decimal("0.015")
POST_WITH_URL_COST_USD = Decimal("0.200")

_ID = re.compile(r"^[0-9]{1,19}$")


def cost_usd(caption: str) -> Decimal:
    """What X charges for creating this post: a post with a link costs far more."""
    has_url = bool(extract_urls(caption))
    return POST_WITH_URL_COST_USD if has_url else POST_COST_USD


def cost_note(caption: str) -> str:
    """The cost line shown to an approver before a post goes to X."""
    kind = "with a link" if cost_usd(caption) == POST_WITH_URL_COST_USD else "text"
    return f"X charges US${cost_usd(caption)} for this post ({kind}); see X's pricing."


class XAdapter:
    """Publishes to one X account over API v2 with the user's OAuth 2.0 token."""

    platform = "x"

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
        with self._client(dest) as client:
            ids = [self._upload(client, image) for image in media]
            body = {"text": caption, "media": {"media_ids": ids}}
            answer = self._call(client, "POST", "/2/tweets", create=True, json=body)
        post_id = _field(answer, "id", create=True)
        return LivePost(post_id, _post_url(dest, post_id))

    def delete(self, dest: Destination, external_id: str) -> None:
        post_id = _checked_id(external_id)
        with self._client(dest) as client:
            answer = self._call(client, "DELETE", f"/2/tweets/{post_id}", gone_ok=True)
        if answer is None or _not_found(answer):
            return
        deleted = _dict(answer.get("data")).get("deleted")
        if deleted is True:
            return
        if deleted is False and self.lookup(dest, post_id) is None:
            return
        raise TransientError("X did not delete the post", code="not_deleted")

    def lookup(self, dest: Destination, external_id: str) -> LivePost | None:
        post_id = _checked_id(external_id)
        with self._client(dest) as client:
            answer = self._call(client, "GET", f"/2/tweets/{post_id}", gone_ok=True)
        if answer is None or _not_found(answer):
            return None
        found = _field(answer, "id", create=False)
        return LivePost(found, _post_url(dest, found))

    def recent(self, dest: Destination, since: datetime) -> list[RecentPost]:
        """The account's posts since ``since``, newest first: the user Post timeline
        (``start_time``, ``max_results``) page by page, each ``meta.next_token`` sent
        back as ``pagination_token``, until there is no ``next_token``. More than
        ``recent_max_pages`` pages, or a timeline that ends at X's 3,200 most recent
        posts, is ``TransientError`` (``recent_incomplete``), never a partial list."""
        user_id = _checked_id(dest.external_id)
        start = paging.aware(since).astimezone(UTC).replace(microsecond=0)
        params = {
            "start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "max_results": str(self.recent_page_size),
            "tweet.fields": "created_at,attachments,entities",
        }
        found: list[RecentPost] = []
        listed = 0
        with self._client(dest) as client:
            for _ in range(self.recent_max_pages):
                path = f"/2/users/{user_id}/tweets"
                answer = self._call(client, "GET", path, params=params) or {}
                items = _items(answer)
                listed += len(items)
                found += [_recent_post(dest, item) for item in items]
                token = _dict(answer.get("meta")).get("next_token")
                if token is None:
                    if listed >= TIMELINE_REACH:
                        raise paging.incomplete("X", "past the timeline's reach")
                    return paging.unique(p for p in found if paging.is_since(p, start))
                if not isinstance(token, str) or not token:
                    raise TransientError(
                        "X's next_token is malformed", code="malformed"
                    )
                params["pagination_token"] = token
        raise paging.too_many_pages("X", self.recent_max_pages)

    # -- HTTP ------------------------------------------------------------------------

    @contextmanager
    def _client(self, dest: Destination) -> Iterator[httpx.Client]:
        if dest.credentials is None or not dest.credentials.access_token:
            raise AuthError("the X account has no access token", code="no_token")
        auth = {"Authorization": f"Bearer {dest.credentials.access_token}"}
        with httpx.Client(
            base_url=dest.base_url or API_URL, headers=auth, timeout=self.timeout
        ) as client:
            yield client

    def _upload(self, client: httpx.Client, image: Media) -> str:
        form = {"media_category": "tweet_image", "media_type": image.content_type}
        files = {"media": (f"{image.photo_id}.img", image.data, image.content_type)}
        answer = self._call(client, "POST", "/2/media/upload", data=form, files=files)
        info = _dict(_dict(answer.get("data")).get("processing_info"))
        state = info.get("state")
        if state == "failed":
            raise PermanentError("X could not process the image", code="media_failed")
        if state not in (None, "succeeded"):
            raise TransientError("X is still processing the image", code="processing")
        return _field(answer, "id", create=False)

    def _call(
        self,
        client: httpx.Client,
        method: str,
        path: str,
        *,
        create: bool = False,
        gone_ok: bool = False,
        **kwargs: Any,
    ) -> Any:
        """The JSON answer of one call, classified; None for a 404 when ``gone_ok``."""
        unsure: type[PlatformError] = AmbiguousError if create else TransientError
        try:
            resp = client.request(method, path, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientError("X could not be reached", code="unreachable") from exc
        except httpx.TransportError as exc:
            message = f"no answer from X to {method} {path} ({type(exc).__name__})"
            raise unsure(message, code="no_answer") from exc
        if resp.status_code == 404 and gone_ok:
            return None
        if resp.is_success:
            try:
                answer = resp.json()
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                raise unsure("X answered with no JSON object", code="malformed")
            return answer
        raise self._error(resp, unsure)

    def _error(
        self, resp: httpx.Response, unsure: type[PlatformError]
    ) -> PlatformError:
        status = resp.status_code
        code, message = _problem(resp)
        if status == 401:
            return AuthError(message, status=status, code=code)
        if status == 429:
            retry_at = _reset_at(resp) or self.now() + RATE_WINDOW
            return RateLimitedError(
                message, status=status, code=code, retry_at=retry_at
            )
        if status >= 500:
            return unsure(message, status=status, code=code)
        return PermanentError(message, status=status, code=code)


# -- OAuth 2.0 authorisation code with PKCE ----------------------------------------


def new_code_verifier() -> str:
    """A fresh PKCE code verifier (RFC 7636: 43-128 unreserved characters)."""
    return str(generate_token(64))


def authorize_url(
    client_id: str,
    redirect_uri: str,
    state: str,
    code_verifier: str,
    *,
    endpoint: str = AUTHORIZE_URL,
) -> str:
    """Where to send the account's owner to grant Safepost access (S256 PKCE)."""
    with _oauth(client_id, None, redirect_uri, httpx.Timeout(5.0)) as client:
        url, _ = client.create_authorization_url(
            endpoint, state=state, code_verifier=code_verifier
        )
    return str(url)


def exchange_code(
    client_id: str,
    client_secret: str | None,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    *,
    endpoint: str = TOKEN_URL,
    timeout: httpx.Timeout = httpx.Timeout(30.0, connect=5.0),  # noqa: B008
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Credentials:
    """The tokens for an authorisation code (single use, like the verifier)."""
    with _oauth(client_id, client_secret, redirect_uri, timeout) as client:
        token = _token_call(
            lambda: client.fetch_token(
                endpoint,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
            )
        )
    return _credentials(token, now(), previous_refresh=None)


def refresh(
    client_id: str,
    client_secret: str | None,
    refresh_token: str,
    *,
    endpoint: str = TOKEN_URL,
    timeout: httpx.Timeout = httpx.Timeout(30.0, connect=5.0),  # noqa: B008
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Credentials:
    """A new access token and a new refresh token.

    X refresh tokens are single-use and rotate: once this call reaches X the old
    refresh token is dead, whatever happens to the answer. The caller must hold a
    per-account lock around this call and store the new pair (encrypted) before
    using it; two workers refreshing at once, or a new pair lost before it is
    stored, lose the whole token family and the account needs reconnecting. A
    ``TransientError`` (no answer) may already have spent the token: the retry then
    gets an ``AuthError``, which is the truth.
    """
    with _oauth(client_id, client_secret, None, timeout) as client:
        token = _token_call(
            lambda: client.refresh_token(endpoint, refresh_token=refresh_token)
        )
    return _credentials(token, now(), previous_refresh=refresh_token)


@contextmanager
def _oauth(
    client_id: str,
    client_secret: str | None,
    redirect_uri: str | None,
    timeout: httpx.Timeout,
) -> Iterator[Any]:
    # A confidential client authenticates with HTTP Basic; a public one sends its
    # client_id in the body (X's OAuth 2.0 docs).
    method = "client_secret_basic" if client_secret else "none"
    client = OAuth2Client(
        client_id=client_id,
        client_secret=client_secret,
        token_endpoint_auth_method=method,
        scope=" ".join(SCOPES),
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=timeout,
    )
    client.register_compliance_hook("access_token_response", _token_status)
    client.register_compliance_hook("refresh_token_response", _token_status)
    with client:
        yield client


def _token_status(resp: httpx.Response) -> httpx.Response:
    """Classify the token endpoint's answers that are not OAuth errors."""
    if resp.status_code == 429:
        retry_at = _reset_at(resp) or datetime.now(UTC) + RATE_WINDOW
        raise RateLimitedError("X's token endpoint is rate limited", retry_at=retry_at)
    if resp.status_code >= 500:
        raise TransientError("X's token endpoint failed", status=resp.status_code)
    return resp


def _token_call(call: Callable[[], Any]) -> dict[str, Any]:
    try:
        token = call()
    except OAuthError as exc:
        message = f"X refused the token request: {exc.error}: {exc.description}"
        raise AuthError(message, code=str(exc.error)) from None
    except (httpx.TransportError, httpx.HTTPStatusError, ValueError) as exc:
        raise TransientError(
            f"no usable answer from X's token endpoint ({type(exc).__name__})",
            code="no_answer",
        ) from None
    if not isinstance(token, dict):
        raise TransientError("X's token answer is not an object", code="malformed")
    return dict(token)


def _credentials(
    token: dict[str, Any], at: datetime, *, previous_refresh: str | None
) -> Credentials:
    access = token.get("access_token")
    if not isinstance(access, str) or not access:
        raise TransientError("X's token answer has no access token", code="malformed")
    refresh_token = token.get("refresh_token")
    if not isinstance(refresh_token, str) or refresh_token == previous_refresh:
        refresh_token = None  # a spent X refresh token is worth nothing
    expires_in = token.get("expires_in")
    expires_at = None
    if isinstance(expires_in, int | float) and expires_in > 0:
        expires_at = at + timedelta(seconds=float(expires_in))
    scope = token.get("scope")
    scopes = tuple(scope.split()) if isinstance(scope, str) else ()
    return Credentials(access, refresh_token, expires_at, scopes)


# -- answers -------------------------------------------------------------------------


def _check_media(media: Sequence[Media]) -> None:
    """X's documented limits, checked before any request is made."""
    if not 1 <= len(media) <= MAX_IMAGES:
        raise PermanentError(
            f"X takes 1 to {MAX_IMAGES} images in a post, not {len(media)}",
            code="image_count",
        )
    for image in media:
        if image.content_type not in IMAGE_TYPES:
            raise PermanentError(
                f"X does not take {image.content_type} images", code="image_type"
            )
        if not image.data or len(image.data) > MAX_IMAGE_BYTES:
            raise PermanentError("an image is empty or over 5 MB", code="image_size")


def _checked_id(value: str) -> str:
    if not _ID.match(value):
        raise PermanentError("not an X id", code="bad_id")
    return value


def _field(answer: dict[str, Any], name: str, *, create: bool) -> str:
    """``data[name]``, an X id; a missing or odd one is not a success."""
    data = answer.get("data")
    value = data.get(name) if isinstance(data, dict) else None
    if isinstance(value, str) and _ID.match(value):
        return value
    unsure: type[PlatformError] = AmbiguousError if create else TransientError
    raise unsure(f"X's answer has no valid data.{name}", code="malformed")


def _not_found(answer: dict[str, Any]) -> bool:
    """X's partial error for a post that no longer exists (200, no ``data``)."""
    errors = answer.get("errors")
    if "data" in answer or not isinstance(errors, list):
        return False
    return any(
        isinstance(e, dict) and str(e.get("type", "")).endswith("/resource-not-found")
        for e in errors
    )


def _problem(resp: httpx.Response) -> tuple[str, str]:
    """(code, message) of an X problem answer: code from ``type`` (or ``title``)."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"http_{resp.status_code}", f"X answered HTTP {resp.status_code}"
    kind, title = str(body.get("type", "")), str(body.get("title", ""))
    code = kind.rsplit("/", 1)[-1] if kind.startswith("http") else title or kind
    message = str(body.get("detail") or title or f"HTTP {resp.status_code}")
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        first = errors[0].get("message") or errors[0].get("detail")
        if first:
            message = f"{message} {first}"
    return code or f"http_{resp.status_code}", message


def _reset_at(resp: httpx.Response) -> datetime | None:
    value = resp.headers.get("x-rate-limit-reset", "")
    if not value.isdigit():
        return None
    return datetime.fromtimestamp(int(value), UTC)


def _items(answer: dict[str, Any]) -> list[dict[str, Any]]:
    data = answer.get("data", [])
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise TransientError("X's timeline answer is malformed", code="malformed")
    return data


def _recent_post(dest: Destination, item: dict[str, Any]) -> RecentPost:
    post_id, text = item.get("id"), item.get("text")
    if not isinstance(post_id, str) or not _ID.match(post_id):
        raise TransientError("a timeline post has no valid id", code="malformed")
    if not isinstance(text, str):
        raise TransientError("a timeline post has no text", code="malformed")
    keys = _dict(item.get("attachments")).get("media_keys", [])
    created = item.get("created_at")
    return RecentPost(
        external_id=post_id,
        url=_post_url(dest, post_id),
        text=_original_text(text, _dict(item.get("entities")).get("urls")),
        media_count=len(keys) if isinstance(keys, list) else 0,
        created_at=_parse_time(created) if isinstance(created, str) else None,
    )


def _original_text(text: str, urls: Any) -> str:
    """The text as it was posted: t.co links expanded, media links dropped,
    X's HTML escaping undone."""
    for entity in urls if isinstance(urls, list) else []:
        if not isinstance(entity, dict) or not isinstance(entity.get("url"), str):
            continue
        if "media_key" in entity:
            text = text.replace(entity["url"], "")
        elif isinstance(entity.get("expanded_url"), str):
            text = text.replace(entity["url"], entity["expanded_url"])
    return html.unescape(text).strip()


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _post_url(dest: Destination, post_id: str) -> str:
    web = str(dest.settings.get("web_url") or WEB_URL).rstrip("/")
    return f"{web}/i/status/{post_id}"
