"""Taking live posts down when consent changes (issue 8 section 2): every live copy
showing the pupil on an account the change concerns, each platform call's answer, a
manual task where the platform will not delete, and the time to the last copy gone."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from services.publishing import bootstrap, delivery, domain, takedown
from services.publishing.platforms.base import (
    AuthError,
    Credentials,
    PermanentError,
    TransientError,
)
from shared import contracts
from tests.unit.publishing.builders import a_rig, an_account, approved, cleared, said
from tests.unit.publishing.fakes import InMemoryTakedowns, RecordingAdapter


class Tokens:
    def get(self, account_id):
        return Credentials("token")

    def put(self, account_id, credentials, *, by=None):
        pass

    def claim_refresh(self, *a):
        return True

    def release_refresh(self, account_id):
        pass


def a_school(tmp_path):
    fb, x = RecordingAdapter("facebook"), RecordingAdapter("x")
    rig = a_rig(
        tmp_path,
        an_account("n-fb", kind="facebook", external_id="1", owner="owner.fb"),
        an_account("n-x", kind="x", external_id="2", owner="owner.x"),
        platforms={"facebook": fb, "x": x},
        tokens=Tokens(),
        takedowns=InMemoryTakedowns(),
        policy=delivery.Policy(retry_seconds=(60, 300), wait_seconds=60),
    )
    return rig, fb, x


def live_post(rig, post_id="p1", pupils=("P1",)):
    event = approved(rig, post_id, accounts=("n-fb", "n-x"))
    image = event.images[0].model_copy(
        update={
            "shown": [
                contracts.ShownFace(
                    pupil_id=p, consent_versions=["7:social_media/*:v1"]
                )
                for p in pupils
            ]
        }
    )
    event = event.model_copy(update={"images": [image]})
    rig.publish(event)
    return event


def withdrawn(platform=None, pupil="P1", cause="recorded", take_down=True):
    scopes = [
        contracts.ConsentScope(
            purpose="social_media",
            platform=platform,
            state="withdrawn" if cause == "recorded" else "no_consent",
        )
    ]
    return contracts.ConsentChanged(
        school_id="north",
        pupil_id=pupil,
        cause=cause,
        scopes=scopes,
        effective_on=date(2030, 1, 1),
        take_down=take_down,
        changed_at=rig_time(),
    )


def rig_time():
    from datetime import UTC, datetime

    return datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


def later(rig, seconds):
    rig.ports.now.at += timedelta(seconds=seconds)


NEWS = (
    contracts.TakedownCompleted,
    contracts.ManualTakedownOpened,
    contracts.ManualTakedownEscalated,
)


def news(rig):
    """What the takedowns themselves announced: completions and manual tasks."""
    return [m for m in rig.messages if isinstance(m, NEWS)]


def states(rig, post_id="p1"):
    return {d.account_id: d.status for d in rig.deliveries.for_post(post_id)}


def test_a_withdrawal_takes_every_live_copy_down_and_says_how_long_it_took(tmp_path):
    rig, fb, x = a_school(tmp_path)
    live_post(rig)
    assert len(fb.posts) == len(x.posts) == 1

    [requested] = said(rig.handle(withdrawn()))
    rig.run()

    assert (requested.post_id, requested.accounts, requested.reason) == (
        "p1",
        ["n-fb", "n-x"],
        "withdrawn",
    )
    assert states(rig) == {"n-fb": "taken_down", "n-x": "taken_down"}
    assert fb.posts == {} and x.posts == {}
    [done] = news(rig)
    assert isinstance(done, contracts.TakedownCompleted)
    assert (done.copies, done.posts, done.pupil_id) == (2, ["p1"], "P1")
    assert done.seconds > 0
    updates = [
        (m.account_id, m.state)
        for m in rig.messages
        if isinstance(m, contracts.DeliveryUpdated)
    ]
    assert ("n-fb", "taking_down") in updates and ("n-fb", "taken_down") in updates
    # The pages keep the newest state per copy: each update is newer than the last.
    for account in ("n-fb", "n-x"):
        times = [
            m.at
            for m in rig.messages
            if isinstance(m, contracts.DeliveryUpdated) and m.account_id == account
        ]
        assert times == sorted(times) and len(set(times)) == len(times), account


def test_a_withdrawal_for_one_platform_takes_down_only_that_copy(tmp_path):
    rig, fb, x = a_school(tmp_path)
    live_post(rig)

    rig.handle(withdrawn(platform="facebook"))
    rig.run()

    assert states(rig) == {"n-fb": "taken_down", "n-x": "live"}
    assert fb.posts == {} and len(x.posts) == 1


def test_a_change_that_keeps_posts_and_a_pupil_not_shown_change_nothing(tmp_path):
    rig, fb, _ = a_school(tmp_path)
    live_post(rig)

    assert rig.handle(withdrawn(cause="expired", take_down=False)) == []
    assert rig.handle(withdrawn(pupil="P2")) == []
    rig.run()

    assert states(rig) == {"n-fb": "live", "n-x": "live"}


def test_never_publish_on_a_pupil_shown_in_three_live_posts(tmp_path):
    rig, fb, x = a_school(tmp_path)
    for post in ("p1", "p2", "p3"):
        live_post(rig, post, pupils=("P1", "P9"))
    live_post(rig, "p4", pupils=("P9",))

    requests = said(rig.handle(withdrawn(cause="restricted")))
    rig.run()

    assert sorted(r.post_id for r in requests) == ["p1", "p2", "p3"]
    assert {r.reason for r in requests} == {"no_longer_shown"}
    for post in ("p1", "p2", "p3"):
        assert set(states(rig, post).values()) == {"taken_down"}
    assert set(states(rig, "p4").values()) == {"live"}
    assert len(fb.posts) == len(x.posts) == 1


def test_a_platform_that_refuses_deletion_opens_a_manual_task(tmp_path):
    rig, fb, _ = a_school(tmp_path)
    fb.delete_errors = [PermanentError("(#200) Permissions error", code="200")]
    live_post(rig)

    rig.handle(withdrawn())
    rig.run()

    assert states(rig) == {"n-fb": domain.MANUAL, "n-x": "taken_down"}
    [opened] = news(rig)
    assert isinstance(opened, contracts.ManualTakedownOpened)
    assert (opened.account_id, opened.owner) == ("n-fb", "owner.fb")
    assert opened.url.startswith("https://facebook.example/")
    engine = bootstrap.delivery_engine(rig.ports)
    with pytest.raises(takedown.TakedownError):
        takedown.close_manual(engine, "p1", "n-fb", "owner.fb", " ")

    gone = takedown.close_manual(
        engine, "p1", "n-fb", "owner.fb", "Deleted it from the Page by hand"
    )

    assert gone.status == "taken_down" and gone.detail == "removed by hand by owner.fb"
    closed = [m for m in rig.messages if isinstance(m, contracts.ManualTakedownClosed)]
    assert [c.closed_by for c in closed] == ["owner.fb"]
    done = news(rig)[-1]
    assert isinstance(done, contracts.TakedownCompleted)
    assert (done.copies, done.manual) == (2, 1)


def test_an_expired_token_during_a_takedown_asks_a_person_and_the_owner_to_reconnect(
    tmp_path,
):
    rig, fb, _ = a_school(tmp_path)
    fb.delete_errors = [AuthError("Error validating access token", code="190")]
    live_post(rig)

    rig.handle(withdrawn(platform="facebook"))
    rig.run()

    assert states(rig)["n-fb"] == domain.MANUAL
    assert rig.accounts.get("n-fb").connection == domain.NEEDS_RECONNECT


def test_a_takedown_that_fails_for_now_is_retried_then_done(tmp_path):
    rig, fb, _ = a_school(tmp_path)
    fb.delete_errors = [TransientError("503")]
    live_post(rig)

    rig.handle(withdrawn(platform="facebook"))
    rig.run()
    assert states(rig)["n-fb"] == domain.TAKEDOWN_FAILED
    later(rig, 61)
    rig.run()

    assert states(rig)["n-fb"] == "taken_down" and fb.deletes == 2


def test_a_worker_killed_mid_delete_deletes_again_without_errors(tmp_path):
    rig, fb, _ = a_school(tmp_path)
    live_post(rig)
    rig.handle(withdrawn(platform="facebook"))
    marker = rig.deliveries.get("p1", "n-fb")
    # A worker claimed it and died before it could record the answer.
    now = rig.ports.now()
    rig.deliveries.claim(
        marker,
        replace(marker, reason="try:1", next_attempt_at=now + timedelta(minutes=2)),
    )
    fb.posts.clear()  # its delete had gone through

    rig.run()
    assert states(rig)["n-fb"] == domain.TAKING_DOWN  # its lease still runs
    later(rig, 130)
    rig.run()

    assert states(rig)["n-fb"] == "taken_down"


def test_a_copy_being_sent_when_consent_changes_comes_down_once_found(tmp_path):
    from services.publishing.platforms.base import AmbiguousError

    rig, fb, x = a_school(tmp_path)
    fb.answer_lost = True
    event = live_post(rig)
    assert states(rig)["n-fb"] == domain.RECONCILING
    assert fb.posts  # it went out; its answer was lost

    rig.handle(withdrawn(platform="facebook"))
    later(rig, 10)
    rig.run()  # found live -> taking down
    rig.run()

    assert states(rig)["n-fb"] == "taken_down" and fb.posts == {}
    assert event and isinstance(AmbiguousError("x"), Exception)


def test_a_post_is_taken_down_on_request_with_a_reason(tmp_path):
    rig, fb, x = a_school(tmp_path)
    live_post(rig)

    def engine():
        return bootstrap.delivery_engine(rig.ports)

    with pytest.raises(takedown.TakedownError):
        takedown.on_request(engine(), "p1", " ", "it.north")
    takedown.on_request(engine(), "p1", "Parent asked by phone", "it.north")
    rig.run()

    assert states(rig) == {"n-fb": "taken_down", "n-x": "taken_down"}
    [requested] = [
        m for m in rig.messages if isinstance(m, contracts.TakedownRequested)
    ]
    assert (requested.by, requested.detail) == ("it.north", "Parent asked by phone")
    with pytest.raises(takedown.TakedownError):
        takedown.on_request(engine(), "p1", "again", "it.north")


def test_a_manual_task_open_for_a_day_is_escalated_once(tmp_path):
    rig, fb, _ = a_school(tmp_path)
    fb.delete_errors = [PermanentError("no", code="x")]
    live_post(rig)
    rig.handle(withdrawn(platform="facebook"))
    rig.run()
    engine = bootstrap.delivery_engine(rig.ports)

    assert takedown.escalate_due(engine) == 0
    later(rig, 25 * 3600)
    assert takedown.escalate_due(bootstrap.delivery_engine(rig.ports)) == 1
    assert takedown.escalate_due(bootstrap.delivery_engine(rig.ports)) == 0
    escalated = news(rig)[-1]
    assert isinstance(escalated, contracts.ManualTakedownEscalated)
    assert escalated.hours_open >= 24


def test_a_redelivered_consent_change_announces_the_same_and_deletes_once(tmp_path):
    rig, fb, _ = a_school(tmp_path)
    live_post(rig)
    change = withdrawn(platform="facebook")

    first = said(rig.handle(change))
    again = said(rig.handle(change))
    rig.run()

    assert first == again
    assert states(rig)["n-fb"] == "taken_down" and fb.deletes == 1
    assert cleared  # the builders' consent answer is what published the post
