"""Webhook target: a school website or CMS receives each post as a signed JSON POST.

The protocol (what a receiver implements; ``safepost.sandboxes.webhook`` is one):

``POST {url}`` publishes. Body (UTF-8 JSON)::

    {"event": "post.published",
     "post_id": "<the Idempotency-Key, when given>",
     "account_id": "<Safepost's account id>",
     "caption": "<the exact text to show, footer included>",
     "images": [{"photo_id": "...", "content_type": "image/jpeg",
                 "sha256": "<hex of the bytes>", "data_base64": "<standard base64>"}]}

Headers: ``Content-Type: application/json``, ``X-Safepost-Timestamp: <unix seconds>``,
``X-Safepost-Signature: sha256=<hex>`` where the hex is HMAC-SHA256, keyed with the
account's shared secret, over ``f"{timestamp}.".encode() + body`` (the raw body bytes),
and ``Idempotency-Key: "<post id>"`` (a structured-field string, as the IETF draft
specifies). The receiver checks the signature in constant time and refuses a timestamp
more than five minutes off (``verify_signature`` does both), and keeps one post per
Idempotency-Key: a repeated key answers the first post again and creates nothing.
It answers 2xx with ``{"id": "...", "url": "<public URL of the post>"}``.

``DELETE {url}/{id}`` (body ``{"event": "post.deleted", "id": "<id>"}``, signed the
same way) takes a post down; 2xx, or 404/410 for one already gone.
``GET {url}/{id}`` answers ``{"id", "url"}`` or 404. ``GET {url}?since=<ISO 8601>``
answers a JSON list of ``{"id", "url", "caption", "image_count", "created_at"}``,
newest first: every post created since then. A receiver may page that list: then
each answer but the last carries ``Link: <URL>; rel="next"`` (RFC 8288, the URL on
the same receiver path, e.g. with a cursor in its query), and Safepost follows
those links until an answer has none; a receiver must never cut the list short
without one. Reads are signed over an empty body.

Errors: a JSON body ``{"error": {"code": "...", "message": "..."}}``. Classified by
status: 401/403 auth (bad secret: reconnect), 429 rate-limited (``Retry-After``
seconds or HTTP date), 408 and 409 (the same key still being processed) transient,
other 4xx permanent (the receiver's message kept), 5xx or no answer on the POST
ambiguous (the post may exist: reconcile with ``recent``), on reads and deletes
transient. A 2xx without the documented JSON is never a success.

References: HMAC (RFC 2104) https://www.rfc-editor.org/rfc/rfc2104 ; the
timestamp-then-body signing and five-minute replay window follow Stripe's webhook
signatures https://docs.stripe.com/webhooks#verify-manually and Standard Webhooks /
Svix https://docs.svix.com/receiving/verifying-payloads/why ; Idempotency-Key header
(409 while in flight, 422 when reused for another body)
https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/ ;
Retry-After (RFC 9110 §10.2.3) https://www.rfc-editor.org/rfc/rfc9110#name-retry-after ;
Link header and ``rel="next"`` (RFC 8288 §3, IANA link relations)
https://www.rfc-editor.org/rfc/rfc8288 .
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from services.publishing.platforms import paging
from services.publishing.platforms.base import (
    AmbiguousError,
    AuthError,
    Destination,
    LivePost,
    Media,
    PermanentError,
    PlatformError,
    RateLimitedError,
    RecentPost,
    TransientError,
)

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Safepost-Timestamp"
SIGNATURE_HEADER = "X-Safepost-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
TOLERANCE_SECONDS = 300
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Safepost-Signature`` value for ``body`` sent at ``timestamp``."""
    message = timestamp.encode("ascii") + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    now: float,
    tolerance: int = TOLERANCE_SECONDS,
) -> bool:
    """Whether ``signature`` is ours for ``body`` at ``timestamp``, and the timestamp
    is within ``tolerance`` seconds of ``now`` (unix seconds) either way: an old
    delivery replayed later is refused. Compared in constant time."""
    if not secret or not _TIMESTAMP.match(timestamp or ""):
        return False
    if abs(now - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, timestamp, body).encode()
    return hmac.compare_digest(expected, (signature or "").strip().encode())


def idempotency_header(key: str) -> str:
    """The header value for ``key``: a structured-field string (quoted)."""
    return f'"{key}"'


def parse_idempotency_header(value: str | None) -> str | None:
    """The key in an ``Idempotency-Key`` header (quoted, or bare as many send it)."""
    if not value:
        return None
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value if _KEY.match(value) else None


