"""Who may use intake's routes."""

from __future__ import annotations

from shared import auth
from tests.unit.intake.builders import (
    SECRET,
    a_form,
    a_jpeg,
    a_rig,
    an_identity,
    bearer,
)


def test_an_anonymous_upload_is_401():
    rig = a_rig()

    res = rig.client().post("/api/posts", data=a_form((a_jpeg(), "a.jpg")))

    assert res.status_code == 401


def test_an_approver_who_is_not_a_teacher_cannot_upload():
    rig = a_rig()
    approver = an_identity(("north", "approver"), user_id="u-approver")

    res = rig.client().post(
        "/api/posts", data=a_form((a_jpeg(), "a.jpg")), headers=bearer(approver)
    )

    assert res.status_code == 403


def test_a_teacher_of_school_a_cannot_upload_for_school_b():
    rig = a_rig()
    teacher = an_identity(("north", "teacher"))

    res = rig.client().post(
        "/api/posts",
        data=a_form((a_jpeg(), "a.jpg"), school="south"),
        headers=bearer(teacher),
    )

    assert res.status_code == 403
    assert rig.store.posts == {}


def test_a_cookie_session_needs_the_csrf_token_to_upload():
    rig = a_rig()
    teacher = an_identity(("north", "teacher"))
    client = rig.client()
    client.set_cookie(auth.COOKIE, auth.issue_token(SECRET, teacher))
    client.set_cookie("safepost_device", rig.token(), path="/")

    without = client.post("/api/posts", data=a_form((a_jpeg(), "a.jpg")))
    with_token = client.post(
        "/api/posts",
        data=a_form((a_jpeg(), "a.jpg")),
        headers={"X-CSRF-Token": auth.csrf_token(SECRET, teacher)},
    )

    assert without.status_code == 403
    assert without.get_json()["error"] == "csrf_failed"
    assert with_token.status_code == 201


def test_the_upload_page_is_for_teachers_and_offers_their_schools():
    rig = a_rig()
    teacher = an_identity(("north", "teacher"), ("east", "teacher"))
    approver = an_identity(("north", "approver"), user_id="u-approver")

    page = rig.client().get("/", headers=bearer(teacher))
    refused = rig.client().get("/", headers=bearer(approver))
    anonymous = rig.client().get("/")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<option value="east">' in html and '<option value="north">' in html
    assert "/approval/api/posts?mine=1" in html
    assert refused.status_code == 403
    assert anonymous.status_code == 401
