"""The X adapter against the X sandbox over real HTTP: publish, every answer class,
delete, lookup, reconciliation after a lost answer, OAuth 2.0 with PKCE and rotation."""

from __future__ import annotations

import io
import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image

from safepost.sandboxes.x import DEMO_CLIENT_ID, XSandbox
from services.publishing.platforms import x
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

USER = "1500000000000000001"
REDIRECT = "https://safepost.example/publishing/oauth/x"
_captions = itertools.count(1)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[XSandbox]:
    box = XSandbox()
    box.timeout_seconds = 0.8
    box.add_user(USER, "oakfield_school")
    running = box.serve()
    yield box
    running.stop()


@pytest.fixture(autouse=True)
def clean(sandbox: XSandbox) -> None:
    httpx.post(f"{sandbox.base_url}/_sandbox/reset")


@pytest.fixture
def adapter() -> x.XAdapter:
    return x.XAdapter(connect_timeout=1.0, read_timeout=0.4)


def a_destination(sandbox: XSandbox, token: str | None = None) -> Destination:
    token = token or sandbox.issue_token(USER)[0]
    return Destination(
        account_id="oakfield-x",
        platform="x",
        external_id=USER,
        base_url=sandbox.base_url,
        credentials=Credentials(token),
        settings={"web_url": sandbox.base_url},
    )


def jpeg(n: int = 0) -> Media:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (n * 40 % 256, 90, 160)).save(buf, "JPEG")
    return Media(photo_id=f"photo-{n}", data=buf.getvalue())


def a_caption(extra: str = "") -> str:
    return f"Sports day at Oakfield, heat {next(_captions)}{extra}"


def test_one_image_is_published_and_live(sandbox, adapter):
    dest, caption = a_destination(sandbox), a_caption()

    post = adapter.publish(dest, caption, [jpeg()])

    [live] = sandbox.live()
    assert live["id"] == post.external_id and live["text"] == caption
    assert len(live["media_ids"]) == 1
    assert post.url == f"{sandbox.base_url}/i/status/{post.external_id}"
    assert httpx.get(post.url).status_code == 200


def test_four_images_go_in_one_post(sandbox, adapter):
    post = adapter.publish(
        a_destination(sandbox), a_caption(), [jpeg(n) for n in range(4)]
    )

    [live] = sandbox.live()
    assert live["id"] == post.external_id and len(live["media_ids"]) == 4


@pytest.mark.parametrize("count", [0, 5])
def test_a_post_with_no_or_more_than_four_images_is_refused_before_any_request(
    sandbox, adapter, count
):
    with pytest.raises(PermanentError) as refused:
        adapter.publish(
            a_destination(sandbox), a_caption(), [jpeg(n) for n in range(count)]
        )

    assert refused.value.code == "image_count"
    assert sandbox.state.requests == [] and sandbox.live() == []


def test_an_image_type_x_does_not_take_is_refused_before_any_request(sandbox, adapter):
    gif = Media(photo_id="p", data=b"GIF89a...", content_type="image/gif")

    with pytest.raises(PermanentError):
        adapter.publish(a_destination(sandbox), a_caption(), [gif])

    assert sandbox.state.requests == []


def test_an_expired_access_token_is_an_auth_error(sandbox, adapter):
    expired = sandbox.issue_token(USER, lifetime=-1)[0]

    with pytest.raises(AuthError) as refused:
        adapter.publish(a_destination(sandbox, expired), a_caption(), [jpeg()])

    assert refused.value.status == 401
    assert expired not in str(refused.value)
    assert sandbox.live() == []


def test_the_expired_token_answer_is_an_auth_error(sandbox, adapter):
    sandbox.inject("expired_token", "POST /2/tweets")

    with pytest.raises(AuthError):
        adapter.publish(a_destination(sandbox), a_caption(), [jpeg()])


def test_429_is_rate_limited_until_the_reset_x_gives(sandbox, adapter):
    sandbox.inject("rate_limited", "POST /2/tweets")

    with pytest.raises(RateLimitedError) as limited:
        adapter.publish(a_destination(sandbox), a_caption(), [jpeg()])

    reset = datetime.fromtimestamp(sandbox.last_reset_header, UTC)
    assert limited.value.retry_at == reset
    assert reset > datetime.now(UTC) + timedelta(minutes=10)


