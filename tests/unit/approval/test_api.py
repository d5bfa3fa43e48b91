"""Approval's HTTP side: who sees what, the decision command, pages and previews."""

from __future__ import annotations

import pytest

from services.approval import domain
from shared import auth, contracts
from tests.unit.approval.builders import (
    APPROVER,
    SECRET,
    TEACHER,
    a_rig,
    an_identity,
    awaiting,
    bearer,
    redacted,
    seen,
    sent,
    submitted,
)

ROUTES = [
    ("GET", "/"),
    ("GET", "/api/posts"),
    ("GET", "/api/posts/p1"),
    ("POST", "/api/posts/p1/decision"),
    ("GET", "/posts/p1"),
    ("GET", "/posts/p1/photos/ph1/preview.jpg"),
]


def decide(rig, body, identity=APPROVER, post_id="p1"):
    """As the post page does: an approval names what it approves."""
    if body.get("approve") is True and "seen" not in body:
        body = {**body, "seen": seen(rig, post_id)}
    return rig.client().post(
        f"/api/posts/{post_id}/decision", json=body, headers=bearer(identity)
    )


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_every_route_needs_a_signed_in_caller(method, path):
    rig = a_rig()
    awaiting(rig)

    res = rig.client().open(path, method=method, json={"approve": True})

    assert res.status_code == 401


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_teacher_of_another_school_sees_nothing_of_this_one(method, path):
    rig = a_rig()
    awaiting(rig)
    rig.previews.put("previews/p1/ph1.jpg", b"jpeg")
    stranger = an_identity(
        ("south", "teacher"), ("south", "approver"), user_id="u-south"
    )

    res = rig.client().open(
        path, method=method, json={"approve": True}, headers=bearer(stranger)
    )

    if path == "/":
        assert "Sports day" not in res.get_data(as_text=True)
    elif path == "/api/posts":
        assert res.get_json()["posts"] == []
    else:
        assert res.status_code == 403


def test_an_approver_lists_their_schools_posts_filtered_by_status():
    rig = a_rig()
    awaiting(rig, "p1")
    rig.handle(submitted("p2"))
    rig.handle(submitted("p3", school="south"))

    res = rig.client().get(
        "/api/posts?status=awaiting_approval", headers=bearer(APPROVER)
    )

    assert [p["post_id"] for p in res.get_json()["posts"]] == ["p1"]


def test_a_teacher_lists_only_their_own_posts_with_mine():
    rig = a_rig()
    rig.handle(submitted("p1"))
    rig.handle(submitted("p2", author="u-colleague"))

    mine = rig.client().get("/api/posts?mine=1", headers=bearer(TEACHER))
    everything = rig.client().get("/api/posts", headers=bearer(TEACHER))

    assert [p["post_id"] for p in mine.get_json()["posts"]] == ["p1"]
    assert mine.get_json()["posts"][0]["status"] == "redacting"
    assert everything.status_code == 403


def test_a_post_is_visible_to_its_author_and_the_schools_approvers_only():
    rig = a_rig()
    awaiting(rig)
    colleague = an_identity(("north", "teacher"), user_id="u-colleague")

    author = rig.client().get("/api/posts/p1", headers=bearer(TEACHER))
    approver = rig.client().get("/api/posts/p1", headers=bearer(APPROVER))
    other = rig.client().get("/api/posts/p1", headers=bearer(colleague))
    missing = rig.client().get("/api/posts/nope", headers=bearer(APPROVER))

    assert author.status_code == approver.status_code == 200
    assert approver.get_json()["photos"][0]["faces"] == [
        {
            "index": 0,
            "masked": True,
            "reason": "unknown",
            "box": [1, 2, 30, 40],
            "pupil_id": None,
            "consent_versions": [],
        }
    ]
    assert other.status_code == 403
    assert missing.status_code == 404


def test_a_decision_is_applied_at_once_and_recorded_with_what_was_seen():
    rig = a_rig()
    awaiting(rig)
    looked = seen(rig)

    res = decide(rig, {"approve": True, "seen": looked})

    assert res.status_code == 200
    assert res.get_json()["status"] == "approved"
    assert rig.book.get("p1").status == domain.APPROVED
    record, approved = rig.bus.published
    assert record.id == res.get_json()["command_id"]
    assert record.actor == approved.actor == "u-approver"
    assert contracts.parse(record) == contracts.RecordDecision(
        post_id="p1",
        approver_id="u-approver",
        approve=True,
        school_id="north",
        seen={k: contracts.SeenPhoto(**v) for k, v in looked.items()},
    )
    assert isinstance(contracts.parse(approved), contracts.PostApproved)


