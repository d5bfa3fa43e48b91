"""The LinkedIn adapter against the LinkedIn sandbox over real HTTP: organisation
posts with one and several images, every answer class, API versions, delete, lookup,
reconciliation after a lost answer, and OAuth with and without refresh tokens."""

from __future__ import annotations

import io
import itertools
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image

from safepost.sandboxes.linkedin import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    LinkedInSandbox,
)
from services.publishing.platforms import linkedin
from services.publishing.platforms.base import (
    AmbiguousError,
    AuthError,
    Credentials,
    Destination,
    Media,
    PermanentError,
    RateLimitedError,
    TransientError,
    find_ours,
)
from tests.support.wait import wait_for

ORG_ID = "5515715"
REDIRECT = "https://safepost.example/publishing/oauth/linkedin"
NOW = datetime(2026, 11, 30, 15, 30, tzinfo=UTC)
_captions = itertools.count(1)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[LinkedInSandbox]:
    box = LinkedInSandbox()
    box.timeout_seconds = 0.8
    box.add_organization(ORG_ID, "Oakfield Primary School")
    running = box.serve()
    yield box
    running.stop()


@pytest.fixture(autouse=True)
def clean(sandbox: LinkedInSandbox) -> None:
    httpx.post(f"{sandbox.base_url}/_sandbox/reset")


@pytest.fixture
def adapter() -> linkedin.LinkedInAdapter:
    return linkedin.LinkedInAdapter(
        connect_timeout=1.0, read_timeout=0.4, now=lambda: NOW
    )


def a_destination(
    sandbox: LinkedInSandbox, token: str | None = None, version: str = ""
) -> Destination:
    return Destination(
        account_id="oakfield-linkedin",
        platform="linkedin",
        external_id=f"urn:li:organization:{ORG_ID}",
        base_url=sandbox.base_url,
        credentials=Credentials(token or sandbox.issue_token()[0]),
        api_version=version,
        settings={"web_url": sandbox.base_url},
    )


def jpeg(n: int = 0) -> Media:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, n * 30 % 256, 40)).save(buf, "JPEG")
    return Media(photo_id=f"photo-{n}", data=buf.getvalue())


def a_caption(extra: str = "") -> str:
    return f"Year 6 visit the museum, group {next(_captions)}{extra}"


def test_one_image_is_posted_as_the_organisation(sandbox, adapter):
    caption = a_caption()

    post = adapter.publish(a_destination(sandbox), caption, [jpeg()])

    [live] = sandbox.live()
    assert live["id"] == post.external_id and post.external_id.startswith(
        "urn:li:share:"
    )
    assert live["post"]["author"] == f"urn:li:organization:{ORG_ID}"
    assert live["post"]["content"] == {"media": {"id": live["images"][0]}}
    assert live["post"]["distribution"]["feedDistribution"] == "MAIN_FEED"
    assert live["text"] == caption
    assert post.url == f"{sandbox.base_url}/feed/update/{post.external_id}/"
    assert httpx.get(post.url).status_code == 200


def test_several_images_are_one_multi_image_post(sandbox, adapter):
    post = adapter.publish(
        a_destination(sandbox), a_caption(), [jpeg(n) for n in range(5)]
    )

    [live] = sandbox.live()
    assert live["id"] == post.external_id
    assert len(live["post"]["content"]["multiImage"]["images"]) == 5


def test_reserved_characters_are_escaped_so_the_caption_shows_whole(sandbox, adapter):
    caption = a_caption(" (with @Oakfield_PTA #museum [trip] *wow* ~ {x} <3 | \\o/)")
    dest = a_destination(sandbox)

    adapter.publish(dest, caption, [jpeg()])

    [live] = sandbox.live()
    assert live["text"] == caption
    [listed] = adapter.recent(dest, datetime.now(UTC) - timedelta(minutes=1))
    assert listed.text == caption


@pytest.mark.parametrize("count", [0, 21])
def test_no_or_more_than_twenty_images_are_refused_before_any_request(
    sandbox, adapter, count
):
    with pytest.raises(PermanentError) as refused:
        adapter.publish(a_destination(sandbox), a_caption(), [jpeg()] * count)

    assert refused.value.code == "image_count"
    assert sandbox.state.requests == []


def test_an_expired_access_token_is_an_auth_error(sandbox, adapter):
    expired = sandbox.issue_token(lifetime=-1)[0]

    with pytest.raises(AuthError) as refused:
        adapter.publish(a_destination(sandbox, expired), a_caption(), [jpeg()])

    assert refused.value.status == 401 and refused.value.code == "service_65600"
    assert expired not in str(refused.value)


