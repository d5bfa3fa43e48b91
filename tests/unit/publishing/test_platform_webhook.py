"""The webhook target over real HTTP against the webhook sandbox: signatures,
replays, one post per Idempotency-Key, every answer class, delete, lookup, recent."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from werkzeug.serving import make_server

from safepost.sandboxes.webhook import WebhookSandbox
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
from services.publishing.platforms.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookAdapter,
    sign,
    verify_signature,
)
from tests.support.wait import wait_for

SECRET = "oakfield-website-shared-secret-0123456789"
JPEG = b"\xff\xd8\xff redacted pixels"
POST = "6b1f7d7e-1c1a-4d5e-9f61-3c2a9f0e8a11"


@pytest.fixture(scope="module")
def served():
    sandbox = WebhookSandbox(secret=SECRET)
    sandbox.timeout_seconds = 0.8
    running = sandbox.serve()
    yield sandbox
    running.stop()


@pytest.fixture
def sandbox(served):
    assert httpx.post(served.base_url + "/_sandbox/reset").status_code == 200
    return served


@pytest.fixture
def adapter():
    adapter = WebhookAdapter(read_timeout=0.4, connect_timeout=0.5)
    yield adapter
    adapter.close()


def a_destination(sandbox, secret=SECRET, url=None):
    return Destination(
        account_id="oakfield-website",
        platform="webhook",
        external_id="oakfield-website",
        base_url=url or sandbox.receiver_url,
        credentials=Credentials(access_token=secret),
    )


def photos(count=1):
    return [Media(f"photo-{n}", JPEG + bytes([n])) for n in range(1, count + 1)]


def signed_post(url, body, timestamp, secret=SECRET, signed_body=None):
    """A hand-made request: ``signed_body`` is what the signature covers."""
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, signed_body or body),
    }
    return httpx.post(url, content=body, headers=headers, timeout=2)


def a_body(caption="Sports day!"):
    image = photos(1)[0]
    return json.dumps(
        {
            "event": "post.published",
            "account_id": "oakfield-website",
            "caption": caption,
            "images": [
                {
                    "photo_id": image.photo_id,
                    "content_type": image.content_type,
                    "sha256": image.sha256,
                    "data_base64": base64.b64encode(image.data).decode(),
                }
            ],
        }
    ).encode()


# -- publishing ----------


def test_a_signed_post_with_one_photo_goes_live(sandbox, adapter):
    live = adapter.publish(
        a_destination(sandbox), "Sports day!", photos(), idempotency_key=POST
    )

    [post] = sandbox.live()
    assert live.external_id == post["id"]
    assert live.url == f"{sandbox.base_url}/posts/{post['id']}"
    assert post["caption"] == "Sports day!"
    assert post["idempotency_key"] == POST
    assert [i["sha256"] for i in post["images"]] == [photos()[0].sha256]
    assert httpx.get(live.url).status_code == 200


def test_several_photos_arrive_in_order_and_show_on_the_page(sandbox, adapter):
    adapter.publish(a_destination(sandbox), "Trip", photos(3), idempotency_key=POST)

    [post] = sandbox.live()
    assert [i["photo_id"] for i in post["images"]] == ["photo-1", "photo-2", "photo-3"]
    page = httpx.get(sandbox.base_url + "/").text
    assert page.count("src='data:image/jpeg;base64,") == 3


def test_the_same_idempotency_key_twice_makes_one_post(sandbox, adapter):
    dest = a_destination(sandbox)

    first = adapter.publish(dest, "Trip", photos(), idempotency_key=POST)
    again = adapter.publish(dest, "Trip", photos(), idempotency_key=POST)

    assert again == first
    assert len(sandbox.live()) == 1


def test_a_key_reused_for_another_post_is_refused(sandbox, adapter):
    dest = a_destination(sandbox)
    adapter.publish(dest, "Trip", photos(), idempotency_key=POST)

    with pytest.raises(PermanentError) as caught:
        adapter.publish(dest, "Another trip", photos(), idempotency_key=POST)

    assert caught.value.status == 422
    assert len(sandbox.live()) == 1


# -- signatures ----------


def test_a_tampered_body_is_refused(sandbox):
    timestamp = str(int(time.time()))
    body = a_body("Sports day!")

    tampered = signed_post(
        sandbox.receiver_url, a_body("Something else"), timestamp, signed_body=body
    )
    genuine = signed_post(sandbox.receiver_url, body, timestamp)

    assert tampered.status_code == 401
    assert tampered.json()["error"]["code"] == "bad_signature"
    assert genuine.status_code == 201
    assert len(sandbox.live()) == 1


def test_a_replayed_old_delivery_is_refused(sandbox):
    old = str(int(time.time()) - 301)

    replay = signed_post(sandbox.receiver_url, a_body(), old)

    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "stale_timestamp"
    assert sandbox.live() == []


def test_an_adapter_with_a_wrong_clock_or_secret_gets_an_auth_error(sandbox):
    late = WebhookAdapter(read_timeout=0.4, clock=lambda: time.time() - 600)
    adapter = WebhookAdapter(read_timeout=0.4)

    with pytest.raises(AuthError) as stale:
        late.publish(a_destination(sandbox), "x", photos(), idempotency_key=POST)
    with pytest.raises(AuthError) as wrong:
        adapter.publish(a_destination(sandbox, secret="not-the-secret"), "x", photos())

    assert stale.value.code == "stale_timestamp"
    assert wrong.value.code == "bad_signature"
    assert SECRET not in str(stale.value) and "not-the-secret" not in str(wrong.value)
    assert sandbox.live() == []


def test_an_account_without_a_secret_sends_nothing(sandbox, adapter):
    dest = a_destination(sandbox, secret="")

    with pytest.raises(AuthError):
        adapter.publish(dest, "x", photos())

    assert sandbox.state.requests == []


def test_verify_signature_checks_secret_body_and_time():
    body, now = b'{"event":"post.published"}', 1_900_000_000.0
    timestamp = str(int(now))
    good = sign(SECRET, timestamp, body)

    assert verify_signature(SECRET, timestamp, body, good, now)
    assert verify_signature(SECRET, timestamp, body, good, now + 300)
    assert not verify_signature(SECRET, timestamp, body, good, now + 301)
    assert not verify_signature(SECRET, timestamp, body, good, now - 301)
    assert not verify_signature(SECRET, timestamp, body + b" ", good, now)
    assert not verify_signature("other", timestamp, body, good, now)
    assert not verify_signature(SECRET, "12abc", body, good, now)
    assert not verify_signature(SECRET, timestamp, body, good.upper() + "é", now)
    assert not verify_signature("", timestamp, body, sign("", timestamp, body), now)


def test_plain_http_to_a_public_host_is_refused_before_sending(sandbox, adapter):
    dest = a_destination(sandbox, url="http://www.oakfield.example/safepost")

    with pytest.raises(PermanentError) as caught:
        adapter.publish(dest, "x", photos())

    assert caught.value.code == "bad_url"


# -- every answer class ----------


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("expired_token", AuthError, 401),
        ("rate_limited", RateLimitedError, 429),
        ("server_error", AmbiguousError, 500),
        ("refuse", PermanentError, 422),
    ],
)
def test_a_refused_create_is_classified(sandbox, adapter, fault, error, status):
    sandbox.inject(fault, "POST /webhook")

    with pytest.raises(error) as caught:
        adapter.publish(a_destination(sandbox), "x", photos(), idempotency_key=POST)

    assert type(caught.value) is error
    assert caught.value.status == status
    assert sandbox.live() == []


def test_rate_limited_says_when_to_try_again(sandbox, adapter):
    sandbox.inject("rate_limited", "POST /webhook")
    before = datetime.now(UTC)

    with pytest.raises(RateLimitedError) as caught:
        adapter.publish(a_destination(sandbox), "x", photos(), idempotency_key=POST)

    retry_at = caught.value.retry_at
    assert retry_at is not None
    assert before + timedelta(seconds=29) <= retry_at <= before + timedelta(seconds=32)


def test_a_refusal_keeps_the_websites_own_message(sandbox, adapter):
    sandbox.inject("refuse", "POST /webhook")

    with pytest.raises(PermanentError) as caught:
        adapter.publish(a_destination(sandbox), "x", photos(), idempotency_key=POST)

    assert "moderation refused the post" in caught.value.message
    assert caught.value.code == "content_rejected"


@pytest.mark.parametrize(
    ("fault", "created"),
    [("timeout", 1), ("malformed", 1), ("drop_after", 1), ("server_error", 0)],
)
def test_a_create_without_a_clear_answer_is_ambiguous(sandbox, adapter, fault, created):
    sandbox.inject(fault, "POST /webhook")

    with pytest.raises(AmbiguousError):
        adapter.publish(a_destination(sandbox), "x", photos(), idempotency_key=POST)

    wait_for(
        lambda: len(sandbox.live()) == created, 3.0, interval=0.02
    )  # a held answer lands late


def test_after_a_dropped_create_recent_finds_the_one_post_and_a_retry_adds_none(
    sandbox, adapter
):
    dest = a_destination(sandbox)
    since = datetime.now(UTC) - timedelta(seconds=5)
    sandbox.inject("drop_after", "POST /webhook")

    with pytest.raises(AmbiguousError):
        adapter.publish(dest, "Sports day!", photos(2), idempotency_key=POST)

    assert len(sandbox.live()) == 1
    ours = find_ours(adapter.recent(dest, since), "Sports day!", 2)
    assert ours is not None and ours.external_id == sandbox.live()[0]["id"]
    retried = adapter.publish(dest, "Sports day!", photos(2), idempotency_key=POST)
    assert retried.external_id == ours.external_id
    assert len(sandbox.live()) == 1


def test_an_unreachable_website_is_transient_even_for_a_create(adapter):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dest = Destination(
        "web", "webhook", "web", f"http://127.0.0.1:{port}/webhook", Credentials("s")
    )

    with pytest.raises(TransientError) as caught:
        adapter.publish(dest, "x", photos(), idempotency_key=POST)

    assert caught.value.code == "unreachable"


@pytest.mark.parametrize("fault", ["timeout", "malformed", "server_error"])
def test_a_read_without_a_clear_answer_is_transient(sandbox, adapter, fault):
    live = adapter.publish(a_destination(sandbox), "x", photos(), idempotency_key=POST)
    sandbox.inject(fault, "GET /webhook")

    with pytest.raises(TransientError):
        adapter.lookup(a_destination(sandbox), live.external_id)


def test_a_malformed_recent_list_is_transient(sandbox, adapter):
    sandbox.inject("malformed", "GET /webhook$")

    with pytest.raises(TransientError):
        adapter.recent(a_destination(sandbox), datetime.now(UTC))


# -- delete, lookup, recent ----------


def test_delete_takes_the_post_down_and_a_second_delete_is_fine(sandbox, adapter):
    dest = a_destination(sandbox)
    live = adapter.publish(dest, "x", photos(), idempotency_key=POST)

    adapter.delete(dest, live.external_id)
    adapter.delete(dest, live.external_id)

    assert sandbox.live() == []
    assert adapter.lookup(dest, live.external_id) is None


def test_a_failed_delete_is_transient_and_keeps_the_post(sandbox, adapter):
    dest = a_destination(sandbox)
    live = adapter.publish(dest, "x", photos(), idempotency_key=POST)
    sandbox.inject("server_error", "DELETE /webhook/")

    with pytest.raises(TransientError):
        adapter.delete(dest, live.external_id)

    assert len(sandbox.live()) == 1


def test_a_delete_must_be_signed(sandbox, adapter):
    live = adapter.publish(a_destination(sandbox), "x", photos(), idempotency_key=POST)

    with pytest.raises(AuthError):
        adapter.delete(a_destination(sandbox, secret="guess"), live.external_id)

    assert len(sandbox.live()) == 1


def test_lookup_finds_a_live_post(sandbox, adapter):
    dest = a_destination(sandbox)
    live = adapter.publish(dest, "x", photos(), idempotency_key=POST)

    assert adapter.lookup(dest, live.external_id) == live
    assert adapter.lookup(dest, "post-999") is None


def test_recent_lists_posts_since_a_time_newest_first(sandbox, adapter):
    dest = a_destination(sandbox)
    adapter.publish(dest, "first", photos(1), idempotency_key="post-a")
    since = datetime.now(UTC)
    second = adapter.publish(dest, "second", photos(2), idempotency_key="post-b")
    third = adapter.publish(dest, "third", photos(3), idempotency_key="post-c")

    found = adapter.recent(dest, since)

    assert [p.external_id for p in found] == [third.external_id, second.external_id]
    assert [(p.text, p.media_count) for p in found] == [("third", 3), ("second", 2)]


# -- recent: every page back to `since` ---------------------------------------------


def post_many(adapter, dest, count, caption):
    for n in range(count):
        adapter.publish(dest, f"{caption} {n}", photos(1))


def backdate(sandbox, caption, hours=1.0):
    with sandbox.state.lock:
        for post in sandbox.state.posts.values():
            if post["caption"].startswith(caption):
                made = datetime.fromisoformat(post["created_at"])
                post["created_at"] = (made - timedelta(hours=hours)).isoformat()


def list_reads(sandbox):
    with sandbox.state.lock:
        return sum(1 for call in sandbox.state.requests if call == ("GET", "/webhook"))


def signed_get(url, params):
    timestamp = str(int(time.time()))
    headers = {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(SECRET, timestamp, b""),
    }
    return httpx.get(url, params=params, headers=headers, timeout=2)


def test_recent_follows_every_next_link_back_to_our_post_among_many(sandbox, adapter):
    dest = a_destination(sandbox)
    post_many(adapter, dest, 30, "Last term")
    backdate(sandbox, "Last term")
    since = datetime.now(UTC) - timedelta(minutes=1)
    sandbox.inject("drop_after", "POST /webhook")
    with pytest.raises(AmbiguousError):
        adapter.publish(dest, "Sports day!", photos(2), idempotency_key=POST)
    post_many(adapter, dest, 120, "Later that day")
    sandbox.state.requests.clear()

    recent = adapter.recent(dest, since)

    ours = find_ours(recent, "Sports day!", 2)
    assert ours is not None and recent[-1] == ours  # made first: on the last page
    assert len(recent) == 121 and len({p.external_id for p in recent}) == 121
    assert not any(p.text.startswith("Last term") for p in recent)
    assert list_reads(sandbox) == 3  # 50 a page


def test_recent_past_the_page_bound_is_incomplete_not_partial(sandbox):
    adapter = WebhookAdapter(read_timeout=1.0, connect_timeout=0.5, recent_max_pages=2)
    dest = a_destination(sandbox)
    post_many(adapter, dest, 120, "Sports day")
    sandbox.state.requests.clear()

    with pytest.raises(TransientError) as raised:
        adapter.recent(dest, datetime.now(UTC) - timedelta(minutes=5))
    adapter.close()

    assert raised.value.code == "recent_incomplete"
    assert list_reads(sandbox) == 2


def test_a_next_link_to_another_place_is_not_followed(adapter):
    """A receiver (not the sandbox) whose next link leads off its own URL."""
    calls = []

    def receiver(environ, start_response):
        calls.append(environ["PATH_INFO"])
        link = '<https://elsewhere.example/webhook?after=x>; rel="next"'
        start_response("200 OK", [("Content-Type", "application/json"), ("Link", link)])
        return [b"[]"]

    server = make_server("127.0.0.1", 0, receiver, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/webhook"
        with pytest.raises(TransientError) as raised:
            adapter.recent(a_destination(None, url=url), datetime.now(UTC))
    finally:
        server.shutdown()

    assert raised.value.code == "recent_incomplete" and calls == ["/webhook"]


def test_the_sandbox_pages_its_list_with_next_links(sandbox, adapter):
    post_many(adapter, a_destination(sandbox), 12, "Sports day")
    url, since = sandbox.receiver_url, "2000-01-01T00:00:00Z"

    first = signed_get(url, {"since": since, "limit": "10"})
    following = signed_get(str(first.url.join(first.links["next"]["url"])), None)
    no_since = signed_get(url, None)
    bad_cursor = signed_get(url, {"since": since, "after": "nope"})
    too_many = signed_get(url, {"since": since, "limit": "101"})

    assert len(first.json()) == 10
    assert len(following.json()) == 2 and "next" not in following.links
    assert not {p["id"] for p in first.json()} & {p["id"] for p in following.json()}
    assert no_since.status_code == bad_cursor.status_code == too_many.status_code == 400
