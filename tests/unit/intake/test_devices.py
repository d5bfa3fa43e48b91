"""Devices: who may upload from what; enrolment codes, tokens; refusals audited."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from shared import contracts
from tests.unit.intake.builders import a_form, a_jpeg, a_rig, an_identity, bearer

TEACHER = an_identity(("north", "teacher"))
IT = an_identity(("north", "it_auditor"), user_id="u-it")
COO = an_identity(("*", "approver"), user_id="u-coo")


def refusals(rig):
    return [contracts.parse(e) for e in rig.bus.published if e.type == "upload.refused"]


def test_an_upload_without_a_device_token_is_refused_and_the_attempt_audited():
    rig = a_rig()

    res = rig.upload(a_form((a_jpeg(), "a.jpg")), token=None)

    assert res.status_code == 403
    assert res.get_json()["error"] == "device_required"
    [refused] = refusals(rig)
    assert (refused.reason, refused.user_id, refused.school_id) == (
        "device_required",
        "u-teacher",
        "north",
    )
    assert rig.store.posts == {}


def test_an_unknown_device_token_is_refused_with_a_reason_and_audited():
    rig = a_rig()

    res = rig.upload(a_form((a_jpeg(), "a.jpg")), token="not-a-real-token")

    assert res.status_code == 403
    assert res.get_json()["error"] == "unknown_device"
    assert [r.reason for r in refusals(rig)] == ["unknown_device"]
    assert rig.originals.blobs == {}


def test_a_pending_device_is_refused_until_approved():
    rig = a_rig()
    device_id, token = rig.device(status="pending")

    refused = rig.upload(a_form((a_jpeg(), "a.jpg")), token=token)
    rig.client().post(f"/api/devices/{device_id}/approve", headers=bearer(COO))
    accepted = rig.upload(a_form((a_jpeg(), "a.jpg")), token=token)

    assert refused.status_code == 403
    assert refused.get_json()["error"] == "device_pending"
    assert [r.device_id for r in refusals(rig)] == [device_id]
    assert accepted.status_code == 201


def test_revocation_takes_effect_on_the_next_request():
    rig = a_rig()
    device_id, token = rig.device()
    first = rig.upload(a_form((a_jpeg(), "a.jpg")), token=token)

    revoked = rig.client().post(
        f"/api/devices/{device_id}/revoke", json={"reason": "lost"}, headers=bearer(IT)
    )
    second = rig.upload(a_form((a_jpeg((1, 2, 3)), "b.jpg")), token=token)

    assert first.status_code == 201
    assert revoked.status_code == 200
    assert revoked.get_json()["status"] == "revoked"
    assert second.status_code == 403
    assert second.get_json()["error"] == "device_revoked"
    assert "device.revoked" in rig.bus.types()
    assert len(refusals(rig)) == 1


def test_a_device_used_by_a_staff_member_it_does_not_belong_to_is_refused():
    rig = a_rig()
    _, token = rig.device(owner="u-teacher")
    colleague = an_identity(("north", "teacher"), user_id="u-colleague")

    res = rig.upload(a_form((a_jpeg(), "a.jpg")), identity=colleague, token=token)

    assert res.status_code == 403
    assert res.get_json()["error"] == "device_not_yours"
    [refused] = refusals(rig)
    assert refused.user_id == "u-colleague"


def test_a_device_registered_for_another_school_is_refused():
    rig = a_rig()
    _, token = rig.device(school="south")
    both = an_identity(("north", "teacher"), ("south", "teacher"))

    res = rig.upload(a_form((a_jpeg(), "a.jpg")), identity=both, token=token)

    assert res.status_code == 403
    assert res.get_json()["error"] == "device_wrong_school"


def registered(rig, kind="personal"):
    res = rig.client().post(
        "/api/devices",
        json={"school": "north", "owner": "u-teacher", "kind": kind, "name": "Pixel"},
        headers=bearer(IT),
    )
    assert res.status_code == 201, res.get_json()
    return res.get_json()["device_id"]


def a_code(rig, device_id):
    res = rig.client().post(
        f"/api/devices/{device_id}/enrolment-code", headers=bearer(IT)
    )
    assert res.status_code == 201, res.get_json()
    return res.get_json()["code"]


def test_the_token_is_shown_once_and_kept_only_as_its_sha256():
    rig = a_rig()
    device_id = registered(rig)

    enrolled = rig.client().post(
        "/api/enrol", json={"code": a_code(rig, device_id)}, headers=bearer(TEACHER)
    )
    listing = rig.client().get("/api/devices", headers=bearer(IT))
    shown = rig.client().get(f"/api/devices/{device_id}", headers=bearer(IT))

    assert enrolled.status_code == 201
    token = enrolled.get_json()["token"]
    assert len(token) >= 43  # 32 random bytes
    assert rig.store.tokens[device_id] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in listing.get_data(as_text=True)
    assert token not in shown.get_data(as_text=True)
    assert all(token not in e.model_dump_json() for e in rig.bus.published)


def test_an_enrolment_code_works_once():
    rig = a_rig()
    code = a_code(rig, registered(rig))

    first = rig.client().post(
        "/api/enrol", json={"code": code.lower()}, headers=bearer(TEACHER)
    )
    again = rig.client().post(
        "/api/enrol", json={"code": code}, headers=bearer(TEACHER)
    )

    assert first.status_code == 201
    assert again.status_code == 403
    assert again.get_json()["error"] == "enrolment_code_used"


def test_an_enrolment_code_expires_after_fifteen_minutes():
    rig = a_rig()
    code = a_code(rig, registered(rig))
    rig.clock.at += timedelta(minutes=15)

    res = rig.client().post("/api/enrol", json={"code": code}, headers=bearer(TEACHER))

    assert res.status_code == 403
    assert res.get_json()["error"] == "enrolment_code_expired"


def test_an_unknown_enrolment_code_is_refused():
    rig = a_rig()

    res = rig.client().post(
        "/api/enrol", json={"code": "AAAA-BBBB-CCCC"}, headers=bearer(TEACHER)
    )

    assert res.status_code == 403
    assert res.get_json()["error"] == "enrolment_code_invalid"


def test_enrolling_again_replaces_the_token_and_the_old_one_stops_working():
    rig = a_rig()
    device_id = registered(rig)
    rig.client().post(f"/api/devices/{device_id}/approve", headers=bearer(COO))
    old = rig.client().post(
        "/api/enrol", json={"code": a_code(rig, device_id)}, headers=bearer(TEACHER)
    )
    new = rig.client().post(
        "/api/enrol", json={"code": a_code(rig, device_id)}, headers=bearer(TEACHER)
    )

    with_old = rig.upload(a_form((a_jpeg(), "a.jpg")), token=old.get_json()["token"])
    with_new = rig.upload(a_form((a_jpeg(), "a.jpg")), token=new.get_json()["token"])

    assert with_old.status_code == 403
    assert with_new.status_code == 201


def test_a_browser_enrols_with_an_httponly_cookie_and_never_sees_the_token():
    rig = a_rig()
    device_id = registered(rig)
    rig.client().post(f"/api/devices/{device_id}/approve", headers=bearer(COO))
    client = rig.client()

    res = client.post(
        "/api/enrol-browser",
        json={"code": a_code(rig, device_id)},
        headers=bearer(TEACHER),
    )
    cookie = client.get_cookie("safepost_device")
    upload = client.post(
        "/api/posts",
        data=a_form((a_jpeg(), "a.jpg")),
        headers=bearer(TEACHER),
        content_type="multipart/form-data",
    )

    assert res.status_code == 201
    assert "token" not in res.get_json()
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"
    assert (
        rig.store.tokens[device_id] == hashlib.sha256(cookie.value.encode()).hexdigest()
    )
    assert upload.status_code == 201


def test_a_browser_cannot_enrol_with_a_colleagues_code_and_the_code_stays_unused():
    rig = a_rig()
    code = a_code(rig, registered(rig))
    colleague = an_identity(("north", "teacher"), user_id="u-colleague")

    stolen = rig.client().post(
        "/api/enrol-browser", json={"code": code}, headers=bearer(colleague)
    )
    owner = rig.client().post(
        "/api/enrol-browser", json={"code": code}, headers=bearer(TEACHER)
    )

    assert stolen.status_code == 403
    assert stolen.get_json()["error"] == "device_not_yours"
    assert owner.status_code == 201


def test_only_it_or_admin_register_and_only_approver_admin_or_it_approve():
    rig = a_rig()
    device_id = registered(rig)
    other_it = an_identity(("south", "it_auditor"), user_id="u-it-south")

    by_teacher = rig.client().post(
        "/api/devices",
        json={"school": "north", "owner": "u-teacher", "kind": "trust"},
        headers=bearer(TEACHER),
    )
    by_coo = rig.client().post(
        "/api/devices",
        json={"school": "north", "owner": "u-teacher", "kind": "trust"},
        headers=bearer(COO),
    )
    teacher_approves = rig.client().post(
        f"/api/devices/{device_id}/approve", headers=bearer(TEACHER)
    )
    other_school_approves = rig.client().post(
        f"/api/devices/{device_id}/approve", headers=bearer(other_it)
    )
    coo_approves = rig.client().post(
        f"/api/devices/{device_id}/approve", headers=bearer(COO)
    )

    assert by_teacher.status_code == 403
    assert by_coo.status_code == 403
    assert teacher_approves.status_code == 403
    assert other_school_approves.status_code == 403
    assert coo_approves.status_code == 200
    body = coo_approves.get_json()
    assert (body["status"], body["approved_by"]) == ("approved", "u-coo")
    approved = [e for e in rig.bus.published if e.type == "device.approved"]
    assert [e.actor for e in approved] == ["u-coo"]


def test_registration_approval_and_revocation_are_published_for_the_audit_trail():
    rig = a_rig()
    device_id = registered(rig)

    rig.client().post(f"/api/devices/{device_id}/approve", headers=bearer(COO))
    rig.client().post(f"/api/devices/{device_id}/revoke", headers=bearer(IT))
    again = rig.client().post(f"/api/devices/{device_id}/approve", headers=bearer(COO))

    assert [t for t in rig.bus.types() if t.startswith("device.")] == [
        "device.registered",
        "device.approved",
        "device.revoked",
    ]
    assert again.status_code == 409
    assert rig.pending() == []


def test_a_device_for_an_odd_owner_or_kind_is_refused():
    rig = a_rig()

    res = rig.client().post(
        "/api/devices",
        json={"school": "north", "owner": "u-teacher", "kind": "borrowed"},
        headers=bearer(IT),
    )

    assert res.status_code == 400