def test_a_token_without_the_posting_scope_is_an_auth_error(sandbox, adapter):
    read_only = sandbox.issue_token(frozenset({"r_organization_social"}))[0]

    with pytest.raises(AuthError) as refused:
        adapter.publish(a_destination(sandbox, read_only), a_caption(), [jpeg()])

    assert refused.value.status == 403 and refused.value.code == "ACCESS_DENIED"


def test_429_is_rate_limited_until_the_next_midnight_utc(sandbox, adapter):
    sandbox.inject("rate_limited", "POST /rest/posts")

    with pytest.raises(RateLimitedError) as limited:
        adapter.publish(a_destination(sandbox), a_caption(), [jpeg()])

    assert limited.value.retry_at == datetime(2026, 12, 1, tzinfo=UTC)


def test_a_5xx_on_the_post_is_ambiguous(sandbox, adapter):
    sandbox.inject("server_error", "POST /rest/posts")

    with pytest.raises(AmbiguousError) as unsure:
        adapter.publish(a_destination(sandbox), a_caption(), [jpeg()])

    assert unsure.value.status == 500


@pytest.mark.parametrize("where", ["POST /rest/images", "PUT /dms-uploads/"])
def test_a_5xx_while_uploading_is_transient_and_nothing_is_posted(
    sandbox, adapter, where
):
    sandbox.inject("server_error", where)

    with pytest.raises(TransientError):
        adapter.publish(a_destination(sandbox), a_caption(), [jpeg()])

    assert ("POST", "/rest/posts") not in sandbox.state.requests


def test_a_timeout_on_the_post_is_ambiguous_and_reconciled(sandbox, adapter):
    dest, caption = a_destination(sandbox), a_caption()
    sandbox.inject("timeout", "POST /rest/posts")

    with pytest.raises(AmbiguousError):
        adapter.publish(dest, caption, [jpeg(), jpeg(1)])

    [live] = wait_for(sandbox.live, 5.0, interval=0.02)  # the held post lands
    ours = find_ours(
        adapter.recent(dest, datetime.now(UTC) - timedelta(minutes=1)), caption, 2
    )
    assert ours is not None and ours.external_id == live["id"]


def test_a_dropped_connection_after_the_post_leaves_exactly_one_post_we_find(
    sandbox, adapter
):
    dest, caption = a_destination(sandbox), a_caption(" (from the trip)")
    sandbox.inject("drop_after", "POST /rest/posts")

    with pytest.raises(AmbiguousError) as unsure:
        adapter.publish(dest, caption, [jpeg(), jpeg(1), jpeg(2)])

    assert unsure.value.code == "no_answer"
    [live] = sandbox.live()
    ours = find_ours(
        adapter.recent(dest, datetime.now(UTC) - timedelta(minutes=1)), caption, 3
    )
    assert ours is not None and ours.external_id == live["id"]
    assert ours.url == f"{sandbox.base_url}/feed/update/{live['id']}/"


def test_a_malformed_answer_to_the_post_is_ambiguous_never_a_success(sandbox, adapter):
    sandbox.inject("malformed", "POST /rest/posts")

    with pytest.raises(AmbiguousError) as unsure:
        adapter.publish(a_destination(sandbox), a_caption(), [jpeg()])

    assert unsure.value.code == "malformed"


def test_a_malformed_answer_to_a_read_is_transient(sandbox, adapter):
    sandbox.inject("malformed", "GET /rest/posts")

    with pytest.raises(TransientError):
        adapter.recent(a_destination(sandbox), datetime.now(UTC) - timedelta(minutes=1))


def test_refused_content_is_permanent_with_linkedin_s_message(sandbox, adapter):
    sandbox.inject("refuse", "POST /rest/posts")

    with pytest.raises(PermanentError) as refused:
        adapter.publish(a_destination(sandbox), a_caption(), [jpeg()])

    assert refused.value.status == 422
    assert refused.value.message == "ERROR :: /commentary :: The content was refused."


def test_a_duplicate_post_is_refused_by_linkedin(sandbox, adapter):
    dest, caption = a_destination(sandbox), a_caption()
    first = adapter.publish(dest, caption, [jpeg()])

    with pytest.raises(PermanentError) as refused:
        adapter.publish(dest, caption, [jpeg(1)])

    assert refused.value.message.endswith(f"duplicate of {first.external_id}")


