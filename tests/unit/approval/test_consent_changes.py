"""Consent that changes after the photos were decided (issue 8 section 1): a post
not yet live that shows the pupil is re-rendered, the approver told, and an approved
post recalled from publishing; the final gate's hold returns it to the approver."""

from __future__ import annotations

from datetime import date

from services.approval import domain
from shared import contracts
from tests.unit.approval.builders import a_rig, redacted, submitted

APPROVER = "u-approver"


def showing(pupil: str, photo_id: str = "ph1", post_id: str = "p1"):
    event = redacted(photo_id, post_id, masked=False)
    face = event.faces[0].model_copy(
        update={"pupil_id": pupil, "consent_versions": ["7:social_media/*:v1"]}
    )
    return event.model_copy(update={"faces": [face]})


def withdrawn(pupil: str = "P1", school: str = "north") -> contracts.ConsentChanged:
    return contracts.ConsentChanged(
        school_id=school,
        pupil_id=pupil,
        cause="recorded",
        scopes=[
            contracts.ConsentScope(
                purpose="social_media", platform="facebook", state="withdrawn"
            )
        ],
        effective_on=date(2030, 1, 1),
    )


def awaiting(rig, *photos):
    rig.handle(submitted(photos=tuple(p.photo_id for p in photos)))
    for photo in photos:
        rig.handle(photo)
    assert rig.book.get("p1").status == domain.AWAITING


def approve(rig):
    [out] = rig.handle(
        contracts.RecordDecision(post_id="p1", approver_id=APPROVER, approve=True)
    )
    return out


def test_the_approved_post_carries_who_is_shown_and_on_which_consent():
    rig = a_rig()
    awaiting(rig, showing("P1"))

    approved = approve(rig)

    assert approved.round == 1
    [image] = approved.images
    assert [(s.pupil_id, s.consent_versions) for s in image.shown] == [
        ("P1", ["7:social_media/*:v1"])
    ]


def test_a_change_while_awaiting_approval_re_renders_the_photo_and_tells_the_approver():
    rig = a_rig()
    awaiting(rig, showing("P1", "ph1"), redacted("ph2"))

    out = rig.handle(withdrawn("P1"))

    assert [(type(m).__name__, m.photo_id, m.revision) for m in out] == [
        ("ReviseRedaction", "ph1", 1)
    ]
    post = rig.book.get("p1")
    assert post.status == domain.AWAITING
    [notice] = post.notices
    assert (notice.pupil_id, notice.stage) == ("P1", domain.AWAITING)
    assert notice.changes == ("social_media/facebook: withdrawn",)
    # The approver cannot approve the old rendering while the new one is made.
    [refusal] = rig.handle(
        contracts.RecordDecision(post_id="p1", approver_id=APPROVER, approve=True)
    )
    assert (type(refusal), refusal.code) == (contracts.DecisionRefused, "rerendering")
    assert rig.book.get("p1").status == domain.AWAITING


def test_an_approved_post_not_yet_live_is_recalled_and_returned_to_the_approver():
    rig = a_rig()
    awaiting(rig, showing("P1"))
    approve(rig)

    out = rig.handle(withdrawn("P1"))

    kinds = [type(m).__name__ for m in out]
    assert kinds == ["ReviseRedaction", "PostRecalled"]
    recalled = out[1]
    assert (recalled.post_id, recalled.round, recalled.pupils) == ("p1", 1, ["P1"])
    post = rig.book.get("p1")
    assert post.status == domain.AWAITING and post.decided_by is None
    assert post.history[-1].reason.startswith("consent changed after approval")


def test_the_re_rendered_post_approved_again_is_the_next_round():
    rig = a_rig()
    awaiting(rig, showing("P1"))
    approve(rig)
    [revise, _] = rig.handle(withdrawn("P1"))
    masked_now = redacted("ph1").model_copy(update={"revision": revise.revision})
    rig.handle(masked_now)

    again = approve(rig)

    assert again.round == 2
    assert again.images[0].shown == []


def test_a_change_for_a_pupil_the_post_does_not_show_changes_nothing():
    rig = a_rig()
    awaiting(rig, showing("P1"))

    assert rig.handle(withdrawn("P2")) == []
    assert rig.handle(withdrawn("P1", school="south")) == []
    assert rig.book.get("p1").notices == ()


def test_a_live_post_is_left_alone_here():
    rig = a_rig()
    awaiting(rig, showing("P1"))
    approve(rig)
    rig.handle(
        contracts.PostPublished(
            post_id="p1",
            school_id="north",
            account="newsroom",
            target="folder",
            location="x",
        )
    )

    assert rig.handle(withdrawn("P1")) == []
    assert rig.book.get("p1").status == domain.PUBLISHED


def test_the_final_gates_hold_returns_the_post_to_the_approver_without_a_recall():
    rig = a_rig()
    awaiting(rig, showing("P1"))
    approve(rig)

    out = rig.handle(
        contracts.PublicationHeld(
            post_id="p1",
            school_id="north",
            round=1,
            reason="consent_changed",
            pupils=["P1"],
        )
    )

    assert [type(m).__name__ for m in out] == ["ReviseRedaction"]
    post = rig.book.get("p1")
    assert post.status == domain.AWAITING
    assert [(n.pupil_id, n.cause) for n in post.notices] == [("P1", "final_check")]
    # A hold of an older round (already handled) changes nothing.
    assert (
        rig.handle(
            contracts.PublicationHeld(
                post_id="p1", school_id="north", round=1, reason="consent_changed"
            )
        )
        == []
    )


def granted_again(version: str, cause: str = "recorded") -> contracts.ConsentChanged:
    return contracts.ConsentChanged(
        school_id="north",
        pupil_id="P1",
        cause=cause,
        scopes=[
            contracts.ConsentScope(
                purpose="social_media", state="granted", version=version
            ),
            contracts.ConsentScope(purpose="press", state="withdrawn", version="9"),
        ],
        effective_on=date(2030, 1, 1),
    )


def test_a_late_announcement_of_the_consent_the_decision_used_changes_nothing():
    rig = a_rig()
    awaiting(rig, showing("P1"))

    # The import that granted the consent is announced after the photo was decided
    # on it; a withdrawal for a purpose the post does not need does not matter.
    assert rig.handle(granted_again("7:social_media/*:v1")) == []
    assert rig.book.get("p1").notices == ()


def test_a_newer_record_or_an_expiry_of_the_one_used_is_decided_again():
    rig = a_rig()
    awaiting(rig, showing("P1"))

    newer = rig.handle(granted_again("8:social_media/*:v2"))
    expired = rig.handle(
        contracts.ConsentChanged(
            school_id="north",
            pupil_id="P1",
            cause="expired",
            scopes=[
                contracts.ConsentScope(
                    purpose="social_media",
                    state="expired",
                    version="7:social_media/*:v1",
                )
            ],
            effective_on=date(2030, 1, 1),
        )
    )

    assert [type(m).__name__ for m in newer] == ["ReviseRedaction"]
    assert [type(m).__name__ for m in expired] == ["ReviseRedaction"]


def test_a_pupil_who_may_no_longer_be_shown_is_always_decided_again():
    rig = a_rig()
    awaiting(rig, showing("P1"))

    out = rig.handle(
        contracts.ConsentChanged(
            school_id="north",
            pupil_id="P1",
            cause="restricted",
            scopes=[contracts.ConsentScope(purpose="social_media", state="no_consent")],
            effective_on=date(2030, 1, 1),
        )
    )

    assert [type(m).__name__ for m in out] == ["ReviseRedaction"]