def test_an_approval_of_a_photo_that_changed_since_it_was_seen_is_refused():
    """The COO named a masked face (a new rendering shows it); an approver who last
    saw it masked must not approve the new one unseen."""
    rig = a_rig()
    awaiting(rig)
    looked = seen(rig)
    rig.handle(  # re-rendered meanwhile (a face named: now shown)
        redacted(masked=False).model_copy(update={"revision": 1, "sha256": "c" * 64})
    )

    res = decide(rig, {"approve": True, "seen": looked})

    assert res.status_code == 409
    assert res.get_json()["error"] == "photo_changed"
    assert rig.book.get("p1").status == domain.AWAITING
    [refusal] = sent(rig)
    assert isinstance(refusal, contracts.DecisionRefused)
    assert (refusal.code, refusal.approver_id) == ("photo_changed", "u-approver")


def test_an_approval_must_say_what_it_approves():
    rig = a_rig()
    awaiting(rig)

    res = decide(rig, {"approve": True, "seen": {}})

    assert res.status_code == 400
    assert rig.book.get("p1").status == domain.AWAITING


def test_of_two_decisions_at_once_one_wins_and_the_other_is_refused_with_409():
    rig = a_rig()
    awaiting(rig)

    first = decide(rig, {"approve": True})
    second = decide(rig, {"approve": False, "reason": "changed my mind"})

    assert (first.status_code, second.status_code) == (200, 409)
    assert rig.book.get("p1").status == domain.APPROVED
    assert [type(m).__name__ for m in sent(rig)] == [
        "RecordDecision",
        "PostApproved",
        "DecisionRefused",
    ]


def test_a_rejection_needs_a_reason():
    rig = a_rig()
    awaiting(rig)

    res = decide(rig, {"approve": False, "reason": " "})

    assert res.status_code == 400
    assert res.get_json()["error"] == "reason_required"
    assert rig.bus.published == []  # refused before any decision was tried


def test_a_decision_body_that_is_not_valid_is_a_400():
    rig = a_rig()
    awaiting(rig)

    res = decide(rig, {"approve": "maybe"})

    assert res.status_code == 400


def test_an_approver_cannot_approve_their_own_post():
    rig = a_rig()
    awaiting(rig, author="u-approver")

    res = decide(rig, {"approve": True})

    assert res.status_code == 403
    assert res.get_json()["error"] == "own_post"


def test_only_an_approver_of_the_posts_school_may_decide():
    rig = a_rig()
    awaiting(rig)
    other = an_identity(("south", "approver"), user_id="u-south")
    admin = an_identity(("north", "admin"), user_id="u-admin")

    assert decide(rig, {"approve": True}, other).status_code == 403
    assert decide(rig, {"approve": True}, admin).status_code == 403
    assert decide(rig, {"approve": True}, TEACHER).status_code == 403
    assert rig.bus.published == []


def test_a_post_not_awaiting_approval_cannot_be_decided():
    rig = a_rig()
    rig.handle(submitted())

    res = decide(rig, {"approve": True})

    assert res.status_code == 409


def test_a_cookie_session_needs_the_csrf_token_to_decide():
    rig = a_rig()
    awaiting(rig)
    client = rig.client()
    client.set_cookie(auth.COOKIE, auth.issue_token(SECRET, APPROVER))

    without = client.post("/api/posts/p1/decision", json={"approve": True})
    with_token = client.post(
        "/api/posts/p1/decision",
        json={"approve": True, "seen": seen(rig)},
        headers={"X-CSRF-Token": auth.csrf_token(SECRET, APPROVER)},
    )

    assert without.status_code == 403
    assert without.get_json()["error"] == "csrf_failed"
    assert with_token.status_code == 200


def test_the_queue_shows_posts_awaiting_approval_for_the_approvers_schools():
    rig = a_rig()
    awaiting(rig, "p1")
    rig.handle(submitted("p2", school="south"))

    res = rig.client().get("/", headers=bearer(APPROVER))

    html = res.get_data(as_text=True)
    assert res.status_code == 200
    assert "/posts/p1" in html and "/posts/p2" not in html
    assert rig.client().get("/", headers=bearer(TEACHER)).status_code == 403


def test_the_post_page_shows_previews_faces_and_the_decision_buttons():
    rig = a_rig()
    awaiting(rig)

    html = (
        rig.client().get("/posts/p1", headers=bearer(APPROVER)).get_data(as_text=True)
    )
    as_author = (
        rig.client().get("/posts/p1", headers=bearer(TEACHER)).get_data(as_text=True)
    )

    assert "/posts/p1/photos/ph1/preview.jpg" in html
    assert "masked (unknown)" in html
    assert 'id="decision"' in html and "data-approve" in html
    assert 'id="decision"' not in as_author


def test_the_preview_is_streamed_from_the_previews_store_and_never_cached():
    rig = a_rig()
    awaiting(rig)
    rig.previews.put("previews/p1/ph1.jpg", b"\xff\xd8\xffpreview")

    res = rig.client().get("/posts/p1/photos/ph1/preview.jpg", headers=bearer(APPROVER))
    missing = rig.client().get(
        "/posts/p1/photos/other/preview.jpg", headers=bearer(APPROVER)
    )

    assert res.status_code == 200
    assert res.data == b"\xff\xd8\xffpreview"
    assert res.mimetype == "image/jpeg"
    assert "no-store" in res.headers["Cache-Control"]
    assert missing.status_code == 404
