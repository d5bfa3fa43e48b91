"""Instagram adapter (Instagram API with Facebook Login): redacted images and a
caption as one post of the school's Instagram professional account.

Instagram fetches each image itself from ``Media.url``, a short-lived signed URL of
the redacted copy (never an original); a medium without one is refused before any
call. One image is one container (``POST /{ig-user-id}/media`` with ``image_url``
and ``caption``); several (2-10) are item containers (``is_carousel_item=true``)
and a ``CAROUSEL`` container with ``children`` and ``caption``. The container is
polled (``GET /{container-id}?fields=status_code``) until ``FINISHED``, then
``POST /{ig-user-id}/media_publish`` with ``creation_id`` makes it live: that is the
create whose lost answer is ambiguous. Nothing before it is visible, and unpublished
containers expire after 24 hours, so nothing needs cleaning up.

Meta's documentation (checked 30 November 2026):

- content publishing (containers, carousels, status, limits):
  https://developers.facebook.com/docs/instagram-platform/content-publishing
- container status codes (EXPIRED, ERROR, FINISHED, IN_PROGRESS, PUBLISHED):
  https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-container
- ``media_publish``:
  https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media_publish
- a user's media (``caption``, ``permalink``, ``timestamp``, ``media_type``,
  ``children``): https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media
- IG Media (reading; ``DELETE /{ig-media-id}``, Facebook Login only, with
  ``instagram_manage_contents``):
  https://developers.facebook.com/docs/instagram-platform/reference/instagram-media
- paginated results (cursor paging with ``limit``, ``after`` and ``paging.next``;
  "do not depend on the number of results being fewer than the limit ... use the
  absence of next"): https://developers.facebook.com/docs/graph-api/results
  The media edge documents no ``limit`` ceiling; where an edge has one, Graph caps
  ``limit`` itself and still gives ``next``.
- errors and versions: see ``graph.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from services.publishing.platforms import graph, paging
from services.publishing.platforms.base import (
    AmbiguousError,
    Destination,
    LivePost,
    Media,
    PermanentError,
    PlatformError,
    RecentPost,
    TransientError,
)

logger = logging.getLogger(__name__)

MAX_IMAGES = 10
MEDIA_FIELDS = "id,caption,permalink,timestamp,media_type,children"
# Media per page asked for: Graph may cap an edge's limit lower and then pages on.
RECENT_PAGE_SIZE = 100


class InstagramAdapter:
    platform = "instagram"

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        poll_interval: float = 3.0,
        max_polls: int = 20,
        sleep: Callable[[float], None] = time.sleep,
        now: graph.Clock = graph.utcnow,
        recent_page_size: int = RECENT_PAGE_SIZE,
        recent_max_pages: int = paging.MAX_PAGES,
    ) -> None:
        paging.check_bounds(recent_page_size, recent_max_pages, RECENT_PAGE_SIZE)
        self._limits = graph.timeout(connect_timeout, read_timeout)
        self._page_size = recent_page_size
        self._max_pages = recent_max_pages
        self._poll_interval = poll_interval
        self._max_polls = max_polls
        self._sleep = sleep
        self._now = now

    def _session(self, dest: Destination) -> graph.Session:
        return graph.Session(dest, self._limits, self._now)

    def publish(
        self, dest: Destination, caption: str, media: Sequence[Media]
    ) -> LivePost:
        user = graph.object_id(dest.external_id)
        urls = _image_urls(media)
        with self._session(dest) as api:
            container = _container(api, user, caption, urls)
            self._wait(api, container)
            form = {"creation_id": container}
            body = api.call("POST", f"{user}/media_publish", create=True, data=form)
            media_id = graph.text_field(body, "id", create=True)
            logger.info(
                "instagram post live",
                extra={"account_id": dest.account_id, "post_id": media_id},
            )
            return LivePost(media_id, _permalink(api, media_id))

    def _wait(self, api: graph.Session, container: str) -> None:
        """Until the container is ready; nothing is published while it is not."""
        for attempt in range(self._max_polls):
            if attempt:
                self._sleep(self._poll_interval)
            body = api.call("GET", container, params={"fields": "status_code,status"})
            status = body.get("status_code")
            if status == "FINISHED":
                return
            if status == "IN_PROGRESS":
                continue
            detail = body.get("status")
            if status == "ERROR":
                raise PermanentError(
                    f"Instagram could not use the media ({detail})",
                    code="container_error",
                )
            if status == "EXPIRED":
                raise PermanentError(
                    "the Instagram container expired", code="container_expired"
                )
            if status == "PUBLISHED":
                raise AmbiguousError(
                    "the container was published elsewhere", code="container_published"
                )
            raise TransientError(
                f"malformed container status {status!r}", code="malformed"
            )
        raise TransientError(
            "Instagram did not finish processing the media", code="container_not_ready"
        )

    def delete(self, dest: Destination, external_id: str) -> None:
        with self._session(dest) as api:
            try:
                body = api.call("DELETE", graph.object_id(external_id))
            except PlatformError as exc:
                if graph.is_missing(exc):
                    return
                raise
        if body.get("success") is not True:
            raise TransientError(
                "Instagram did not confirm the deletion", code="malformed"
            )

    def lookup(self, dest: Destination, external_id: str) -> LivePost | None:
        with self._session(dest) as api:
            try:
                params = {"fields": "id,permalink"}
                body = api.call("GET", graph.object_id(external_id), params=params)
            except PlatformError as exc:
                if graph.is_missing(exc):
                    return None
                raise
        media_id = graph.text_field(body, "id")
        permalink = body.get("permalink")
        return LivePost(media_id, permalink if isinstance(permalink, str) else "")

    def recent(self, dest: Destination, since: datetime) -> list[RecentPost]:
        """The account's media since ``since``, newest first, read page by page
        (``GET /{ig-user-id}/media``, ``limit``, then each ``paging.next``) until a
        page ends with a medium older than ``since`` or there is no ``next``; more
        than ``recent_max_pages`` pages is ``TransientError`` (``recent_incomplete``),
        never a partial list. The edge lists newest first; only a page's last
        medium is taken to mean the rest are older (one out of order at the top,
        such as a pinned post, must not end the reading)."""
        user = graph.object_id(dest.external_id)
        start = graph.not_before(since)
        edge = f"{user}/media"
        params = {"fields": MEDIA_FIELDS, "limit": str(self._page_size)}
        found: list[RecentPost] = []
        with self._session(dest) as api:
            for _ in range(self._max_pages):
                body = api.call("GET", edge, params=params)
                page = [_recent(item) for item in _data(body)]
                found += [p for p in page if paging.is_since(p, start)]
                following = paging.graph_next(dest.base_url, edge, body)
                if following is None or (page and paging.is_before(page[-1], start)):
                    return paging.unique(found)
                params = following
        raise paging.too_many_pages("Instagram", self._max_pages)


def _data(body: dict[str, object]) -> list[object]:
    data = body.get("data")
    if not isinstance(data, list):
        raise TransientError(
            "malformed Graph answer: media without data", code="malformed"
        )
    return data


def _image_urls(media: Sequence[Media]) -> list[str]:
    if not 1 <= len(media) <= MAX_IMAGES:
        raise PermanentError(
            f"Instagram takes 1 to {MAX_IMAGES} images, not {len(media)}",
            code="image_count",
        )
    urls = [item.url for item in media]
    if any(url is None for url in urls):
        raise PermanentError(
            "Instagram needs a signed URL of each redacted image", code="no_media_url"
        )
    return [url for url in urls if url is not None]


def _container(api: graph.Session, user: str, caption: str, urls: Sequence[str]) -> str:
    """The container to publish: one image, or a carousel of item containers."""
    if len(urls) == 1:
        form = {"image_url": urls[0], "caption": caption}
        return graph.text_field(api.call("POST", f"{user}/media", data=form), "id")
    children = []
    for url in urls:
        form = {"image_url": url, "is_carousel_item": "true"}
        children.append(
            graph.text_field(api.call("POST", f"{user}/media", data=form), "id")
        )
    form = {
        "media_type": "CAROUSEL",
        "children": ",".join(children),
        "caption": caption,
    }
    return graph.text_field(api.call("POST", f"{user}/media", data=form), "id")


def _permalink(api: graph.Session, media_id: str) -> str:
    """The post's link ("" if it cannot be read now: ``lookup`` gives it later);
    bookkeeping after a success never fails the publish."""
    try:
        body = api.call("GET", media_id, params={"fields": "permalink"})
    except PlatformError:
        return ""
    permalink = body.get("permalink")
    return permalink if isinstance(permalink, str) else ""


def _recent(item: object) -> RecentPost:
    if not isinstance(item, dict):
        raise TransientError("malformed Graph answer: a medium is not an object")
    caption, permalink = item.get("caption"), item.get("permalink")
    return RecentPost(
        external_id=graph.text_field(item, "id"),
        url=permalink if isinstance(permalink, str) else "",
        text=caption if isinstance(caption, str) else "",
        media_count=_media_count(item),
        created_at=graph.parse_time(item.get("timestamp")),
    )


def _media_count(item: dict[str, object]) -> int:
    children = item.get("children")
    data = children.get("data") if isinstance(children, dict) else None
    if item.get("media_type") == "CAROUSEL_ALBUM" and isinstance(data, list):
        return len(data)
    return 1
