"""The final gate (issue 8 section 1): publishing calls no platform unless consent
says the decisions the approver saw are still current; a recalled round never goes."""

from __future__ import annotations

from services.publishing import domain
from shared import contracts
from tests.unit.publishing.builders import a_rig, approved, cleared, said
from tests.unit.publishing.fakes import RecordingAdapter


def shown(event: contracts.PostApproved, *pupils: str) -> contracts.PostApproved:
    image = event.images[0].model_copy(
        update={
            "shown": [
                contracts.ShownFace(
                    pupil_id=p, consent_versions=[f"7:social_media/*:v{n}"]
                )
                for n, p in enumerate(pupils, start=1)
            ]
        }
    )
    return event.model_copy(update={"images": [image, *event.images[1:]]})


def test_an_approved_post_asks_consent_first_and_calls_no_platform(tmp_path):
    target = RecordingAdapter("folder")
    rig = a_rig(tmp_path, targets={"folder": target})
    event = shown(approved(rig), "P1", "P2")

    [ask] = rig.handle(event)

    assert isinstance(ask, contracts.VerifyPostConsent)
    assert (ask.post_id, ask.round, ask.accounts) == ("p1", 1, ["newsroom"])
    assert [(s.photo_id, s.pupil_id, s.consent_versions) for s in ask.shown] == [
        ("ph1", "P1", ["7:social_media/*:v1"]),
        ("ph1", "P2", ["7:social_media/*:v2"]),
    ]
    assert target.calls == 0
    assert rig.deliveries.get("p1", "newsroom") is None


def test_consent_current_publishes(tmp_path):
    target = RecordingAdapter("folder")
    rig = a_rig(tmp_path, targets={"folder": target})
    event = shown(approved(rig), "P1")
    rig.handle(event)

    [pending] = rig.handle(cleared(event))
    [published] = rig.run()

    assert (pending.state, pending.account_id) == ("pending", "newsroom")
    assert isinstance(published, contracts.PostPublished)
    assert target.calls == 1


def test_consent_changed_holds_the_post_and_calls_no_platform(tmp_path):
    target = RecordingAdapter("folder")
    rig = a_rig(tmp_path, targets={"folder": target})
    event = shown(approved(rig), "P1")
    rig.handle(event)

    [held] = said(rig.handle(cleared(event, current=False, stale=("P1",))))

    assert isinstance(held, contracts.PublicationHeld)
    assert (held.post_id, held.round, held.reason, held.pupils) == (
        "p1",
        1,
        "consent_changed",
        ["P1"],
    )
    assert target.calls == 0
    marker = rig.deliveries.get("p1", "newsroom")
    assert (marker.status, marker.reason) == (domain.HELD, "consent_changed")
    # A late "current" for the same round (a redelivery) sends nothing either.
    assert rig.handle(cleared(event)) == []
    assert target.calls == 0


def test_a_recalled_round_never_goes_out_even_if_consent_then_says_current(tmp_path):
    target = RecordingAdapter("folder")
    rig = a_rig(tmp_path, targets={"folder": target})
    event = shown(approved(rig), "P1")
    rig.handle(event)
    recall = contracts.PostRecalled(
        post_id="p1", school_id="north", round=1, reason="consent_changed"
    )

    rig.handle(recall)

    assert rig.handle(cleared(event)) == []
    assert target.calls == 0
    assert rig.deliveries.get("p1", "newsroom").status == domain.HELD


def test_a_round_recalled_before_it_arrived_is_not_sent(tmp_path):
    target = RecordingAdapter("folder")
    rig = a_rig(tmp_path, targets={"folder": target})
    event = approved(rig)
    rig.handle(
        contracts.PostRecalled(
            post_id="p1", school_id="north", round=1, reason="consent_changed"
        )
    )

    assert rig.handle(event) == []
    assert rig.handle(cleared(event)) == []
    assert target.calls == 0


def test_a_re_approval_goes_out_and_the_older_round_is_ignored(tmp_path):
    target = RecordingAdapter("folder")
    rig = a_rig(tmp_path, targets={"folder": target})
    first = approved(rig)
    rig.handle(first)
    rig.handle(cleared(first, current=False, stale=("P1",)))
    second = first.model_copy(update={"round": 2})

    [ask] = rig.handle(second)
    rig.handle(cleared(second))
    [published] = rig.run()

    assert isinstance(ask, contracts.VerifyPostConsent) and ask.round == 2
    assert isinstance(published, contracts.PostPublished)
    assert rig.handle(first) == [] and rig.handle(cleared(first)) == []
    assert rig.run() == []
    assert target.calls == 1


def test_consents_answer_arriving_again_never_resends_a_copy_that_may_exist(tmp_path):
    """A delivery whose answer was lost and not found again waits for a person
    (unconfirmed): a repeated ``consent.post_verified`` must not make it pending (a
    second live copy on the platform, seen in the fault suite)."""
    from dataclasses import replace

    target = RecordingAdapter("folder")
    rig = a_rig(tmp_path, targets={"folder": target})
    event = shown(approved(rig), "P1")
    rig.handle(event)
    [pending] = rig.handle(cleared(event))
    marker = rig.deliveries.get("p1", "newsroom")
    assert marker is not None
    rig.deliveries.record(
        replace(marker, status=domain.UNCONFIRMED, reason="answer lost, not found")
    )

    rig.handle(cleared(event))  # the same answer, delivered again
    rig.run()

    after = rig.deliveries.get("p1", "newsroom")
    assert after is not None and after.status == domain.UNCONFIRMED
    assert target.calls == 0
