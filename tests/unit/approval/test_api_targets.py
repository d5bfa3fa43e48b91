"""The pages and JSON show, per target account, whether the post fits and its state
there; an approval is refused while an answer says the post does not fit; no server
path ever reaches a teacher or an approver."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from shared import contracts
from tests.unit.approval.builders import (
    APPROVER,
    TEACHER,
    a_fit,
    a_rig,
    awaiting,
    bearer,
    decision,
    delivery,
    fit_checked,
    seen,
    sent,
)

TOO_LONG = "The caption is 312 characters with the footer; X allows 280."
X_NOTE = "X charges US$0.015 for this post (text); see X's pricing."
FOLDER_PATH = "/srv/safepost/published/north/newsroom/p1"
# Anything that looks like an absolute file path outside a web address.
PATHLIKE = re.compile(r"(?<![\w:/.])/(?:srv|var|tmp|home|data|opt)/")


def decide(rig, body, identity=APPROVER, post_id="p1"):
    """As the post page does: an approval names what it approves."""
    if body.get("approve") is True and "seen" not in body:
        body = {**body, "seen": seen(rig, post_id)}
    return rig.client().post(
        f"/api/posts/{post_id}/decision", json=body, headers=bearer(identity)
    )


def two_accounts(rig, *tweets_problems: str) -> None:
    awaiting(rig, accounts=("newsroom", "tweets"), checked=False)
    rig.handle(
        fit_checked(
            "p1",
            a_fit("newsroom", name="School newsroom"),
            a_fit(
                "tweets", *tweets_problems, platform="x", name="Trust X", note=X_NOTE
            ),
        )
    )


def live_everywhere(rig) -> None:
    """Approved, live on X (a web address) and in the school's folder (a path)."""
    two_accounts(rig)
    [approved] = rig.handle(decision())
    assert isinstance(approved, contracts.PostApproved)
    rig.handle(
        contracts.PostPublished(
            post_id="p1",
            school_id="north",
            account="newsroom",
            target="folder",
            location=FOLDER_PATH,
        )
    )
    rig.handle(
        delivery(
            "live",
            account="tweets",
            platform="x",
            url="https://x.com/school/status/1",
            attempts=1,
        )
    )
    rig.handle(
        contracts.PostPublished(
            post_id="p1",
            school_id="north",
            account="tweets",
            target="x",
            location="https://x.com/school/status/1",
        )
    )


# -- the decision -------------------------------------------------------------------


def test_an_approval_is_refused_with_the_reasons_while_an_account_does_not_fit():
    rig = a_rig()
    two_accounts(rig, TOO_LONG)

    res = decide(rig, {"approve": True})

    assert res.status_code == 409
    body = res.get_json()
    assert body["error"] == "does_not_fit"
    assert body["reasons"] == [f"Trust X (x): {TOO_LONG}"]
    assert "never shortens a caption or crops a photo" in body["message"]
    assert TOO_LONG in body["message"]
    assert [type(m).__name__ for m in sent(rig)] == ["DecisionRefused"]


def test_the_post_can_still_be_rejected_for_the_teacher_to_change_it():
    rig = a_rig()
    two_accounts(rig, TOO_LONG)

    res = decide(rig, {"approve": False, "reason": "Shorten the caption for X"})

    assert res.status_code == 200


def test_an_approval_goes_through_once_every_account_fits():
    rig = a_rig()
    two_accounts(rig)

    res = decide(rig, {"approve": True})

    assert res.status_code == 200


# -- what the approver sees ---------------------------------------------------------


def test_the_json_has_each_accounts_fit_in_words_and_the_note():
    rig = a_rig()
    two_accounts(rig, TOO_LONG)

    post = rig.client().get("/api/posts/p1", headers=bearer(APPROVER)).get_json()

    assert post["targets"] == [
        {
            "account_id": "newsroom",
            "name": "School newsroom",
            "platform": "folder",
            "fit": {"state": "fits", "text": "Fits", "problems": [], "note": ""},
            "delivery": None,
        },
        {
            "account_id": "tweets",
            "name": "Trust X",
            "platform": "x",
            "fit": {
                "state": "does_not_fit",
                "text": "Does not fit",
                "problems": [TOO_LONG],
                "note": X_NOTE,
            },
            "delivery": None,
        },
    ]
    assert post["does_not_fit"] == [f"Trust X (x): {TOO_LONG}"]
    assert post["fit_checking"] is False


def test_while_no_answer_has_come_the_page_says_checking():
    rig = a_rig()
    awaiting(rig, checked=False)

    res = rig.client().get("/posts/p1", headers=bearer(APPROVER))
    post = rig.client().get("/api/posts/p1", headers=bearer(APPROVER)).get_json()

    html = res.get_data(as_text=True)
    assert "Checking…" in html and 'id="fit-checking"' in html
    assert post["fit_checking"] is True
    assert post["targets"][0]["fit"]["state"] == "checking"