class WebhookAdapter:
    """Publishes to a receiver URL (``Destination.base_url``) with the account's
    shared secret (``Credentials.access_token``)."""

    platform = "webhook"

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        require_https: bool = True,
        transport: httpx.BaseTransport | None = None,
        recent_max_pages: int = paging.MAX_PAGES,
    ):
        if recent_max_pages < 1:
            raise ValueError("at least one page")
        self.clock = clock
        self.require_https = require_https
        self.recent_max_pages = recent_max_pages
        self.client = httpx.Client(
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            follow_redirects=False,
            headers={"User-Agent": "Safepost-Webhook/1"},
            transport=transport,
        )

    def close(self) -> None:
        self.client.close()

    # -- the Adapter protocol -------------------------------------------------------

    def publish(
        self,
        dest: Destination,
        caption: str,
        media: Sequence[Media],
        *,
        idempotency_key: str | None = None,
    ) -> LivePost:
        """POST the post; with ``idempotency_key`` (the post's id) a retried
        delivery cannot make a second copy on a receiver that honours it."""
        if idempotency_key is not None and not _KEY.match(idempotency_key):
            raise PermanentError("the post id is not usable as an idempotency key")
        body = _json(_payload(dest, caption, media, idempotency_key))
        headers = self._headers(dest, body)
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_header(idempotency_key)
        answer = self._send("POST", self._url(dest), body, headers, create=True)
        live = _live(answer)
        if live is None:
            raise AmbiguousError(
                "the website answered without the post's id and URL; the post may "
                "exist",
                status=answer.status_code,
                code="malformed",
            )
        logger.info("webhook post created", extra={"account_id": dest.account_id})
        return live

    def delete(self, dest: Destination, external_id: str) -> None:
        """DELETE the post; one the receiver no longer has counts as deleted."""
        body = _json({"event": "post.deleted", "id": external_id})
        headers = self._headers(dest, body)
        url = self._item_url(dest, external_id)
        self._send("DELETE", url, body, headers, create=False, gone_ok=True)

    def lookup(self, dest: Destination, external_id: str) -> LivePost | None:
        url = self._item_url(dest, external_id)
        answer = self._send(
            "GET", url, b"", self._headers(dest, b""), create=False, gone_ok=True
        )
        if answer.status_code in (404, 410):
            return None
        live = _live(answer)
        if live is None:
            raise TransientError(
                "the website's answer about a post was not the documented JSON",
                status=answer.status_code,
                code="malformed",
            )
        return live

    def recent(self, dest: Destination, since: datetime) -> list[RecentPost]:
        """The receiver's posts since ``since``, newest first: ``GET {url}?since=``,
        then each ``Link: <...>; rel="next"`` page (same receiver URL only) until an
        answer has none. More than ``recent_max_pages`` pages is ``TransientError``
        (``recent_incomplete``), never a partial list."""
        base = httpx.URL(self._url(dest))
        url = base.copy_merge_params({"since": _iso(since)})
        found: list[RecentPost] = []
        for _ in range(self.recent_max_pages):
            answer = self._send(
                "GET", str(url), b"", self._headers(dest, b""), create=False
            )
            posts = _recent(answer)
            if posts is None:
                raise TransientError(
                    "the website's list of recent posts was not the documented JSON",
                    status=answer.status_code,
                    code="malformed",
                )
            found += [p for p in posts if paging.is_since(p, since)]
            following = _next_page(answer, base)
            if following is None:
                return sorted(paging.unique(found), key=_newest_first)
            url = following
        raise paging.too_many_pages("the website", self.recent_max_pages)

    # -- HTTP ---------------------------------------------------------------------

    def _headers(self, dest: Destination, body: bytes) -> dict[str, str]:
        timestamp = str(int(self.clock()))
        headers = {
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(_secret(dest), timestamp, body),
        }
        if body:
            headers["Content-Type"] = "application/json"
        return headers

    def _send(
        self,
        method: str,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        create: bool,
        gone_ok: bool = False,
    ) -> httpx.Response:
        try:
            answer = self.client.request(method, url, content=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout):
            # Nothing reached the receiver: safe to retry, even a create.
            raise TransientError(
                "the website could not be reached", code="unreachable"
            ) from None
        except httpx.TransportError as exc:
            kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "dropped"
            error = AmbiguousError if create else TransientError
            maybe = _MAYBE if create else ""
            raise error(
                f"the website did not answer ({kind}){maybe}", code=kind
            ) from None
        if gone_ok and answer.status_code in (404, 410):
            return answer
        _raise_for(answer, create=create, now=self._now())
        return answer

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _url(self, dest: Destination) -> str:
        try:
            url = httpx.URL(dest.base_url)
        except httpx.InvalidURL:
            url = httpx.URL()
        if url.query or url.fragment or not url.host:
            raise PermanentError(
                "the website's webhook URL must be a plain http(s) URL without ? or #",
                code="bad_url",
            )
        plain = url.scheme == "http"
        allowed = url.scheme == "https" or (
            plain and (url.host in _LOOPBACK or not self.require_https)
        )
        if not allowed:
            raise PermanentError(
                "the website's webhook URL must use https", code="bad_url"
            )
        return str(url).rstrip("/")

    def _item_url(self, dest: Destination, external_id: str) -> str:
        if not external_id or len(external_id) > 200:
            raise PermanentError("not a webhook post id", code="bad_id")
        return f"{self._url(dest)}/{quote(external_id, safe='')}"