def test_a_5xx_on_the_post_is_ambiguous(sandbox, adapter):
    sandbox.inject("server_error", "POST /2/tweets")

    with pytest.raises(AmbiguousError) as unsure:
        adapter.publish(a_destination(sandbox), a_caption(), [jpeg()])

    assert unsure.value.status == 503


def test_a_5xx_on_the_upload_is_transient(sandbox, adapter):
    sandbox.inject("server_error", "POST /2/media/upload")

    with pytest.raises(TransientError):
        adapter.publish(a_destination(sandbox), a_caption(), [jpeg()])

    assert ("POST", "/2/tweets") not in sandbox.state.requests


def test_a_timeout_on_the_upload_is_transient_and_nothing_is_posted(sandbox, adapter):
    sandbox.inject("timeout", "POST /2/media/upload")

    with pytest.raises(TransientError):
        adapter.publish(a_destination(sandbox), a_caption(), [jpeg()])

    assert sandbox.live() == []


def test_a_timeout_on_the_post_is_ambiguous_and_reconciled(sandbox, adapter):
    dest, caption, start = a_destination(sandbox), a_caption(), datetime.now(UTC)
    sandbox.inject("timeout", "POST /2/tweets")

    with pytest.raises(AmbiguousError):
        adapter.publish(dest, caption, [jpeg(), jpeg(1)])

    [live] = wait_for(sandbox.live, 5.0, interval=0.02)  # the held post lands
    ours = find_ours(adapter.recent(dest, start - timedelta(seconds=5)), caption, 2)
    assert ours is not None and ours.external_id == live["id"]


def test_a_dropped_connection_after_the_post_leaves_exactly_one_post_we_find(
    sandbox, adapter
):
    dest, start = a_destination(sandbox), datetime.now(UTC) - timedelta(seconds=5)
    caption = a_caption(" & friends, see https://oakfield.sch.uk/news <3")
    sandbox.inject("drop_after", "POST /2/tweets")

    with pytest.raises(AmbiguousError) as unsure:
        adapter.publish(dest, caption, [jpeg()])

    assert unsure.value.code == "no_answer"
    [live] = sandbox.live()
    recent = adapter.recent(dest, start)
    ours = find_ours(recent, caption, 1)
    assert ours is not None and ours.external_id == live["id"]
    assert (
        ours.text == caption and ours.url == f"{sandbox.base_url}/i/status/{live['id']}"
    )


def test_a_malformed_answer_to_the_post_is_ambiguous_never_a_success(sandbox, adapter):
    sandbox.inject("malformed", "POST /2/tweets")

    with pytest.raises(AmbiguousError) as unsure:
        adapter.publish(a_destination(sandbox), a_caption(), [jpeg()])

    assert unsure.value.code == "malformed"


def test_a_malformed_answer_to_a_read_is_transient(sandbox, adapter):
    dest = a_destination(sandbox)
    post = adapter.publish(dest, a_caption(), [jpeg()])
    sandbox.inject("malformed", "GET /2/tweets/")

    with pytest.raises(TransientError):
        adapter.lookup(dest, post.external_id)


def test_refused_content_is_permanent_with_x_s_message(sandbox, adapter):
    sandbox.inject("refuse", "POST /2/tweets")

    with pytest.raises(PermanentError) as refused:
        adapter.publish(a_destination(sandbox), a_caption(), [jpeg()])

    assert refused.value.status == 403
    assert refused.value.message == (
        "You are not allowed to create a Tweet with duplicate content."
    )


def test_posting_the_same_text_twice_is_refused_by_x(sandbox, adapter):
    dest, caption = a_destination(sandbox), a_caption()
    adapter.publish(dest, caption, [jpeg()])

    with pytest.raises(PermanentError):
        adapter.publish(dest, caption, [jpeg(1)])

    assert len(sandbox.live()) == 1


def test_an_unreachable_x_is_transient(adapter):
    dest = Destination("a", "x", USER, "http://127.0.0.1:9", Credentials("token"))

    with pytest.raises(TransientError) as unreachable:
        adapter.publish(dest, a_caption(), [jpeg()])

    assert unreachable.value.code == "unreachable"


