"""Publishing an approved post: once per account, redacted bytes only, default deny,
and the delivery loop's states: retries scheduled, lost answers reconciled before any
retry, tokens that stop working, sites not approved, nothing silent."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta

import pytest

from services.publishing import bootstrap, delivery, domain
from services.publishing.platforms.base import (
    AuthError,
    PermanentError,
    RateLimitedError,
    TransientError,
)
from shared import contracts
from shared.config import Settings
from tests.unit.publishing.builders import (
    IMAGE,
    _jpeg,
    a_rig,
    an_account,
    approved,
    cleared,
)
from tests.unit.publishing.fakes import RecordingAdapter


def social_rig(tmp_path, adapter=None, **options):
    """A rig with one Facebook account whose token is stored."""
    adapter = adapter or RecordingAdapter("facebook")
    account = an_account("north-fb", kind="facebook", external_id="1234", footer="")
    tokens = FakeTokens()
    rig = a_rig(
        tmp_path,
        account,
        platforms={"facebook": adapter},
        tokens=tokens,
        policy=delivery.Policy(
            retry_seconds=(60, 300), reconcile_seconds=(5, 30), wait_seconds=60
        ),
        **options,
    )
    return rig, adapter


class FakeTokens:
    def __init__(self):
        from services.publishing.platforms.base import Credentials

        self.tokens = {"north-fb": Credentials("page-token")}

    def get(self, account_id):
        return self.tokens.get(account_id)

    def put(self, account_id, credentials, *, by=None):
        self.tokens[account_id] = credentials

    def claim_refresh(self, account_id, now, seconds):
        return True

    def release_refresh(self, account_id):
        pass


def later(rig, seconds):
    """Move the rig's clock on."""
    rig.ports.now.at += timedelta(seconds=seconds)


def test_an_approved_post_is_written_to_the_accounts_folder_with_the_redacted_bytes(
    tmp_path,
):
    rig = a_rig(tmp_path)
    second = _jpeg((32, 32))

    [published] = rig.publish(approved(rig, images=(IMAGE, second)))

    assert isinstance(published, contracts.PostPublished)
    folder = rig.root / "north" / "newsroom" / "p1"
    assert published.location == folder.as_uri()
    assert published.target == "folder"
    images = sorted(p for p in folder.iterdir() if p.suffix == ".jpg")
    assert [p.read_bytes() for p in images] == [IMAGE, second]
    assert (folder / "caption.txt").read_text() == "Sports day!"
    assert json.loads((folder / "post.json").read_text())["post_id"] == "p1"
    assert rig.deliveries.get("p1", "newsroom").status == domain.LIVE


def test_the_consent_answer_delivered_twice_sends_once_and_says_the_same(tmp_path):
    rig, adapter = social_rig(tmp_path)
    event = approved(rig, accounts=("north-fb",))
    first = rig.publish(event)

    rig.handle(cleared(event))
    again = rig.run()

    assert [type(m).__name__ for m in first] == ["PostPublished"]
    assert again == []
    assert rig.handle(event) == []  # the approval delivered again: nothing new
    assert adapter.calls == 1 and len(adapter.posts) == 1


def test_the_footer_is_added_to_the_caption_and_the_token_is_used(tmp_path):
    rig, adapter = social_rig(tmp_path)
    rig.accounts.update(
        replace(rig.accounts.get("north-fb"), footer="Oak Trust, reg. 123")
    )

    rig.publish(approved(rig, accounts=("north-fb",)))

    [post] = adapter.posts.values()
    assert post["caption"] == "Sports day!\n\nOak Trust, reg. 123"
    assert post["dest"].credentials.access_token == "page-token"
    assert post["dest"].external_id == "1234"
    assert [m.data for m in post["media"]] == [IMAGE]


def test_the_marker_says_sending_before_the_platform_is_called(tmp_path):
    seen = []

    class Watching(RecordingAdapter):
        def publish(self, dest, caption, media, **kwargs):
            seen.append(rig.deliveries.get("p1", "north-fb").status)
            return super().publish(dest, caption, media, **kwargs)

    rig, _ = social_rig(tmp_path, Watching("facebook"))

    rig.publish(approved(rig, accounts=("north-fb",)))

    assert seen == [domain.SENDING]