def test_a_retired_api_version_is_permanent(sandbox, adapter):
    with pytest.raises(PermanentError) as refused:
        adapter.publish(a_destination(sandbox, version="202401"), a_caption(), [jpeg()])

    assert refused.value.status == 426 and refused.value.code == "NONEXISTENT_VERSION"


def test_the_destination_s_api_version_is_sent(sandbox, adapter):
    post = adapter.publish(
        a_destination(sandbox, version="202611"), a_caption(), [jpeg()]
    )

    assert post.external_id == sandbox.live()[0]["id"]


def test_the_default_api_version_is_one_the_sandbox_supports(sandbox):
    assert linkedin.DEFAULT_API_VERSION in sandbox.versions


def test_the_sandbox_answers_a_missing_version_as_linkedin_does(sandbox):
    answer = httpx.get(
        f"{sandbox.base_url}/rest/posts",
        params={"q": "author", "author": f"urn:li:organization:{ORG_ID}"},
        headers={"Authorization": f"Bearer {sandbox.issue_token()[0]}"},
    )

    assert answer.status_code == 400 and answer.json()["code"] == "VERSION_MISSING"


def test_a_post_is_looked_up_deleted_and_a_second_delete_is_fine(sandbox, adapter):
    dest = a_destination(sandbox)
    post = adapter.publish(dest, a_caption(), [jpeg()])

    found = adapter.lookup(dest, post.external_id)
    adapter.delete(dest, post.external_id)
    adapter.delete(dest, post.external_id)

    assert found == post
    assert adapter.lookup(dest, post.external_id) is None
    assert sandbox.live() == []


def test_deleting_a_post_linkedin_never_had_counts_as_deleted(sandbox, adapter):
    adapter.delete(a_destination(sandbox), "urn:li:share:1")


def test_a_5xx_on_a_delete_is_transient(sandbox, adapter):
    dest = a_destination(sandbox)
    post = adapter.publish(dest, a_caption(), [jpeg()])
    sandbox.inject("server_error", "DELETE /rest/posts/")

    with pytest.raises(TransientError):
        adapter.delete(dest, post.external_id)

    assert len(sandbox.live()) == 1


def test_recent_lists_the_organisation_s_posts_newest_first(sandbox, adapter):
    dest = a_destination(sandbox)
    first = adapter.publish(dest, a_caption(), [jpeg()])
    second = adapter.publish(dest, a_caption(), [jpeg(), jpeg(1)])

    recent = adapter.recent(dest, datetime.now(UTC) - timedelta(minutes=1))
    later = adapter.recent(dest, datetime.now(UTC) + timedelta(minutes=1))

    assert [p.external_id for p in recent] == [second.external_id, first.external_id]
    assert [p.media_count for p in recent] == [2, 1]
    assert later == []


def test_an_unreachable_linkedin_is_transient(adapter):
    dest = Destination("a", "linkedin", ORG_ID, "http://127.0.0.1:9", Credentials("t"))

    with pytest.raises(TransientError):
        adapter.publish(dest, a_caption(), [jpeg()])


# -- OAuth ----------------------------------------------------------------------------


def authorise(sandbox: LinkedInSandbox) -> str:
    url = linkedin.authorize_url(
        DEMO_CLIENT_ID,
        REDIRECT,
        "state-9",
        endpoint=f"{sandbox.base_url}/oauth/v2/authorization",
    )
    answer = httpx.get(url)
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["state"] == ["state-9"]
    return query["code"][0]


def test_the_authorisation_url_asks_for_the_organisation_scopes():
    url = linkedin.authorize_url("client", REDIRECT, "s")

    query = parse_qs(urlsplit(url).query)
    assert url.startswith("https://www.linkedin.com/oauth/v2/authorization?")
    assert set(query["scope"][0].split()) == {
        "w_organization_social",
        "r_organization_social",
    }


def test_a_code_gives_a_sixty_day_token_and_a_refresh_token_that_work(sandbox, adapter):
    endpoint = f"{sandbox.base_url}/oauth/v2/accessToken"

    creds = linkedin.exchange_code(
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        authorise(sandbox),
        REDIRECT,
        endpoint=endpoint,
        now=lambda: NOW,
    )
    renewed = linkedin.refresh(
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        creds.refresh_token or "",
        endpoint=endpoint,
        now=lambda: NOW,
    )

    assert creds.expires_at == NOW + timedelta(days=60)
    assert set(creds.scopes) == set(linkedin.SCOPES)
    assert renewed.refresh_token == creds.refresh_token  # LinkedIn does not rotate
    assert renewed.access_token != creds.access_token
    adapter.publish(a_destination(sandbox, renewed.access_token), a_caption(), [jpeg()])


