"""Approval's pure rules: only legal transitions, with who and when."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.approval import domain

AT = datetime(2030, 1, 1, tzinfo=UTC)


def a_post(status: str = domain.AWAITING) -> domain.Post:
    return domain.Post(
        post_id="p1",
        school_id="north",
        author_id="u1",
        caption="",
        accounts=("a",),
        photo_ids=("ph",),
        status=status,
        created_at=AT,
    )


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (domain.REDACTING, domain.APPROVED),
        (domain.AWAITING, domain.PUBLISHED),
        (domain.REJECTED, domain.APPROVED),
        (domain.PUBLISHED, domain.FAILED),
        (domain.SUBMITTED, domain.AWAITING),
    ],
)
def test_an_illegal_transition_is_refused(start, to):
    with pytest.raises(domain.IllegalTransitionError):
        domain.move(a_post(start), to, by=None, at=AT)


def test_a_transition_records_who_when_and_why():
    post = domain.move(a_post(), domain.REJECTED, by="u2", at=AT, reason="blurry")

    assert post.status == domain.REJECTED
    assert post.history[-1] == domain.Transition(
        domain.AWAITING, domain.REJECTED, "u2", AT, "blurry"
    )


def test_the_decision_rules_are_checked_in_order():
    with pytest.raises(domain.ReasonRequiredError):
        domain.check_decision(a_post(), "u2", False, "")
    with pytest.raises(domain.OwnPostError):
        domain.check_decision(a_post(), "u1", True, "")
    with pytest.raises(domain.NotAwaitingApprovalError):
        domain.check_decision(a_post(domain.REDACTING), "u2", True, "")