def test_a_worker_killed_between_the_answer_and_the_marker_leaves_one_live_copy(
    tmp_path,
):
    def die(_delivery):
        raise delivery.SimulatedCrashError

    rig, adapter = social_rig(tmp_path, crash_after_answer=die)
    event = approved(rig, accounts=("north-fb",))
    rig.handle(event)
    rig.handle(cleared(event))
    with pytest.raises(delivery.SimulatedCrashError):
        rig.run()
    assert rig.deliveries.get("p1", "north-fb").status == domain.SENDING

    rig.ports = replace(rig.ports, crash_after_answer=None)
    later(rig, 60)
    assert rig.run() == []  # the lease has not run out: nobody touches it
    later(rig, 120)
    [published] = rig.run()

    assert isinstance(published, contracts.PostPublished)
    assert adapter.calls == 1 and len(adapter.posts) == 1
    assert rig.deliveries.get("p1", "north-fb").status == domain.LIVE


def test_a_lost_answer_is_reconciled_not_retried(tmp_path):
    rig, adapter = social_rig(tmp_path, RecordingAdapter("facebook", answer_lost=True))
    event = approved(rig, accounts=("north-fb",))

    assert rig.publish(event) == []
    marker = rig.deliveries.get("p1", "north-fb")
    assert marker.status == domain.RECONCILING
    later(rig, 10)
    [published] = rig.run()

    assert isinstance(published, contracts.PostPublished)
    assert adapter.calls == 1 and len(adapter.posts) == 1
    assert rig.deliveries.get("p1", "north-fb").url.startswith("https://")


def test_a_create_that_never_happened_is_sent_again_after_looking(tmp_path):
    from services.publishing.platforms.base import AmbiguousError

    adapter = RecordingAdapter("facebook", errors=[AmbiguousError("502")])
    rig, _ = social_rig(tmp_path, adapter)

    assert rig.publish(approved(rig, accounts=("north-fb",))) == []
    later(rig, 10)
    assert rig.run() == []  # looked once: not there
    later(rig, 40)
    rig.run()  # looked twice: not there -> pending again
    [published] = rig.run()

    assert isinstance(published, contracts.PostPublished)
    assert adapter.calls == 2 and len(adapter.posts) == 1


def test_two_matching_posts_make_the_delivery_unconfirmed_for_a_person(tmp_path):
    from services.publishing.platforms.base import AmbiguousError

    rig, adapter = social_rig(tmp_path, RecordingAdapter("facebook", answer_lost=True))
    event = approved(rig, accounts=("north-fb",))
    rig.publish(event)
    adapter.posts["other"] = dict(next(iter(adapter.posts.values())))
    later(rig, 10)

    rig.run()

    marker = rig.deliveries.get("p1", "north-fb")
    assert marker.status == domain.UNCONFIRMED
    assert "2 recent posts" in marker.detail
    # A person checks the platform and says where it is live.
    done = delivery.confirm(
        bootstrap.delivery_engine(rig.ports), "p1", "north-fb", "https://fb/x"
    )
    assert (done.status, done.url) == (domain.LIVE, "https://fb/x")
    assert isinstance(rig.messages[-2], contracts.PostPublished)
    assert isinstance(AmbiguousError("x"), Exception)


def test_transient_errors_are_retried_on_schedule_then_fail(tmp_path):
    adapter = RecordingAdapter(
        "facebook",
        errors=[TransientError("503"), TransientError("503"), TransientError("503")],
    )
    rig, _ = social_rig(tmp_path, adapter)

    assert rig.publish(approved(rig, accounts=("north-fb",))) == []
    first = rig.deliveries.get("p1", "north-fb")
    assert (first.status, first.reason, first.attempts) == (
        domain.WAITING,
        "retrying",
        1,
    )
    assert rig.run() == []  # not due yet: nothing sleeps, nothing is sent
    later(rig, 61)
    assert rig.run() == []
    later(rig, 301)
    [failed] = rig.run()

    assert isinstance(failed, contracts.PublishFailed)
    assert adapter.calls == 3
    assert rig.deliveries.get("p1", "north-fb").status == domain.FAILED


def test_a_rate_limit_waits_until_the_platforms_reset_time(tmp_path):
    reset = datetime(2030, 1, 1, 10, 0, tzinfo=UTC)
    adapter = RecordingAdapter(
        "facebook", errors=[RateLimitedError("429", retry_at=reset)]
    )
    rig, _ = social_rig(tmp_path, adapter)

    rig.publish(approved(rig, accounts=("north-fb",)))

    marker = rig.deliveries.get("p1", "north-fb")
    assert (marker.status, marker.reason, marker.next_attempt_at) == (
        domain.WAITING,
        "rate_limited",
        reset,
    )
    update = rig.messages[-1]
    assert (update.state, update.reason, update.retry_at) == (
        "waiting",
        "rate_limited",
        reset,
    )