_MAYBE = "; the post may exist"


def _secret(dest: Destination) -> str:
    credentials = dest.credentials
    if credentials is None or not credentials.access_token:
        raise AuthError(
            "no shared secret is stored for this website; reconnect the account",
            code="no_secret",
        )
    return credentials.access_token


def _payload(
    dest: Destination, caption: str, media: Sequence[Media], key: str | None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"event": "post.published"}
    if key is not None:
        payload["post_id"] = key
    payload["account_id"] = dest.account_id
    payload["caption"] = caption
    payload["images"] = [
        {
            "photo_id": m.photo_id,
            "content_type": m.content_type,
            "sha256": m.sha256,
            "data_base64": base64.b64encode(m.data).decode("ascii"),
        }
        for m in media
    ]
    return payload


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _raise_for(answer: httpx.Response, *, create: bool, now: datetime) -> None:
    """Raise the class of a non-2xx answer; return for a 2xx."""
    status = answer.status_code
    if 200 <= status < 300:
        return
    code, message = _error(answer)
    said = f": {message}" if message else ""
    error: type[PlatformError]
    if status in (401, 403):
        error, text = AuthError, "the website refused Safepost's signature"
    elif status == 429:
        raise RateLimitedError(
            f"the website asked Safepost to slow down{said}",
            status=status,
            code=code,
            retry_at=_retry_at(answer.headers.get("Retry-After"), now),
        )
    elif status in (408, 409):
        error, text = TransientError, "the website asked Safepost to try again later"
    elif 400 <= status < 500:
        error, text = PermanentError, "the website refused the post"
    elif status >= 500:
        error = AmbiguousError if create else TransientError
        text = "the website failed" + (_MAYBE if create else "")
    else:
        error, text = PermanentError, "the website answered with a redirect"
        said = "; set its final URL on the account"
    raise error(f"{text} (HTTP {status}){said}", status=status, code=code)


def _error(answer: httpx.Response) -> tuple[str | None, str]:
    """The receiver's error code and message, from the documented JSON fields."""
    try:
        body = answer.json()
    except ValueError:
        return None, ""
    if not isinstance(body, dict):
        return None, ""
    error = body.get("error")
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
    else:
        code, message = error, body.get("message")
    code = code if isinstance(code, str) else None
    text = message if isinstance(message, str) else ""
    return code, " ".join(text.split())[:200]


def _retry_at(value: str | None, now: datetime) -> datetime | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return now + timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _body(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def _live(answer: httpx.Response) -> LivePost | None:
    return _post_fields(_body(answer))


def _post_fields(item: Any) -> LivePost | None:
    if not isinstance(item, dict):
        return None
    post_id, url = item.get("id"), item.get("url")
    if isinstance(post_id, int) and not isinstance(post_id, bool):
        post_id = str(post_id)
    if not isinstance(post_id, str) or not post_id or len(post_id) > 200:
        return None
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return None
    return LivePost(external_id=post_id, url=url)


def _recent(answer: httpx.Response) -> list[RecentPost] | None:
    items = _body(answer)
    if not isinstance(items, list):
        return None
    posts = []
    for item in items:
        live = _post_fields(item)
        if live is None:
            return None  # one unreadable item could be ours: never skip it
        caption, count = item.get("caption"), item.get("image_count")
        if not isinstance(caption, str) or not isinstance(count, int):
            return None
        created = _parse_time(item.get("created_at"))
        posts.append(RecentPost(live.external_id, live.url, caption, count, created))
    return posts


def _next_page(answer: httpx.Response, base: httpx.URL) -> httpx.URL | None:
    """The next page's URL from the answer's ``Link: <...>; rel="next"`` (RFC 8288,
    relative to the request), or None on the last page. Followed only on the
    receiver's own URL (its query may change): reads are signed."""
    link = answer.links.get("next")
    if link is None:
        return None
    try:
        url = answer.url.join(link.get("url", ""))
    except httpx.InvalidURL:
        url = httpx.URL()
    here = (base.scheme, base.host, base.port, base.path)
    if (url.scheme, url.host, url.port, url.path) != here or not url.query:
        raise paging.incomplete("the website", "its next link leads elsewhere")
    return url


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _newest_first(post: RecentPost) -> float:
    return -post.created_at.timestamp() if post.created_at else float("inf")
