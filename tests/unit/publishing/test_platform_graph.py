"""The Facebook Page and Instagram adapters and Facebook Login for Pages against the
Graph sandbox over real HTTP: publish, every answer class, delete, lookup,
reconciliation after a lost answer, and the OAuth flow to a verified Page token."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from PIL import Image

from safepost.sandboxes.graph import GraphSandbox
from services.publishing.platforms import graph, paging
from services.publishing.platforms.base import (
    AmbiguousError,
    AuthError,
    Credentials,
    Destination,
    Media,
    PermanentError,
    PlatformError,
    RateLimitedError,
    TransientError,
    find_ours,
)
from services.publishing.platforms.facebook import FacebookPageAdapter
from services.publishing.platforms.instagram import InstagramAdapter

PAGE, PAGE_TOKEN = "104000000000001", "EAAPageOakfield0123456789"
OTHER, OTHER_TOKEN = "104000000000002", "EAAPageRiverside012345678"
IG_USER = "17841400000000001"
NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
REDIRECT = "https://safepost.example/publishing/oauth/facebook"
_names = itertools.count(1)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[GraphSandbox]:
    box = GraphSandbox()
    box.timeout_seconds = 0.6
    box.add_page(PAGE, "Oakfield Primary", PAGE_TOKEN, ig_user_id=IG_USER)
    box.add_page(OTHER, "Riverside Primary", OTHER_TOKEN)
    running = box.serve()
    yield box
    running.stop()


@pytest.fixture(autouse=True)
def clean(sandbox: GraphSandbox) -> None:
    httpx.post(f"{sandbox.base_url}/_sandbox/reset")


@pytest.fixture
def facebook() -> FacebookPageAdapter:
    return FacebookPageAdapter(connect_timeout=1.0, read_timeout=0.3, now=lambda: NOW)


@pytest.fixture
def instagram() -> InstagramAdapter:
    return InstagramAdapter(
        connect_timeout=1.0,
        read_timeout=0.3,
        poll_interval=0.01,
        max_polls=5,
        now=lambda: NOW,
    )


def a_jpeg(shade: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (shade, 90, 160)).save(buffer, "JPEG")
    return buffer.getvalue()


def images(sandbox: GraphSandbox, count: int, hosted: bool = True) -> list[Media]:
    media = []
    for index in range(count):
        data = a_jpeg(index * 40)
        url = (
            sandbox.host_media(f"redacted-{next(_names)}.jpg", data) if hosted else None
        )
        media.append(Media(photo_id=f"photo-{index}", data=data, url=url))
    return media


def a_page(sandbox: GraphSandbox, token: str | None = PAGE_TOKEN) -> Destination:
    return Destination(
        account_id="oakfield-facebook",
        platform="facebook",
        external_id=PAGE,
        base_url=sandbox.base_url,
        credentials=Credentials(token) if token else None,
        api_version="v26.0",
    )


def an_ig_account(sandbox: GraphSandbox, token: str = PAGE_TOKEN) -> Destination:
    return Destination(
        account_id="oakfield-instagram",
        platform="instagram",
        external_id=IG_USER,
        base_url=sandbox.base_url,
        credentials=Credentials(token),
    )


def posts(sandbox: GraphSandbox, platform: str) -> list[dict[str, object]]:
    return [p for p in sandbox.live() if p["platform"] == platform]


def an_app() -> graph.Api:
    return graph.Api(connect_timeout=1.0, read_timeout=1.0)


# -- Facebook Page ------------------------------------------------------------------


def test_one_image_becomes_one_page_post_with_that_image(sandbox, facebook):
    [photo] = images(sandbox, 1)

    live = facebook.publish(a_page(sandbox), "Sports day!", [photo])

    [post] = posts(sandbox, "facebook")
    assert live.external_id == post["id"] and live.external_id.startswith(f"{PAGE}_")
    assert live.url == post["permalink"]
    assert post["text"] == "Sports day!" and post["account"] == PAGE
    assert sandbox.image_bytes(live.external_id) == [photo.data]
    assert sandbox.photos.keys() == {
        pid for pid, p in sandbox.photos.items() if p.attached
    }


def test_several_images_are_attached_to_one_post_in_order(sandbox, facebook):
    album = images(sandbox, 3)

    live = facebook.publish(a_page(sandbox), "Our new library", album)

    [post] = posts(sandbox, "facebook")
    assert post["media_count"] == 3
    assert sandbox.image_bytes(live.external_id) == [m.data for m in album]


def test_an_expired_token_is_an_auth_error_and_the_staged_photos_are_removed(
    sandbox, facebook
):
    sandbox.inject("expired_token", "POST /feed$")

    with pytest.raises(AuthError) as raised:
        facebook.publish(a_page(sandbox), "Trip", images(sandbox, 2))

    assert raised.value.code == "190/463"
    assert posts(sandbox, "facebook") == [] and not any(
        p.page_id == PAGE for p in sandbox.photos.values()
    )


def test_a_user_token_on_a_page_call_is_an_auth_error(sandbox, facebook):
    user_token = graph.exchange_code(
        sandbox.app_id,
        sandbox.app_secret,
        a_code(sandbox),
        REDIRECT,
        api=an_api(sandbox),
    ).access_token

    with pytest.raises(AuthError) as raised:
        facebook.publish(a_page(sandbox, user_token), "Trip", images(sandbox, 1))

    assert raised.value.code == "210"


def test_an_account_without_a_token_is_an_auth_error_before_any_call(sandbox, facebook):
    with pytest.raises(AuthError):
        facebook.publish(a_page(sandbox, token=None), "Trip", images(sandbox, 1))

    assert sandbox.state.requests == []


def test_a_page_rate_limit_retries_when_the_usage_header_says(sandbox, facebook):
    sandbox.inject("rate_limited", "POST /photos$")

    with pytest.raises(RateLimitedError) as raised:
        facebook.publish(a_page(sandbox), "Trip", images(sandbox, 1))

    assert raised.value.code == "32"
    assert raised.value.retry_at == NOW + timedelta(minutes=sandbox.regain_minutes)


def test_a_server_error_on_the_post_is_ambiguous_and_keeps_the_staged_photos(
    sandbox, facebook
):
    sandbox.inject("server_error", "POST /feed$")

    with pytest.raises(AmbiguousError):
        facebook.publish(a_page(sandbox), "Trip", images(sandbox, 2))

    assert len([p for p in sandbox.photos.values() if p.page_id == PAGE]) == 2


def test_a_server_error_on_a_read_is_transient(sandbox, facebook):
    live = facebook.publish(a_page(sandbox), "Trip", images(sandbox, 1))
    sandbox.inject("server_error", "GET /")

    with pytest.raises(TransientError):
        facebook.lookup(a_page(sandbox), live.external_id)


def test_a_refused_post_is_permanent_with_facebooks_message(sandbox, facebook):
    sandbox.inject("refuse", "POST /feed$")

    with pytest.raises(PermanentError) as raised:
        facebook.publish(a_page(sandbox), "Trip", images(sandbox, 2))

    assert raised.value.message == "This content can't be shared on Facebook."
    assert posts(sandbox, "facebook") == [] and not sandbox.photos


def test_a_refused_photo_removes_the_photos_staged_before_it(sandbox, facebook):
    not_an_image = Media("photo-2", b"these bytes are not an image")

    with pytest.raises(PermanentError) as raised:
        facebook.publish(a_page(sandbox), "Trip", [*images(sandbox, 1), not_an_image])

    assert raised.value.code == "324"
    assert not sandbox.photos and posts(sandbox, "facebook") == []


def test_a_timeout_on_the_post_is_ambiguous_and_the_post_may_exist(sandbox, facebook):
    sandbox.inject("timeout", "POST /feed$")

    with pytest.raises(AmbiguousError):
        facebook.publish(a_page(sandbox), "Trip", images(sandbox, 1))

    assert len(posts(sandbox, "facebook")) == 1


def test_a_dropped_answer_is_reconciled_from_the_recent_posts(sandbox, facebook):
    album = images(sandbox, 2)
    sandbox.inject("drop_after", "POST /feed$")
    started = datetime.now(UTC) - timedelta(seconds=1)

    with pytest.raises(AmbiguousError) as raised:
        facebook.publish(a_page(sandbox), "Harvest festival", album)
    recent = facebook.recent(a_page(sandbox), started)

    assert raised.value.code == "no_answer"
    [post] = posts(sandbox, "facebook")
    ours = find_ours(recent, "Harvest festival", 2)
    assert ours is not None and ours.external_id == post["id"]
    assert ours.url == post["permalink"] and ours.media_count == 2


def test_a_malformed_answer_is_ambiguous_on_the_post_and_transient_on_a_read(
    sandbox, facebook
):
    sandbox.inject("malformed", "POST /feed$")
    with pytest.raises(AmbiguousError):
        facebook.publish(a_page(sandbox), "Trip", images(sandbox, 1))
    sandbox.inject("malformed", "GET /.*/feed$")

    with pytest.raises(TransientError):
        facebook.recent(a_page(sandbox), datetime.now(UTC) - timedelta(minutes=5))


def test_recent_lists_the_pages_posts_newest_first_with_their_image_counts(
    sandbox, facebook
):
    started = datetime.now(UTC) - timedelta(seconds=1)
    first = facebook.publish(a_page(sandbox), "One", images(sandbox, 1))
    second = facebook.publish(a_page(sandbox), "Three", images(sandbox, 3))

    recent = facebook.recent(a_page(sandbox), started)

    assert {(p.external_id, p.text, p.media_count) for p in recent} == {
        (first.external_id, "One", 1),
        (second.external_id, "Three", 3),
    }
    assert all(
        p.created_at is not None and p.created_at >= started.replace(microsecond=0)
        for p in recent
    )


def test_a_deleted_post_is_gone_and_deleting_it_again_is_fine(sandbox, facebook):
    live = facebook.publish(a_page(sandbox), "Trip", images(sandbox, 1))
    assert facebook.lookup(a_page(sandbox), live.external_id) == live

    facebook.delete(a_page(sandbox), live.external_id)
    facebook.delete(a_page(sandbox), live.external_id)

    assert posts(sandbox, "facebook") == []
    assert facebook.lookup(a_page(sandbox), live.external_id) is None


def test_another_pages_token_cannot_delete_the_post(sandbox, facebook):
    live = facebook.publish(a_page(sandbox), "Trip", images(sandbox, 1))

    with pytest.raises(AuthError):
        facebook.delete(a_page(sandbox, OTHER_TOKEN), live.external_id)

    assert len(posts(sandbox, "facebook")) == 1


# -- Instagram ------------------------------------------------------------------------


def test_one_image_is_fetched_by_instagram_and_published(sandbox, instagram):
    [photo] = images(sandbox, 1)

    live = instagram.publish(an_ig_account(sandbox), "Sports day!", [photo])

    [post] = posts(sandbox, "instagram")
    assert (live.external_id, live.url) == (post["id"], post["permalink"])
    assert post["text"] == "Sports day!" and post["media_count"] == 1
    assert sandbox.image_bytes(live.external_id) == [photo.data]


def test_several_images_become_one_carousel(sandbox, instagram):
    album = images(sandbox, 3)

    live = instagram.publish(an_ig_account(sandbox), "Library", album)

    [post] = posts(sandbox, "instagram")
    assert post["media_count"] == 3
    assert sandbox.image_bytes(live.external_id) == [m.data for m in album]


def test_media_without_a_signed_url_is_refused_before_any_call(sandbox, instagram):
    with pytest.raises(PermanentError) as raised:
        instagram.publish(
            an_ig_account(sandbox), "Trip", images(sandbox, 2, hosted=False)
        )

    assert raised.value.code == "no_media_url" and sandbox.state.requests == []


def test_more_than_ten_images_are_refused(sandbox, instagram):
    with pytest.raises(PermanentError):
        instagram.publish(an_ig_account(sandbox), "Trip", images(sandbox, 11))


def test_an_image_url_that_does_not_answer_leaves_the_container_in_error(
    sandbox, instagram
):
    broken = Media("p1", a_jpeg(), url=f"{sandbox.base_url}/_sandbox/media/gone.jpg")

    with pytest.raises(PermanentError) as raised:
        instagram.publish(an_ig_account(sandbox), "Trip", [broken, *images(sandbox, 1)])

    assert raised.value.code == "container_error" and "2207052" in raised.value.message
    assert posts(sandbox, "instagram") == []


def test_a_container_that_never_finishes_is_transient_and_nothing_is_published(
    sandbox, instagram, monkeypatch
):
    monkeypatch.setattr(sandbox, "processing_polls", 50)

    with pytest.raises(TransientError) as raised:
        instagram.publish(an_ig_account(sandbox), "Trip", images(sandbox, 1))

    assert raised.value.code == "container_not_ready"
    assert posts(sandbox, "instagram") == []
    assert not any(
        m == "POST" and p.endswith("/media_publish") for m, p in sandbox.state.requests
    )


@pytest.mark.parametrize(
    ("fault", "match", "error", "code"),
    [
        ("expired_token", "POST /media$", AuthError, "190/463"),
        ("rate_limited", "POST /media_publish$", RateLimitedError, "4"),
        ("server_error", "POST /media$", TransientError, "2"),
        ("server_error", "POST /media_publish$", AmbiguousError, "2"),
        ("refuse", "POST /media$", PermanentError, "36003/2207009"),
        ("malformed", "GET /v26.0/\\d+$", TransientError, "malformed"),
    ],
)
def test_each_instagram_answer_is_classified(
    sandbox, instagram, fault, match, error, code
):
    sandbox.inject(fault, match)

    with pytest.raises(PlatformError) as raised:
        instagram.publish(an_ig_account(sandbox), "Trip", images(sandbox, 1))

    assert type(raised.value) is error and raised.value.code == code
    if error is RateLimitedError:
        assert raised.value.retry_at == NOW + timedelta(minutes=sandbox.regain_minutes)
    assert posts(sandbox, "instagram") == []  # these faults answer before acting


def test_a_lost_publish_answer_is_reconciled_from_the_recent_media(sandbox, instagram):
    started = datetime.now(UTC) - timedelta(seconds=1)
    instagram.publish(an_ig_account(sandbox), "Earlier post", images(sandbox, 1))
    sandbox.inject("drop_after", "POST /media_publish$")

    with pytest.raises(AmbiguousError):
        instagram.publish(
            an_ig_account(sandbox), "Harvest  festival", images(sandbox, 2)
        )
    recent = instagram.recent(an_ig_account(sandbox), started)

    assert len(posts(sandbox, "instagram")) == 2
    ours = find_ours(recent, "Harvest festival", 2)
    assert ours is not None and ours.media_count == 2
    assert ours.external_id in {p["id"] for p in posts(sandbox, "instagram")}
    assert find_ours(recent, "Harvest festival", 1) is None


def test_a_timeout_on_publish_is_ambiguous_and_the_post_exists(sandbox, instagram):
    sandbox.inject("timeout", "POST /media_publish$")

    with pytest.raises(AmbiguousError):
        instagram.publish(an_ig_account(sandbox), "Trip", images(sandbox, 1))

    assert len(posts(sandbox, "instagram")) == 1


def test_an_instagram_post_is_deleted_once_and_then_counts_as_deleted(
    sandbox, instagram
):
    live = instagram.publish(an_ig_account(sandbox), "Trip", images(sandbox, 2))
    assert instagram.lookup(an_ig_account(sandbox), live.external_id) == live

    instagram.delete(an_ig_account(sandbox), live.external_id)
    instagram.delete(an_ig_account(sandbox), live.external_id)

    assert posts(sandbox, "instagram") == []
    assert instagram.lookup(an_ig_account(sandbox), live.external_id) is None


# -- Facebook Login for Pages -------------------------------------------------------


def an_api(sandbox: GraphSandbox) -> graph.Api:
    return graph.Api(
        base_url=sandbox.base_url,
        dialog_url=sandbox.base_url,
        connect_timeout=1.0,
        read_timeout=2.0,
    )


def a_code(sandbox: GraphSandbox, state: str = "state-123") -> str:
    url = graph.authorize_url(sandbox.app_id, REDIRECT, state, api=an_api(sandbox))
    answer = httpx.get(url, follow_redirects=False)
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    return query["code"][0]


def test_the_login_dialog_sends_the_person_back_with_a_code_and_our_state(sandbox):
    url = graph.authorize_url(
        sandbox.app_id, REDIRECT, "state-xyz", api=an_api(sandbox)
    )

    answer = httpx.get(url, follow_redirects=False)

    assert answer.status_code == 302
    back = urlsplit(answer.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == REDIRECT
    query = parse_qs(back.query)
    assert query["state"] == ["state-xyz"] and query["code"][0]
    asked = parse_qs(urlsplit(url).query)["scope"][0].split(",")
    assert "pages_manage_posts" in asked and "instagram_manage_contents" in asked


def test_a_code_becomes_a_long_lived_user_token_then_a_verified_page_token(sandbox):
    api = an_api(sandbox)
    before = datetime.now(UTC)

    user = graph.exchange_code(
        sandbox.app_id, sandbox.app_secret, a_code(sandbox), REDIRECT, api=api
    )
    pages = {p.page_id: p for p in graph.page_tokens(user.access_token, api=api)}
    page = pages[PAGE]
    info = graph.verify_page_token(
        PAGE, page.access_token, sandbox.app_token, require_scopes=graph.SCOPES, api=api
    )

    assert user.expires_at is not None and user.expires_at > before + timedelta(days=50)
    assert page.access_token == PAGE_TOKEN and page.name == "Oakfield Primary"
    assert "CREATE_CONTENT" in page.tasks
    assert graph.instagram_account(PAGE, page.access_token, api=api) == IG_USER
    assert graph.instagram_account(OTHER, pages[OTHER].access_token, api=api) is None
    assert info.page_id == PAGE and info.expires_at is None
    assert PAGE_TOKEN not in repr(page) and user.access_token not in repr(user)


def test_verifying_refuses_a_user_token_and_another_pages_token(sandbox):
    api = an_api(sandbox)
    user = graph.exchange_code(
        sandbox.app_id, sandbox.app_secret, a_code(sandbox), REDIRECT, api=api
    )

    with pytest.raises(AuthError) as as_user:
        graph.verify_page_token(PAGE, user.access_token, sandbox.app_token, api=api)
    with pytest.raises(AuthError) as as_other:
        graph.verify_page_token(PAGE, OTHER_TOKEN, sandbox.app_token, api=api)
    with pytest.raises(AuthError):
        graph.verify_page_token(PAGE, "EAAnonsense", sandbox.app_token, api=api)

    assert as_user.value.code == as_other.value.code == "not_page_token"


def test_a_code_is_used_once(sandbox):
    api, code = an_api(sandbox), a_code(sandbox)
    graph.exchange_code(sandbox.app_id, sandbox.app_secret, code, REDIRECT, api=api)

    with pytest.raises(PermanentError) as raised:
        graph.exchange_code(sandbox.app_id, sandbox.app_secret, code, REDIRECT, api=api)

    assert raised.value.code == "100/36009"


def test_a_failing_token_endpoint_is_transient_and_a_wrong_secret_is_refused(sandbox):
    api, code = an_api(sandbox), a_code(sandbox)
    sandbox.inject("server_error", "POST /oauth/access_token$")

    with pytest.raises(TransientError):
        graph.exchange_code(sandbox.app_id, sandbox.app_secret, code, REDIRECT, api=api)
    with pytest.raises(PlatformError) as raised:
        graph.exchange_code(sandbox.app_id, "wrong", a_code(sandbox), REDIRECT, api=api)

    assert raised.value.code == "1" and "secret" in raised.value.message


def test_a_short_lived_user_token_gives_page_tokens_that_expire(sandbox):
    api = an_api(sandbox)
    short = sandbox_short_lived_token(sandbox)

    [page] = [p for p in graph.page_tokens(short, api=api) if p.page_id == PAGE]
    info = graph.verify_page_token(PAGE, page.access_token, sandbox.app_token, api=api)

    assert page.access_token != PAGE_TOKEN
    assert info.expires_at is not None and info.expires_at < datetime.now(
        UTC
    ) + timedelta(days=1)


def sandbox_short_lived_token(sandbox: GraphSandbox) -> str:
    form = {
        "client_id": sandbox.app_id,
        "client_secret": sandbox.app_secret,
        "code": a_code(sandbox),
        "redirect_uri": REDIRECT,
    }
    answer = httpx.post(f"{sandbox.base_url}/v26.0/oauth/access_token", data=form)
    return str(answer.json()["access_token"])


# -- classification ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "create", "kind"),
    [
        ({"code": 190}, False, AuthError),
        ({"code": 102}, False, AuthError),
        ({"code": 100, "error_subcode": 467}, False, AuthError),
        ({"code": "190", "error_subcode": "463"}, True, AuthError),
        ({"code": 200}, True, AuthError),
        ({"code": 10}, True, AuthError),
        ({"code": 4}, True, RateLimitedError),
        ({"code": 17}, False, RateLimitedError),
        ({"code": 32}, True, RateLimitedError),
        ({"code": 613}, True, RateLimitedError),
        ({"code": 80001}, True, RateLimitedError),
        ({"code": 9, "error_subcode": 2207042}, True, RateLimitedError),
        ({"code": 4, "error_subcode": 2207051}, True, PermanentError),
        ({"code": 1}, False, TransientError),
        ({"code": 2}, True, AmbiguousError),
        ({"code": -1, "error_subcode": 2207001}, True, AmbiguousError),
        ({"code": 9007, "error_subcode": 2207027}, True, TransientError),
        ({"code": 368}, True, TransientError),
        ({"code": 100}, True, PermanentError),
        ({"code": 506}, True, PermanentError),
        ({"code": 36003, "error_subcode": 2207009}, True, PermanentError),
        ({"message": "no code"}, False, TransientError),
        ({"message": "no code"}, True, AmbiguousError),
    ],
)
def test_graph_errors_are_classified_by_their_integer_codes(error, create, kind):
    classified = graph.classify(error, 400, {}, create, now=lambda: NOW)

    assert type(classified) is kind


def test_the_regain_time_is_the_longest_the_usage_headers_give():
    headers = {
        "x-business-use-case-usage": '{"1": [{"type": "pages", '
        '"estimated_time_to_regain_access": 7}], "2": [{"type": "instagram", '
        '"estimated_time_to_regain_access": 3}]}',
        "x-app-usage": '{"call_count": 100, "total_time": 9, "total_cputime": 9}',
    }

    assert graph.regain_at(headers, now=lambda: NOW) == NOW + timedelta(minutes=7)
    assert graph.regain_at({"x-app-usage": "not json"}, now=lambda: NOW) is None


# -- recent: every page back to `since` ---------------------------------------------


def paged_facebook(max_pages: int = 50) -> FacebookPageAdapter:
    return FacebookPageAdapter(
        connect_timeout=1.0,
        read_timeout=1.0,
        now=lambda: NOW,
        recent_page_size=25,
        recent_max_pages=max_pages,
    )


def paged_instagram(max_pages: int = 50) -> InstagramAdapter:
    return InstagramAdapter(
        connect_timeout=1.0,
        read_timeout=1.0,
        poll_interval=0.0,
        max_polls=5,
        sleep=lambda _: None,
        now=lambda: NOW,
        recent_page_size=10,
        recent_max_pages=max_pages,
    )


def post_many(sandbox: GraphSandbox, platform: str, count: int, caption: str) -> None:
    """Other posts on the account, made over the Graph API in one connection: text
    posts on the Page, one-image media on Instagram."""
    auth = {"Authorization": f"Bearer {PAGE_TOKEN}"}
    base = f"{sandbox.base_url}/v26.0"
    [photo] = images(sandbox, 1)
    with httpx.Client(base_url=base, headers=auth) as client:
        for n in range(count):
            text = f"{caption} {n}"
            if platform == "facebook":
                client.post(f"/{PAGE}/feed", data={"message": text}).raise_for_status()
                continue
            form = {"image_url": photo.url or "", "caption": text}
            container = client.post(f"/{IG_USER}/media", data=form).json()["id"]
            while client.get(f"/{container}").json()["status_code"] != "FINISHED":
                pass
            form = {"creation_id": container}
            client.post(f"/{IG_USER}/media_publish", data=form).raise_for_status()


def backdate(sandbox: GraphSandbox, caption: str, hours: float = 1.0) -> None:
    """Posts made earlier than they were (the sandbox keeps creation times)."""
    with sandbox.state.lock:
        for post in sandbox.state.posts.values():
            if str(post["text"]).startswith(caption):
                post["created"] -= hours * 3600


def reads(sandbox: GraphSandbox, edge: str) -> int:
    path = f"/{graph.DEFAULT_VERSION}/{edge}"
    with sandbox.state.lock:
        return sum(1 for call in sandbox.state.requests if call == ("GET", path))


def test_instagram_recent_reads_every_page_back_to_our_post_among_many(sandbox):
    adapter, account = paged_instagram(), an_ig_account(sandbox)
    post_many(sandbox, "instagram", 15, "Last term")
    backdate(sandbox, "Last term")
    since = datetime.now(UTC) - timedelta(minutes=1)
    sandbox.inject("drop_after", "POST /media_publish$")
    with pytest.raises(AmbiguousError):
        adapter.publish(account, "Harvest festival", images(sandbox, 2))
    post_many(sandbox, "instagram", 40, "Later that day")
    sandbox.state.requests.clear()

    recent = adapter.recent(account, since)

    ours = find_ours(recent, "Harvest festival", 2)
    assert ours is not None and recent[-1] == ours  # made first: on the 5th page
    assert len(recent) == 41 and len({p.external_id for p in recent}) == 41
    assert not any(p.text.startswith("Last term") for p in recent)
    assert [p.created_at for p in recent] == sorted(
        (p.created_at for p in recent), reverse=True
    )
    # 56 media, 10 a page: the 5th page ends in last term's media, so it stops.
    assert reads(sandbox, f"{IG_USER}/media") == 5


def test_instagram_recent_past_the_page_bound_is_incomplete_not_partial(sandbox):
    adapter, account = paged_instagram(max_pages=2), an_ig_account(sandbox)
    post_many(sandbox, "instagram", 25, "Sports day")
    sandbox.state.requests.clear()

    with pytest.raises(TransientError) as raised:
        adapter.recent(account, datetime.now(UTC) - timedelta(minutes=5))

    assert raised.value.code == "recent_incomplete"
    assert reads(sandbox, f"{IG_USER}/media") == 2


def test_facebook_recent_reads_every_page_back_to_our_post_among_many(sandbox):
    adapter, page = paged_facebook(), a_page(sandbox)
    post_many(sandbox, "facebook", 30, "Last term")
    backdate(sandbox, "Last term")
    since = datetime.now(UTC) - timedelta(minutes=1)
    sandbox.inject("drop_after", "POST /feed$")
    with pytest.raises(AmbiguousError):
        adapter.publish(page, "Harvest festival", images(sandbox, 2))
    post_many(sandbox, "facebook", 120, "Later that day")
    sandbox.state.requests.clear()

    recent = adapter.recent(page, since)

    ours = find_ours(recent, "Harvest festival", 2)
    assert ours is not None and recent[-1] == ours
    assert len(recent) == 121 and len({p.external_id for p in recent}) == 121
    assert not any(p.text.startswith("Last term") for p in recent)
    assert reads(sandbox, f"{PAGE}/feed") == 5  # `since` keeps last term out


def test_facebook_recent_past_the_page_bound_is_incomplete_not_partial(sandbox):
    adapter, page = paged_facebook(max_pages=2), a_page(sandbox)
    post_many(sandbox, "facebook", 60, "Sports day")
    sandbox.state.requests.clear()

    with pytest.raises(TransientError) as raised:
        adapter.recent(page, datetime.now(UTC) - timedelta(minutes=5))

    assert raised.value.code == "recent_incomplete"
    assert reads(sandbox, f"{PAGE}/feed") == 2


def test_a_failing_page_fails_the_whole_recent_list(sandbox):
    adapter, page = paged_facebook(), a_page(sandbox)
    post_many(sandbox, "facebook", 30, "Sports day")
    sandbox.inject("server_error", "GET /.*/feed$", times=1)

    with pytest.raises(TransientError):
        adapter.recent(page, datetime.now(UTC) - timedelta(minutes=5))
    recent = adapter.recent(page, datetime.now(UTC) - timedelta(minutes=5))

    assert len(recent) == 30


def test_the_sandbox_pages_the_feed_by_cursor_as_graph_does(sandbox):
    post_many(sandbox, "facebook", 30, "Sports day")
    url = f"{sandbox.base_url}/v26.0/{PAGE}/feed"
    auth = {"Authorization": f"Bearer {PAGE_TOKEN}"}

    first = httpx.get(url, params={"since": "0"}, headers=auth).json()
    following = httpx.get(first["paging"]["next"], headers=auth).json()
    too_many = httpx.get(url, params={"limit": "101"}, headers=auth)
    bad_cursor = httpx.get(url, params={"after": "not-a-cursor"}, headers=auth)

    assert len(first["data"]) == 25  # Graph's default page
    assert set(first["paging"]["cursors"]) == {"before", "after"}
    assert parse_qs(urlsplit(first["paging"]["next"]).query)["since"] == ["0"]
    assert len(following["data"]) == 5 and "next" not in following["paging"]
    assert not {p["id"] for p in first["data"]} & {p["id"] for p in following["data"]}
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == 100
    assert bad_cursor.status_code == 400 and bad_cursor.json()["error"]["code"] == 100


def test_a_next_page_link_is_followed_only_on_the_same_edge():
    base = "https://graph.facebook.com"
    edge = f"{IG_USER}/media"
    next_url = f"{base}/v26.0/{edge}?limit=25&after=QVFI&access_token=EAAsecret"
    elsewhere = f"https://evil.example/v26.0/{edge}?after=QVFI"

    assert paging.graph_next(base, edge, {"data": []}) is None
    assert paging.graph_next(base, edge, {"paging": {"cursors": {}}}) is None
    assert paging.graph_next(base, edge, {"paging": {"next": next_url}}) == {
        "limit": "25",
        "after": "QVFI",
    }
    for body in (
        {"paging": {"next": elsewhere}},
        {"paging": {"next": f"{base}/v26.0/{PAGE}/feed?after=QVFI"}},
        {"paging": {"next": 42}},
    ):
        with pytest.raises(TransientError) as raised:
            paging.graph_next(base, edge, body)
        assert raised.value.code == "recent_incomplete"