def test_a_post_is_looked_up_deleted_and_a_second_delete_is_fine(sandbox, adapter):
    dest = a_destination(sandbox)
    post = adapter.publish(dest, a_caption(), [jpeg()])

    found = adapter.lookup(dest, post.external_id)
    adapter.delete(dest, post.external_id)
    adapter.delete(dest, post.external_id)

    assert found == post
    assert adapter.lookup(dest, post.external_id) is None
    assert sandbox.live() == []


def test_recent_lists_the_account_s_posts_since_a_time_newest_first(sandbox, adapter):
    dest = a_destination(sandbox)
    first = adapter.publish(dest, a_caption(), [jpeg()])
    second = adapter.publish(dest, a_caption(), [jpeg(), jpeg(1), jpeg(2)])

    recent = adapter.recent(dest, datetime.now(UTC) - timedelta(minutes=1))
    later = adapter.recent(dest, datetime.now(UTC) + timedelta(minutes=1))

    assert [p.external_id for p in recent] == [second.external_id, first.external_id]
    assert [p.media_count for p in recent] == [3, 1]
    assert all(p.created_at is not None for p in recent)
    assert later == []


def test_a_5xx_on_a_delete_is_transient(sandbox, adapter):
    dest = a_destination(sandbox)
    post = adapter.publish(dest, a_caption(), [jpeg()])
    sandbox.inject("server_error", "DELETE /2/tweets/")

    with pytest.raises(TransientError):
        adapter.delete(dest, post.external_id)

    assert len(sandbox.live()) == 1


# -- OAuth 2.0 with PKCE ---------------------------------------------------------------


def authorise(sandbox: XSandbox, verifier: str) -> str:
    url = x.authorize_url(
        DEMO_CLIENT_ID,
        REDIRECT,
        "state-123",
        verifier,
        endpoint=f"{sandbox.base_url}/i/oauth2/authorize",
    )
    answer = httpx.get(url)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    query = parse_qs(location.query)
    assert location.geturl().startswith(REDIRECT) and query["state"] == ["state-123"]
    return query["code"][0]


def test_the_authorisation_url_asks_for_the_scopes_and_an_s256_challenge():
    url = x.authorize_url("client", REDIRECT, "s", x.new_code_verifier())

    query = parse_qs(urlsplit(url).query)
    assert url.startswith("https://x.com/i/oauth2/authorize?")
    assert query["scope"] == [" ".join(x.SCOPES)]
    assert "media.write" in x.SCOPES and "offline.access" in x.SCOPES
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]


def test_a_code_with_its_verifier_gives_tokens_that_publish(sandbox, adapter):
    verifier = x.new_code_verifier()
    code = authorise(sandbox, verifier)
    at = datetime(2030, 1, 1, tzinfo=UTC)

    creds = x.exchange_code(
        DEMO_CLIENT_ID,
        None,
        code,
        REDIRECT,
        verifier,
        endpoint=f"{sandbox.base_url}/2/oauth2/token",
        now=lambda: at,
    )

    assert creds.refresh_token and creds.expires_at == at + timedelta(hours=2)
    assert set(creds.scopes) == set(x.SCOPES)
    adapter.publish(a_destination(sandbox, creds.access_token), a_caption(), [jpeg()])
    assert len(sandbox.live()) == 1


def test_a_wrong_verifier_is_refused(sandbox):
    code = authorise(sandbox, x.new_code_verifier())

    with pytest.raises(AuthError) as refused:
        x.exchange_code(
            DEMO_CLIENT_ID,
            None,
            code,
            REDIRECT,
            x.new_code_verifier(),
            endpoint=f"{sandbox.base_url}/2/oauth2/token",
        )

    assert refused.value.code == "invalid_request"