def test_a_code_is_refused_a_second_time(sandbox):
    endpoint = f"{sandbox.base_url}/oauth/v2/accessToken"
    code = authorise(sandbox)
    linkedin.exchange_code(
        DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, code, REDIRECT, endpoint=endpoint
    )

    with pytest.raises(AuthError) as refused:
        linkedin.exchange_code(
            DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, code, REDIRECT, endpoint=endpoint
        )

    assert refused.value.code == "invalid_request"


def test_a_wrong_client_secret_is_an_auth_error(sandbox):
    with pytest.raises(AuthError) as refused:
        linkedin.exchange_code(
            DEMO_CLIENT_ID,
            "not-the-secret",
            authorise(sandbox),
            REDIRECT,
            endpoint=f"{sandbox.base_url}/oauth/v2/accessToken",
        )

    assert refused.value.code == "invalid_client"


def test_without_refresh_tokens_the_owner_is_warned_before_expiry():
    box = LinkedInSandbox(refresh_tokens=False)
    running = box.serve()
    try:
        url = linkedin.authorize_url(
            DEMO_CLIENT_ID,
            REDIRECT,
            "s",
            endpoint=f"{box.base_url}/oauth/v2/authorization",
        )
        code = parse_qs(urlsplit(httpx.get(url).headers["location"]).query)["code"][0]
        creds = linkedin.exchange_code(
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            code,
            REDIRECT,
            endpoint=f"{box.base_url}/oauth/v2/accessToken",
            now=lambda: NOW,
        )
    finally:
        running.stop()

    assert creds.refresh_token is None
    assert not linkedin.reconnect_due(creds, NOW + timedelta(days=45))
    assert linkedin.reconnect_due(creds, NOW + timedelta(days=47))


def test_an_unknown_refresh_token_is_an_auth_error(sandbox):
    with pytest.raises(AuthError):
        linkedin.refresh(
            DEMO_CLIENT_ID,
            DEMO_CLIENT_SECRET,
            "never-issued",
            endpoint=f"{sandbox.base_url}/oauth/v2/accessToken",
        )


def test_the_sandbox_page_shows_each_post_with_its_images(sandbox, adapter):
    adapter.publish(a_destination(sandbox), a_caption(" <i>"), [jpeg(), jpeg(1)])
    [live] = sandbox.live()

    index = httpx.get(f"{sandbox.base_url}/").text
    image = httpx.get(f"{sandbox.base_url}/_sandbox/media/{live['images'][0]}")

    assert "&lt;i&gt;" in index and index.count("<img ") == 2
    assert (
        image.headers["content-type"] == "image/jpeg" and image.content == jpeg().data
    )


# -- recent: every page back to `since` ---------------------------------------------


def paged(max_pages: int = 50, read_timeout: float = 1.0) -> linkedin.LinkedInAdapter:
    return linkedin.LinkedInAdapter(
        connect_timeout=1.0,
        read_timeout=read_timeout,
        now=lambda: NOW,
        recent_page_size=25,
        recent_max_pages=max_pages,
    )


def post_many(
    sandbox: LinkedInSandbox, dest: Destination, count: int, text: str
) -> list[str]:
    """Other text posts of the organisation, over the API in one connection."""
    assert dest.credentials is not None
    headers = {
        "Authorization": f"Bearer {dest.credentials.access_token}",
        "LinkedIn-Version": linkedin.DEFAULT_API_VERSION,
        "X-Restli-Protocol-Version": "2.0.0",
    }
    urns = []
    with httpx.Client(base_url=sandbox.base_url, headers=headers) as client:
        for n in range(count):
            body = {
                "author": dest.external_id,
                "commentary": f"{text} {n}",
                "visibility": "PUBLIC",
                "distribution": {"feedDistribution": "MAIN_FEED"},
                "lifecycleState": "PUBLISHED",
            }
            answer = client.post("/rest/posts", json=body)
            assert answer.status_code == 201
            urns.append(answer.headers["x-restli-id"])
    return urns


