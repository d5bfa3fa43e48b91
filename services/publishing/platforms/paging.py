"""Reading an account's recent posts completely, for every adapter's ``recent``.

Reconciliation (``delivery.reconcile``) sends a post again when ours is not among
``recent(dest, since)``: a list that stops after the newest page while more posts
were made since ``since`` turns a lost answer into a duplicate live post. So each
adapter pages back, the way its platform documents, until the platform says there
is nothing more (or a post older than ``since`` is reached), reading at most
``MAX_PAGES`` pages. Past that bound, or on a page it cannot follow, it raises
``TransientError`` (``recent_incomplete``): the engine then looks again later, which
is safe; a partial list passed off as complete is not.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import httpx

from services.publishing.platforms.base import RecentPost, TransientError

MAX_PAGES = 50
INCOMPLETE = "recent_incomplete"


def incomplete(platform: str, why: str) -> TransientError:
    """The answer when the recent posts could not be read to the end."""
    return TransientError(
        f"{platform}'s recent posts could not be read completely ({why}); "
        "looking again later",
        code=INCOMPLETE,
    )


def too_many_pages(platform: str, pages: int) -> TransientError:
    return incomplete(platform, f"still more after {pages} pages")


def check_bounds(page_size: int, max_pages: int, most: int) -> None:
    if not 2 <= page_size <= most or max_pages < 1:
        raise ValueError(f"page size 2-{most} and at least one page")


def aware(when: datetime) -> datetime:
    """``when`` with a time zone (naive means UTC)."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def is_since(post: RecentPost, since: datetime) -> bool:
    """Whether the post may have been made since ``since`` (one without a creation
    time may be ours: it is kept)."""
    return post.created_at is None or aware(post.created_at) >= aware(since)


def is_before(post: RecentPost, since: datetime) -> bool:
    return post.created_at is not None and aware(post.created_at) < aware(since)


def unique(posts: Iterable[RecentPost]) -> list[RecentPost]:
    """Each post once, in the order first seen (pages read while the account
    changes can show a post twice; ``find_ours`` would take that for two posts)."""
    seen: dict[str, RecentPost] = {}
    for post in posts:
        seen.setdefault(post.external_id, post)
    return list(seen.values())


def graph_next(base_url: str, edge: str, body: dict[str, Any]) -> dict[str, str] | None:
    """The query of the next page of a Graph edge, from ``paging.next`` (absent on
    the last page); None when there is none.

    Graph documents ``next`` as the call that returns the next page (its ``after``
    cursor, or ``until`` and a paging token on time-paged edges) and says not to
    take a short page for the end. It is followed only to the same host and edge,
    and without any ``access_token`` in it (the token travels in the header)."""
    paging = body.get("paging")
    link = paging.get("next") if isinstance(paging, dict) else None
    if link is None or link == "":
        return None
    if not isinstance(link, str):
        raise incomplete("Graph", "paging.next is not a URL")
    try:
        url, base = httpx.URL(link), httpx.URL(base_url)
    except httpx.InvalidURL:
        raise incomplete("Graph", "paging.next is not a URL") from None
    same_host = (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port)
    if not same_host or not url.path.endswith(f"/{edge}"):
        raise incomplete("Graph", "paging.next leads to another edge")
    query = {k: v for k, v in url.params.multi_items() if k != "access_token"}
    if not query:
        raise incomplete("Graph", "paging.next has no cursor")
    return query