def test_an_expired_token_marks_the_account_and_the_post_waits(tmp_path):
    adapter = RecordingAdapter(
        "facebook", errors=[AuthError("token expired", code="190")]
    )
    rig, _ = social_rig(tmp_path, adapter)

    # Nothing published or failed: the account's new state is announced.
    [changed] = rig.publish(approved(rig, accounts=("north-fb",)))

    assert isinstance(changed, contracts.AccountChanged)
    assert (changed.account_id, changed.status) == ("north-fb", "needs_reconnect")
    account = rig.accounts.get("north-fb")
    assert account.connection == domain.NEEDS_RECONNECT
    assert "token expired" in account.status_reason
    marker = rig.deliveries.get("p1", "north-fb")
    assert (marker.status, marker.reason) == (domain.WAITING, "needs_reconnect")
    later(rig, 120)
    assert rig.run() == [] and adapter.calls == 1  # waits, never fails silently
    rig.accounts.update(replace(account, connection=domain.ACTIVE, status_reason=""))
    later(rig, 120)
    [published] = rig.run()
    assert isinstance(published, contracts.PostPublished)


def test_a_refused_post_fails_with_the_platforms_words(tmp_path):
    adapter = RecordingAdapter(
        "facebook", errors=[PermanentError("Image is too small", code="100")]
    )
    rig, _ = social_rig(tmp_path, adapter)

    [failed] = rig.publish(approved(rig, accounts=("north-fb",)))

    assert (failed.reason, failed.detail) == ("100", "Image is too small")


def test_a_site_not_approved_waits_and_sends_nothing(tmp_path):
    class Sites:
        def __init__(self):
            self.approved = False

        def get(self, platform):
            return domain.Site(platform, self.approved)

    sites = Sites()
    rig, adapter = social_rig(tmp_path, sites=sites)

    assert rig.publish(approved(rig, accounts=("north-fb",))) == []
    assert rig.deliveries.get("p1", "north-fb").reason == "site_not_approved"
    assert adapter.calls == 0
    sites.approved = True
    later(rig, 61)
    [published] = rig.run()
    assert isinstance(published, contracts.PostPublished)


def test_an_old_consent_check_is_made_again_before_sending(tmp_path):
    rig, adapter = social_rig(tmp_path)
    event = approved(rig, accounts=("north-fb",))
    rig.handle(event)
    rig.handle(cleared(event))
    later(rig, 11 * 60)  # e.g. the account waited for a reconnect

    [ask] = rig.run()
    assert isinstance(ask, contracts.VerifyPostConsent) and ask.round == 1
    later(rig, 5)
    assert rig.run() == []  # asked once, not again while waiting for the answer
    assert adapter.calls == 0
    rig.handle(cleared(event))
    [published] = rig.run()
    assert isinstance(published, contracts.PostPublished)


def test_a_failed_delivery_can_be_retried_by_a_person(tmp_path):
    adapter = RecordingAdapter("facebook", errors=[PermanentError("down", code="x")])
    rig, _ = social_rig(tmp_path, adapter)
    rig.publish(approved(rig, accounts=("north-fb",)))

    delivery.retry(bootstrap.delivery_engine(rig.ports), "p1", "north-fb")
    [published] = rig.run()

    assert isinstance(published, contracts.PostPublished)
    with pytest.raises(delivery.DeliveryStateError):
        delivery.retry(bootstrap.delivery_engine(rig.ports), "p1", "north-fb")


def test_publishing_opens_the_redacted_store_and_never_the_originals(tmp_path):
    settings = Settings.from_env(
        "publishing",
        {"SAFEPOST_DATA_DIR": str(tmp_path), "SAFEPOST_SECRET_KEY": "k" * 40},
    )

    ports = bootstrap.real_ports(settings)

    assert (tmp_path / "blobs" / "redacted").is_dir()
    assert not (tmp_path / "blobs" / "originals").exists()
    assert {f.name for f in fields(ports)}.isdisjoint({"originals", "previews"})


def test_unknown_and_other_school_accounts_fail_and_a_disabled_one_waits(tmp_path):
    rig = a_rig(
        tmp_path,
        an_account("newsroom"),
        an_account("off", enabled=False),
        an_account("southern", school="south"),
    )

    out = rig.publish(approved(rig, accounts=("ghost", "off", "southern", "newsroom")))

    reasons = {m.account: getattr(m, "reason", "published") for m in out}
    assert reasons == {
        "ghost": "unknown_account",
        "southern": "school_mismatch",
        "newsroom": "published",
    }
    assert rig.deliveries.get("p1", "off").reason == "account_disabled"
    assert not (rig.root / "south").exists()