def backdate(sandbox: LinkedInSandbox, text: str, hours: float = 1.0) -> None:
    with sandbox.state.lock:
        for kept in sandbox.state.posts.values():
            if str(kept["text"]).startswith(text):
                kept["post"]["createdAt"] -= int(hours * 3600 * 1000)


def finder_reads(sandbox: LinkedInSandbox) -> int:
    with sandbox.state.lock:
        return sum(1 for c in sandbox.state.requests if c == ("GET", "/rest/posts"))


def test_recent_reads_every_page_back_to_our_post_among_many(sandbox):
    adapter, dest, caption = paged(), a_destination(sandbox), a_caption()
    post_many(sandbox, dest, 30, "Last term")
    backdate(sandbox, "Last term")
    since = datetime.now(UTC) - timedelta(minutes=1)
    sandbox.inject("drop_after", "POST /rest/posts")
    with pytest.raises(AmbiguousError):
        adapter.publish(dest, caption, [jpeg(), jpeg(1)])
    post_many(sandbox, dest, 120, "Later that day")
    sandbox.state.requests.clear()

    recent = adapter.recent(dest, since)

    ours = find_ours(recent, caption, 2)
    assert ours is not None and recent[-1] == ours  # made first: on the last page
    assert len(recent) == 121 and len({p.external_id for p in recent}) == 121
    assert not any(p.text.startswith("Last term") for p in recent)
    # 25 a page, each starting at the last one's last post; the 6th page ends in
    # last term's posts, so it stops there.
    assert finder_reads(sandbox) == 6


def test_recent_past_the_page_bound_is_incomplete_not_partial(sandbox):
    adapter, dest = paged(max_pages=2), a_destination(sandbox)
    post_many(sandbox, dest, 60, "Sports day")
    sandbox.state.requests.clear()

    with pytest.raises(TransientError) as raised:
        adapter.recent(dest, datetime.now(UTC) - timedelta(minutes=5))

    assert raised.value.code == "recent_incomplete"
    assert finder_reads(sandbox) == 2


def test_a_post_deleted_between_two_pages_makes_recent_incomplete_not_short():
    """Offsets shift when a post on an earlier page goes: the page after would skip
    one post unseen. Each page starts at the last one's last post, so it is seen."""
    box = LinkedInSandbox(latency=(0.3, 0.3))  # time to delete between two pages
    box.add_organization(ORG_ID, "Oakfield Primary School")
    running = box.serve()
    try:
        dest = a_destination(box)
        box.latency = (0.0, 0.0)
        newest = post_many(box, dest, 40, "Sports day")[-1]
        box.latency = (0.3, 0.3)
        box.state.requests.clear()
        result: list[object] = []

        def read() -> None:
            try:
                since = datetime.now(UTC) - timedelta(minutes=5)
                result.append(paged(read_timeout=3.0).recent(dest, since))
            except TransientError as error:
                result.append(error)

        reader = threading.Thread(target=read)
        reader.start()
        deadline = time.monotonic() + 5
        while finder_reads(box) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        box.forget(newest)  # while the second page's request waits
        reader.join(timeout=5)
    finally:
        running.stop()

    [error] = result
    assert isinstance(error, TransientError) and error.code == "recent_incomplete"


def test_the_sandbox_finder_pages_by_start_and_count_as_linkedin_does(sandbox):
    dest = a_destination(sandbox)
    post_many(sandbox, dest, 12, "Sports day")
    assert dest.credentials is not None
    headers = {
        "Authorization": f"Bearer {dest.credentials.access_token}",
        "LinkedIn-Version": linkedin.DEFAULT_API_VERSION,
        "X-Restli-Protocol-Version": "2.0.0",
    }
    url = f"{sandbox.base_url}/rest/posts"
    query = {"q": "author", "author": dest.external_id, "sortBy": "CREATED"}

    first = httpx.get(url, params=query, headers=headers).json()
    rest = httpx.get(url, params=query | {"start": "10"}, headers=headers).json()
    too_many = httpx.get(url, params=query | {"count": "101"}, headers=headers)
    bad_sort = httpx.get(url, params=query | {"sortBy": "NEWEST"}, headers=headers)

    assert len(first["elements"]) == 10 and first["paging"]["total"] == 12
    assert len(rest["elements"]) == 2  # fewer than count: the end
    created = [p["createdAt"] for p in first["elements"] + rest["elements"]]
    assert created == sorted(created, reverse=True)
    assert too_many.status_code == 400 and bad_sort.status_code == 400
