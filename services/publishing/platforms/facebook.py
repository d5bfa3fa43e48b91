"""Facebook Page adapter: redacted images and a caption as one post of the Page,
posted as the Page with its Page access token over the Graph API.

Each image is uploaded unpublished (``POST /{page-id}/photos``, ``published=false``,
multipart ``source``), then one ``POST /{page-id}/feed`` with ``message`` and
``attached_media[i]={"media_fbid": ...}`` makes the post (one image takes the same
two steps). If the post is refused, the staged photos are deleted; if its answer
is lost, they are kept: they may now belong to a live post.

Meta's documentation (checked 30 November 2026):

- posting as a Page, the photos-then-``attached_media`` flow, deleting a post:
  https://developers.facebook.com/docs/pages-api/posts
- Page photos (``published``, ``source``):
  https://developers.facebook.com/docs/graph-api/reference/page/photos
- Page feed (``since``, fields; ``limit`` at most 100, a higher one is an error):
  https://developers.facebook.com/docs/graph-api/reference/page/feed
- paginated results (``paging.next`` until absent; a short page is not the end):
  https://developers.facebook.com/docs/graph-api/results
- Page post (``permalink_url``, ``attachments``, ``DELETE``):
  https://developers.facebook.com/docs/graph-api/reference/post
- errors and versions: see ``graph.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.publishing.platforms import graph, paging
from services.publishing.platforms.base import (
    AmbiguousError,
    Destination,
    LivePost,
    Media,
    PlatformError,
    RecentPost,
    TransientError,
)

logger = logging.getLogger(__name__)

FEED_FIELDS = "id,message,created_time,permalink_url,attachments{type,subattachments}"
# The feed's documented upper bound for ``limit`` (a higher one is an error).
RECENT_PAGE_SIZE = 100
_EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif"}


class FacebookPageAdapter:
    platform = "facebook"

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        now: graph.Clock = graph.utcnow,
        recent_page_size: int = RECENT_PAGE_SIZE,
        recent_max_pages: int = paging.MAX_PAGES,
    ) -> None:
        paging.check_bounds(recent_page_size, recent_max_pages, RECENT_PAGE_SIZE)
        self._limits = graph.timeout(connect_timeout, read_timeout)
        self._page_size = recent_page_size
        self._max_pages = recent_max_pages
        self._now = now

    def _session(self, dest: Destination) -> graph.Session:
        return graph.Session(dest, self._limits, self._now)

    def publish(
        self, dest: Destination, caption: str, media: Sequence[Media]
    ) -> LivePost:
        page = graph.object_id(dest.external_id)
        with self._session(dest) as api:
            staged: list[str] = []
            try:
                for item in media:
                    staged.append(_stage(api, page, item))
                form = _feed_form(caption, staged)
                body = api.call("POST", f"{page}/feed", create=True, data=form)
            except PlatformError as exc:
                if not isinstance(exc, AmbiguousError):
                    _unstage(api, staged)
                raise
            post_id = graph.text_field(body, "id", create=True)
            logger.info(
                "facebook post live",
                extra={"account_id": dest.account_id, "post_id": post_id},
            )
            return LivePost(post_id, _permalink(api, post_id))

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
                "Facebook did not confirm the deletion", code="malformed"
            )

    def lookup(self, dest: Destination, external_id: str) -> LivePost | None:
        with self._session(dest) as api:
            try:
                params = {"fields": "id,permalink_url"}
                body = api.call("GET", graph.object_id(external_id), params=params)
            except PlatformError as exc:
                if graph.is_missing(exc):
                    return None
                raise
        post_id = graph.text_field(body, "id")
        return LivePost(post_id, _url(body.get("permalink_url"), post_id))

    def recent(self, dest: Destination, since: datetime) -> list[RecentPost]:
        """The Page's posts since ``since``, newest first, every page of them:
        ``GET /{page-id}/feed?since=...&limit=...``, then each ``paging.next`` until
        there is none (Graph says a short page is not the end). More than
        ``recent_max_pages`` pages is ``TransientError`` (``recent_incomplete``),
        never a partial list."""
        page_id = graph.object_id(dest.external_id)
        start = graph.not_before(since)
        edge = f"{page_id}/feed"
        params = {
            "fields": FEED_FIELDS,
            "since": str(int(start.timestamp())),
            "limit": str(self._page_size),
        }
        found: list[RecentPost] = []
        with self._session(dest) as api:
            for _ in range(self._max_pages):
                body = api.call("GET", edge, params=params)
                data = body.get("data")
                if not isinstance(data, list):
                    raise TransientError(
                        "malformed Graph answer: feed without data", code="malformed"
                    )
                found += [p for p in map(_recent, data) if paging.is_since(p, start)]
                following = paging.graph_next(dest.base_url, edge, body)
                if following is None:
                    return paging.unique(found)
                params = following
        raise paging.too_many_pages("Facebook", self._max_pages)


def _stage(api: graph.Session, page: str, item: Media) -> str:
    """Upload one image as an unpublished photo of the Page; its id."""
    name = "image" + _EXTENSIONS.get(item.content_type, "")
    files = {"source": (name, item.data, item.content_type)}
    body = api.call("POST", f"{page}/photos", data={"published": "false"}, files=files)
    return graph.text_field(body, "id")


def _unstage(api: graph.Session, staged: Sequence[str]) -> None:
    """Best effort: an unpublished photo nobody posts is invisible anyway."""
    for photo_id in staged:
        try:
            api.call("DELETE", photo_id)
        except PlatformError:
            logger.warning("staged photo not deleted", extra={"photo_id": photo_id})


def _feed_form(caption: str, staged: Sequence[str]) -> dict[str, str]:
    form = {"message": caption}
    for index, photo_id in enumerate(staged):
        form[f"attached_media[{index}]"] = json.dumps({"media_fbid": photo_id})
    return form


def _permalink(api: graph.Session, post_id: str) -> str:
    """The post's own link; bookkeeping after a success never fails the publish."""
    try:
        body = api.call("GET", post_id, params={"fields": "permalink_url"})
    except PlatformError:
        return _url(None, post_id)
    return _url(body.get("permalink_url"), post_id)


def _url(permalink: object, post_id: str) -> str:
    if isinstance(permalink, str) and permalink.startswith(("https://", "http://")):
        return permalink
    return f"https://www.facebook.com/{post_id}"


def _recent(item: object) -> RecentPost:
    if not isinstance(item, dict):
        raise TransientError("malformed Graph answer: a post is not an object")
    post_id = graph.text_field(item, "id")
    message = item.get("message")
    return RecentPost(
        external_id=post_id,
        url=_url(item.get("permalink_url"), post_id),
        text=message if isinstance(message, str) else "",
        media_count=_media_count(item.get("attachments")),
        created_at=graph.parse_time(item.get("created_time")),
    )


def _media_count(attachments: Any) -> int:
    """Images of a post: an album's sub-attachments, or its one photo."""
    data = attachments.get("data") if isinstance(attachments, dict) else None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return 0
    first = data[0]
    subs = first.get("subattachments")
    items = subs.get("data") if isinstance(subs, dict) else None
    if isinstance(items, list):
        return len(items)
    return 1 if first.get("type") == "photo" else 0