def test_a_refresh_rotates_and_the_old_refresh_token_is_refused(sandbox, adapter):
    endpoint = f"{sandbox.base_url}/2/oauth2/token"
    _, first = sandbox.issue_token(USER)

    renewed = x.refresh(DEMO_CLIENT_ID, None, first, endpoint=endpoint)
    with pytest.raises(AuthError) as reused:
        x.refresh(DEMO_CLIENT_ID, None, first, endpoint=endpoint)
    again = x.refresh(
        DEMO_CLIENT_ID, None, renewed.refresh_token or "", endpoint=endpoint
    )

    assert renewed.refresh_token not in (None, first)
    assert reused.value.code == "invalid_request" and first not in str(reused.value)
    assert again.refresh_token not in (None, renewed.refresh_token)
    adapter.publish(a_destination(sandbox, again.access_token), a_caption(), [jpeg()])


def test_an_expired_access_token_is_refreshed_into_a_working_one(sandbox, adapter):
    expired, refresh_token = sandbox.issue_token(USER, lifetime=-1)
    endpoint = f"{sandbox.base_url}/2/oauth2/token"
    with pytest.raises(AuthError):
        adapter.lookup(a_destination(sandbox, expired), "1")

    renewed = x.refresh(DEMO_CLIENT_ID, None, refresh_token, endpoint=endpoint)

    assert adapter.lookup(a_destination(sandbox, renewed.access_token), "1") is None


def test_a_token_endpoint_failure_is_transient(sandbox):
    sandbox.inject("server_error", "POST /2/oauth2/token")
    endpoint = f"{sandbox.base_url}/2/oauth2/token"

    with pytest.raises(TransientError):
        x.refresh(DEMO_CLIENT_ID, None, sandbox.issue_token(USER)[1], endpoint=endpoint)


def test_a_confidential_client_authenticates_with_basic(sandbox):
    box = XSandbox(client_id="conf", client_secret="s3cret")
    box.add_user(USER, "oakfield_school")
    running = box.serve()
    try:
        endpoint = f"{box.base_url}/2/oauth2/token"
        _, token = box.issue_token(USER)
        renewed = x.refresh("conf", "s3cret", token, endpoint=endpoint)
        with pytest.raises(AuthError) as refused:
            x.refresh("conf", "wrong", renewed.refresh_token or "", endpoint=endpoint)
    finally:
        running.stop()

    assert refused.value.code == "unauthorized_client"


def test_the_cost_of_a_post_is_higher_with_a_link():
    assert x.cost_usd("Sports day!") == Decimal("0.015")
    assert x.cost_usd("Sports day! https://oakfield.sch.uk/news") == Decimal("0.200")
    assert "0.200" in x.cost_note("see oakfield.sch.uk")


def test_a_rate_limited_token_endpoint_is_rate_limited(sandbox):
    sandbox.inject("rate_limited", "POST /2/oauth2/token")
    endpoint = f"{sandbox.base_url}/2/oauth2/token"

    with pytest.raises(RateLimitedError) as limited:
        x.refresh(DEMO_CLIENT_ID, None, sandbox.issue_token(USER)[1], endpoint=endpoint)

    assert limited.value.retry_at == datetime.fromtimestamp(
        sandbox.last_reset_header, UTC
    )


def test_the_sandbox_page_shows_each_post_with_its_images(sandbox, adapter):
    caption = a_caption(" <b>not bold</b>")
    adapter.publish(a_destination(sandbox), caption, [jpeg(), jpeg(1)])
    [live] = sandbox.live()

    index = httpx.get(f"{sandbox.base_url}/").text
    image = httpx.get(f"{sandbox.base_url}/_sandbox/media/{live['media_ids'][1]}")

    assert "&lt;b&gt;not bold&lt;/b&gt;" in index and "<b>not" not in index
    assert index.count("<img ") == 2
    assert (
        image.headers["content-type"] == "image/jpeg" and image.content == jpeg(1).data
    )


# -- recent: every page back to `since` ---------------------------------------------


def paged(max_pages: int = 50) -> x.XAdapter:
    return x.XAdapter(
        connect_timeout=1.0,
        read_timeout=1.0,
        recent_page_size=25,
        recent_max_pages=max_pages,
    )