def test_a_redacted_image_that_is_not_the_approved_one_is_not_published(tmp_path):
    rig = a_rig(tmp_path)
    event = approved(rig)
    rig.redacted.put("redacted/p1/ph1.jpg", b"something else")

    [failed] = rig.publish(event)

    assert isinstance(failed, contracts.PublishFailed)
    assert failed.reason == "image_changed"
    assert not (rig.root / "north").exists()


def test_a_missing_redacted_image_fails_the_delivery(tmp_path):
    rig = a_rig(tmp_path)
    event = approved(rig)
    rig.redacted.delete("redacted/p1/ph1.jpg")

    [failed] = rig.publish(event)

    assert isinstance(failed, contracts.PublishFailed)
    assert failed.reason == "image_missing"


def test_a_post_that_does_not_fit_the_platform_fails_untruncated(tmp_path):
    adapter = RecordingAdapter("x")
    account = an_account("north-x", kind="x", external_id="42")
    tokens = FakeTokens()
    tokens.tokens["north-x"] = tokens.tokens["north-fb"]
    rig = a_rig(tmp_path, account, platforms={"x": adapter}, tokens=tokens)
    event = approved(rig, accounts=("north-x",)).model_copy(
        update={"caption": "word " * 80}
    )

    [failed] = rig.publish(event)

    assert failed.reason == "does_not_fit" and "280" in failed.detail
    assert adapter.calls == 0


def test_a_resend_refused_as_a_duplicate_looks_for_the_first_copy(tmp_path):
    """The first answer was lost and the platform was slow to list the post: it was
    sent again, and the platform refused the duplicate. That refusal is not a failure:
    the first copy is live, and it is found."""
    from services.publishing.platforms.base import AmbiguousError

    class Slow(RecordingAdapter):
        hidden = 2  # the platform lists the post only from the third look

        def publish(self, dest, caption, media, **kwargs):
            if self.posts:
                self.calls += 1
                raise PermanentError("Content is a duplicate", code="422")
            super().publish(dest, caption, media, **kwargs)
            raise AmbiguousError("read timed out")

        def recent(self, dest, since):
            if self.hidden:
                self.hidden -= 1
                return []
            return super().recent(dest, since)

    adapter = Slow("linkedin")
    rig, _ = social_rig(tmp_path, adapter)
    rig.publish(approved(rig, accounts=("north-fb",)))
    for _ in range(4):
        later(rig, 40)
        rig.run()

    marker = rig.deliveries.get("p1", "north-fb")
    assert (marker.status, len(adapter.posts)) == (domain.LIVE, 1)
    assert adapter.calls == 2


def test_lost_answers_are_looked_for_before_new_sends(tmp_path):
    from services.publishing import adapters as sql
    from shared import db

    engine = db.make_engine(f"sqlite:///{tmp_path / 'p.sqlite3'}")
    db.migrate(engine, bootstrap.MIGRATIONS)
    log = sql.SqlDeliveryLog(engine)
    at = datetime(2030, 1, 1, 9, tzinfo=UTC)
    log.record(domain.Delivery("new", "a", "n", domain.PENDING, at, next_attempt_at=at))
    log.record(
        domain.Delivery(
            "lost",
            "a",
            "n",
            domain.RECONCILING,
            at,
            next_attempt_at=at + timedelta(seconds=5),
        )
    )

    due = log.due(at + timedelta(minutes=1), timedelta(minutes=2), limit=1)

    assert [d.post_id for d in due] == ["lost"]


def test_a_platform_that_never_lists_its_posts_leaves_it_to_a_person(tmp_path):
    """Looking for a lost answer never ends in a guess: after repeated failures to
    list the account's recent posts, a person is asked (unconfirmed)."""
    adapter = RecordingAdapter("facebook", answer_lost=True)
    adapter.recent_error = TransientError(
        "more pages than read", code="recent_incomplete"
    )
    rig, _ = social_rig(tmp_path, adapter)
    rig.publish(approved(rig, accounts=("north-fb",)))

    states = []
    for _ in range(12):
        later(rig, 120)
        rig.run()
        states.append(rig.deliveries.get("p1", "north-fb").status)

    assert states[0] == domain.RECONCILING
    assert states[-1] == domain.UNCONFIRMED
    assert adapter.calls == 1  # never sent twice
    marker = rig.deliveries.get("p1", "north-fb")
    assert "check whether the post is live" in marker.detail
