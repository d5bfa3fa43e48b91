"""Approval's handlers: the lifecycle, idempotent redelivery, the decision rules."""

from __future__ import annotations

from services.approval import domain
from shared import contracts
from tests.unit.approval.builders import (
    a_rig,
    awaiting,
    decision,
    redacted,
    refused,
    submitted,
)


def test_a_submitted_post_is_opened_and_goes_to_redaction():
    rig = a_rig()

    out = rig.handle(submitted())

    post = rig.book.get("p1")
    assert out == []
    assert post.status == domain.REDACTING
    assert [t.to_status for t in post.history] == [domain.SUBMITTED, domain.REDACTING]
    assert post.history[0].by == "u-teacher"


def test_a_redelivered_submission_changes_nothing():
    rig = a_rig()
    rig.handle(submitted())
    before = rig.book.get("p1")

    out = rig.handle(submitted())

    assert out == []
    assert rig.book.get("p1") == before


def test_the_post_awaits_approval_only_when_every_photo_is_redacted():
    rig = a_rig()
    rig.handle(submitted(photos=("ph1", "ph2")))

    rig.handle(redacted("ph1"))
    halfway = rig.book.get("p1").status
    rig.handle(redacted("ph2"))

    assert halfway == domain.REDACTING
    assert rig.book.get("p1").status == domain.AWAITING


def test_a_redelivered_photo_report_makes_no_second_transition():
    rig = a_rig()
    rig.handle(submitted())
    first = rig.handle(redacted("ph1"))
    before = rig.book.get("p1")

    out = rig.handle(redacted("ph1"))

    assert out == first  # the same fit question again, nothing else
    assert [type(m) for m in out] == [contracts.CheckFit]
    assert rig.book.get("p1") == before


def test_photos_reported_before_the_post_arrives_settle_it_when_it_does():
    rig = a_rig()
    rig.handle(redacted("ph1"))

    rig.handle(submitted())

    assert rig.book.get("p1").status == domain.AWAITING


def test_a_refused_photo_rejects_the_post_with_the_reason():
    rig = a_rig()
    rig.handle(submitted(photos=("ph1", "ph2")))
    rig.handle(redacted("ph1"))

    out = rig.handle(refused("ph2"))

    [rejected] = out
    assert isinstance(rejected, contracts.PostRejected)
    assert rejected.rejected_by is None
    assert "corrupt" in rejected.reason
    post = rig.book.get("p1")
    assert post.status == domain.REJECTED
    assert "corrupt" in post.reason


def test_a_redelivered_refusal_returns_the_same_rejection_without_a_new_transition():
    rig = a_rig()
    rig.handle(submitted())
    first = rig.handle(refused())
    before = rig.book.get("p1")

    again = rig.handle(refused())

    assert again == first
    assert rig.book.get("p1") == before


def test_an_approval_publishes_the_redacted_images_only():
    rig = a_rig()
    awaiting(rig, photos=("ph1", "ph2"), accounts=("newsroom", "web"))

    [approved] = rig.handle(decision())

    assert isinstance(approved, contracts.PostApproved)
    assert approved.approved_by == "u-approver"
    assert approved.accounts == ["newsroom", "web"]
    assert [i.redacted_key for i in approved.images] == [
        "redacted/p1/ph1.jpg",
        "redacted/p1/ph2.jpg",
    ]
    post = rig.book.get("p1")
    assert post.status == domain.APPROVED
    assert post.history[-1].by == "u-approver"


def test_a_redelivered_decision_emits_nothing_again_and_moves_nothing():
    """Its results left with the decision, in one transaction (the outbox)."""
    rig = a_rig()
    awaiting(rig)
    first = rig.handle(decision())
    before = rig.book.get("p1")

    again = rig.handle(decision())

    assert [type(m) for m in first] == [contracts.PostApproved]
    assert again == []
    assert rig.book.get("p1") == before


def test_an_author_cannot_approve_their_own_post():
    rig = a_rig()
    awaiting(rig)

    out = rig.handle(decision(approver="u-teacher"))

    assert_refused(out, "own_post")
    assert rig.book.get("p1").status == domain.AWAITING


def test_a_rejection_without_a_reason_is_not_recorded():
    rig = a_rig()
    awaiting(rig)

    out = rig.handle(decision(approve=False, reason="  "))

    assert_refused(out, "reason_required")
    assert rig.book.get("p1").status == domain.AWAITING


def test_a_rejection_with_a_reason_names_the_approver():
    rig = a_rig()
    awaiting(rig)

    [rejected] = rig.handle(decision(approve=False, reason="wrong event"))

    assert isinstance(rejected, contracts.PostRejected)
    assert rejected.rejected_by == "u-approver"
    assert rejected.reason == "wrong event"
    assert rig.book.get("p1").status == domain.REJECTED


def test_a_decision_on_a_post_still_being_redacted_does_nothing():
    rig = a_rig()
    rig.handle(submitted())

    out = rig.handle(decision())

    assert_refused(out, "not_awaiting_approval")
    assert rig.book.get("p1").status == domain.REDACTING


def test_a_second_approvers_late_decision_does_nothing():
    rig = a_rig()
    awaiting(rig)
    rig.handle(decision())

    out = rig.handle(decision(approver="u-other", approve=False, reason="no"))

    assert_refused(out, "not_awaiting_approval")
    assert rig.book.get("p1").status == domain.APPROVED


def test_a_decision_on_an_unknown_post_does_nothing():
    rig = a_rig()

    assert rig.handle(decision(post_id="nope")) == []


def test_the_post_is_published_once_every_account_published_it():
    rig = a_rig()
    awaiting(rig, accounts=("newsroom", "web"))
    rig.handle(decision())

    rig.handle(published("newsroom"))
    halfway = rig.book.get("p1").status
    rig.handle(published("newsroom"))
    still = rig.book.get("p1").status
    rig.handle(published("web"))

    assert (halfway, still) == (domain.APPROVED, domain.APPROVED)
    post = rig.book.get("p1")
    assert post.status == domain.PUBLISHED
    assert [t.to_status for t in post.history].count(domain.PUBLISHED) == 1


def test_a_failed_publication_fails_the_post_with_the_reason_once():
    rig = a_rig()
    awaiting(rig)
    rig.handle(decision())
    failure = contracts.PublishFailed(
        post_id="p1", school_id="north", account="newsroom", reason="unknown_account"
    )

    rig.handle(failure)
    rig.handle(failure)

    post = rig.book.get("p1")
    assert post.status == domain.FAILED
    assert "unknown_account" in post.reason
    assert [t.to_status for t in post.history].count(domain.FAILED) == 1


def published(account: str) -> contracts.PostPublished:
    return contracts.PostPublished(
        post_id="p1",
        school_id="north",
        account=account,
        target="folder",
        location=f"/x/{account}",
    )


def assert_refused(out: list[contracts.Message], code: str) -> None:
    """Nothing happened, and the trail says why (``approval.decision_refused``)."""
    [refusal] = out
    assert isinstance(refusal, contracts.DecisionRefused)
    assert refusal.code == code