def post_many(sandbox: XSandbox, dest: Destination, count: int, text: str) -> None:
    """Other text posts on the account, over the API in one connection."""
    assert dest.credentials is not None
    auth = {"Authorization": f"Bearer {dest.credentials.access_token}"}
    with httpx.Client(base_url=sandbox.base_url, headers=auth) as client:
        for n in range(count):
            answer = client.post("/2/tweets", json={"text": f"{text} {n}"})
            assert answer.status_code == 201


def backdate(sandbox: XSandbox, text: str, hours: float = 1.0) -> None:
    with sandbox.state.lock:
        for post in sandbox.state.posts.values():
            if str(post["text"]).startswith(text):
                post["created"] -= hours * 3600


def timeline_reads(sandbox: XSandbox) -> int:
    with sandbox.state.lock:
        path = ("GET", f"/2/users/{USER}/tweets")
        return sum(1 for call in sandbox.state.requests if call == path)


def test_recent_reads_every_page_back_to_our_post_among_many(sandbox):
    adapter, dest, caption = paged(), a_destination(sandbox), a_caption()
    post_many(sandbox, dest, 30, "Last term")
    backdate(sandbox, "Last term")
    since = datetime.now(UTC) - timedelta(minutes=1)
    sandbox.inject("drop_after", "POST /2/tweets")
    with pytest.raises(AmbiguousError):
        adapter.publish(dest, caption, [jpeg(), jpeg(1)])
    post_many(sandbox, dest, 120, "Later that day")
    sandbox.state.requests.clear()

    recent = adapter.recent(dest, since)

    ours = find_ours(recent, caption, 2)
    assert ours is not None and recent[-1] == ours  # made first: on the last page
    assert len(recent) == 121 and len({p.external_id for p in recent}) == 121
    assert not any(p.text.startswith("Last term") for p in recent)
    assert timeline_reads(sandbox) == 5  # 121 posts since `since`, 25 a page


def test_recent_past_the_page_bound_is_incomplete_not_partial(sandbox):
    adapter, dest = paged(max_pages=2), a_destination(sandbox)
    post_many(sandbox, dest, 60, "Sports day")
    sandbox.state.requests.clear()

    with pytest.raises(TransientError) as raised:
        adapter.recent(dest, datetime.now(UTC) - timedelta(minutes=5))

    assert raised.value.code == "recent_incomplete"
    assert timeline_reads(sandbox) == 2


def test_a_timeline_that_ends_at_x_s_reach_is_incomplete(sandbox):
    """X reaches only the 3,200 newest posts: a timeline read to that end may have
    lost ours past it. (So many posts are put in the sandbox's store directly.)"""
    dest, now = a_destination(sandbox), time.time()
    for n in range(x.TIMELINE_REACH + 10):
        post_id = str(1_870_000_000_000_000_000 + n)
        sandbox.keep(
            post_id,
            {
                "author_id": USER,
                "username": "oakfield_school",
                "text": f"Post {n}",
                "media_ids": [],
                "media_keys": [],
                "created": now - 1 + n / 10_000,
                "photo_link": "",
                "links": {},
            },
        )

    with pytest.raises(TransientError) as raised:
        x.XAdapter().recent(dest, datetime.now(UTC) - timedelta(minutes=5))

    assert raised.value.code == "recent_incomplete"


def test_the_sandbox_pages_the_timeline_by_token_as_x_does(sandbox):
    dest = a_destination(sandbox)
    post_many(sandbox, dest, 12, "Sports day")
    url = f"{sandbox.base_url}/2/users/{USER}/tweets"
    assert dest.credentials is not None
    auth = {"Authorization": f"Bearer {dest.credentials.access_token}"}

    first = httpx.get(url, headers=auth).json()
    token = first["meta"]["next_token"]
    rest = httpx.get(url, params={"pagination_token": token}, headers=auth).json()
    bad = httpx.get(url, params={"pagination_token": "not a token!"}, headers=auth)
    too_many = httpx.get(url, params={"max_results": "101"}, headers=auth)

    assert len(first["data"]) == 10  # X's default max_results
    assert len(rest["data"]) == 2 and "next_token" not in rest["meta"]
    assert not {p["id"] for p in first["data"]} & {p["id"] for p in rest["data"]}
    assert bad.status_code == 400 and bad.json()["type"].endswith("invalid-request")
    assert too_many.status_code == 400