def test_the_page_shows_each_problem_and_the_rule_and_disables_approve():
    rig = a_rig()
    two_accounts(rig, TOO_LONG)

    html = (
        rig.client().get("/posts/p1", headers=bearer(APPROVER)).get_data(as_text=True)
    )

    assert "Trust X" in html and "School newsroom" in html
    assert TOO_LONG in html
    assert "X charges US$0.015" in html
    assert "a post that does not fit every account cannot be approved" in html
    assert "This post cannot be approved" in html
    approve = re.search(r"<button[^>]*data-approve=\"true\"[^>]*>", html).group(0)
    assert "disabled" in approve


def test_a_post_that_fits_everywhere_can_be_approved_on_the_page():
    rig = a_rig()
    two_accounts(rig)

    html = (
        rig.client().get("/posts/p1", headers=bearer(APPROVER)).get_data(as_text=True)
    )

    approve = re.search(r"<button[^>]*data-approve=\"true\"[^>]*>", html).group(0)
    assert "disabled" not in approve
    assert 'id="does-not-fit" class="error" role="alert" hidden' in html


def test_the_page_shows_each_accounts_state_with_a_link_to_the_live_post():
    rig = a_rig()
    live_everywhere(rig)

    html = (
        rig.client().get("/posts/p1", headers=bearer(APPROVER)).get_data(as_text=True)
    )

    assert (
        'Live — <a href="https://x.com/school/status/1" target="_blank" '
        'rel="noopener noreferrer">open it</a>'
    ) in html
    assert "Live — published to the school&#39;s folder" in html


def test_a_retry_a_wait_and_a_failure_read_in_words():
    rig = a_rig()
    two_accounts(rig)
    rig.handle(decision())
    retry_at = datetime(2030, 1, 1, 10, 42, tzinfo=UTC)
    rig.handle(
        delivery(
            "waiting",
            account="tweets",
            platform="x",
            reason="retrying",
            attempts=1,
            retry_at=retry_at,
        )
    )
    rig.handle(
        delivery(
            "failed",
            account="newsroom",
            platform="folder",
            reason="write_failed",
            detail=f"[Errno 28] No space left on device: '{FOLDER_PATH}'",
        )
    )

    post = rig.client().get("/api/posts/p1", headers=bearer(APPROVER)).get_json()

    states = {t["account_id"]: t["delivery"] for t in post["targets"]}
    assert states["tweets"]["text"] == "Retrying at 10:42 UTC (attempt 2)"
    assert states["tweets"]["retry_at"] == retry_at.isoformat()
    assert states["tweets"]["attempts"] == 1
    assert states["newsroom"]["text"] == (
        "Failed: [Errno 28] No space left on device: '(a file on the server)'"
    )


# -- what the teacher sees ----------------------------------------------------------


def test_my_posts_lists_each_accounts_state_with_the_live_link():
    rig = a_rig()
    live_everywhere(rig)

    res = rig.client().get("/api/posts?mine=1", headers=bearer(TEACHER))

    [post] = res.get_json()["posts"]
    states = {t["account_id"]: t["delivery"] for t in post["targets"]}
    assert states["tweets"]["text"] == "Live — open it"
    assert states["tweets"]["url"] == "https://x.com/school/status/1"
    assert states["newsroom"]["text"] == "Live — published to the school's folder"
    assert states["newsroom"]["url"] == ""
    assert post["status"] == "published"


def test_no_server_path_reaches_a_teacher_in_json_or_html():
    rig = a_rig()
    live_everywhere(rig)
    rig.handle(
        contracts.PublishFailed(
            post_id="p1",
            school_id="north",
            account="newsroom",
            reason="write_failed",
            detail=f"Permission denied: '{FOLDER_PATH}'",
        )
    )
    rig.handle(
        delivery(
            "takedown_failed",
            account="newsroom",
            platform="folder",
            minute=30,
            detail=f"cannot remove {FOLDER_PATH}/01-ph1.jpg",
        )
    )

    client = rig.client()
    seen = [
        json.dumps(client.get("/api/posts?mine=1", headers=bearer(TEACHER)).get_json()),
        json.dumps(client.get("/api/posts/p1", headers=bearer(TEACHER)).get_json()),
        client.get("/posts/p1", headers=bearer(TEACHER)).get_data(as_text=True),
        client.get("/posts/p1", headers=bearer(APPROVER)).get_data(as_text=True),
    ]

    for text in seen:
        assert FOLDER_PATH not in text
        assert "published/north" not in text
        assert not PATHLIKE.search(text), PATHLIKE.search(text)
    assert "Taking it down failed: cannot remove (a file on the server)" in seen[2]


def test_a_teachers_post_awaiting_approval_says_why_it_does_not_fit():
    rig = a_rig()
    two_accounts(rig, TOO_LONG)

    [post] = (
        rig.client()
        .get("/api/posts?mine=1", headers=bearer(TEACHER))
        .get_json()["posts"]
    )

    tweets = next(t for t in post["targets"] if t["account_id"] == "tweets")
    assert tweets["fit"]["problems"] == [TOO_LONG]
    assert tweets["delivery"] is None
