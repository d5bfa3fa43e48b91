"""What people read about a post on each account, and which state is the newest."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from services.approval import domain

AT = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
LATER = datetime(2030, 1, 1, 10, 5, tzinfo=UTC)


def a_state(state: str = "live", **kwargs) -> domain.Delivery:
    kwargs.setdefault("platform", "facebook")
    return domain.Delivery("p1", "page", "north", state, kwargs.pop("at", AT), **kwargs)


@pytest.mark.parametrize(
    ("state", "words"),
    [
        (a_state("live", url="https://facebook.com/1"), "Live — open it"),
        (
            a_state("live", platform="folder"),
            "Live — published to the school's folder",
        ),
        (
            a_state("waiting", reason="needs_reconnect", retry_at=LATER),
            "Waiting: the account needs reconnecting",
        ),
        (
            a_state("waiting", reason="retrying", attempts=1, retry_at=LATER),
            "Retrying at 10:05 UTC (attempt 2)",
        ),
        (
            a_state("waiting", reason="rate_limited", attempts=2, retry_at=LATER),
            "Waiting: the platform asked us to slow down. Retrying at 10:05 UTC "
            "(attempt 3)",
        ),
        (
            a_state("waiting", reason="site_not_approved"),
            "Waiting: the site is not on the trust's register of approved sites",
        ),
        (
            a_state("failed", reason="media_rejected", detail="(#324) Bad image"),
            "Failed: (#324) Bad image",
        ),
        (a_state("failed", reason="media_rejected"), "Failed: media rejected"),
        (a_state("unconfirmed"), "Someone must check whether it went live"),
        (a_state("pending"), "Queued to go out"),
        (a_state("held"), "Held: consent changed before it went live"),
        (a_state("taken_down"), "Taken down"),
        (
            a_state("manual_takedown_required"),
            "Someone must take it down by hand on the platform",
        ),
        (a_state("something_new"), "Something new"),
    ],
)
def test_each_state_reads_in_plain_words(state, words):
    assert domain.describe_delivery(state) == words


def test_a_failure_never_shows_a_server_path_but_keeps_a_web_address():
    state = a_state(
        "failed",
        platform="folder",
        detail="[Errno 13] Permission denied: '/srv/safepost/published/north/x/p1' "
        "(see https://help.example.org/a/b)",
    )

    words = domain.describe_delivery(state)

    assert "/srv" not in words and "published/north" not in words
    assert "(a file on the server)" in words
    assert "https://help.example.org/a/b" in words


def test_a_windows_path_is_hidden_too():
    assert domain.without_paths(r"cannot write C:\data\north\p1") == (
        "cannot write (a file on the server)"
    )


@pytest.mark.parametrize(
    "url", ["/srv/published/p1", "north/newsroom/p1", "file:///srv/p1", "javascript:x"]
)
def test_only_a_web_address_is_ever_a_link(url):
    assert domain.public_url(url) == ""
    assert domain.describe_delivery(a_state("live", url=url)) == "Live"
    assert domain.describe_delivery(a_state("live", url=url, platform="folder")) == (
        "Live — published to the school's folder"
    )


def test_a_later_update_wins_and_the_same_or_an_older_one_does_not():
    kept = a_state("sending")

    assert domain.newer(None, kept)
    assert domain.newer(kept, a_state("live", at=LATER))
    assert not domain.newer(kept, a_state("pending"))
    assert not domain.newer(a_state("live", at=LATER), kept)


def test_a_summary_fills_in_only_where_no_update_said_anything():
    summary_live = a_state("live", timed=False)
    summary_failed = a_state("failed", timed=False, at=LATER)

    assert not domain.newer(a_state("taken_down"), summary_live)
    assert domain.newer(summary_live, a_state("taken_down"))
    assert domain.newer(summary_failed, summary_live)
    assert not domain.newer(summary_live, summary_failed)
    assert not domain.newer(summary_live, replace(summary_live, at=LATER))
