"""Deletion obligations: receipts from personal devices, confirmations, overdue ones."""

from __future__ import annotations

from datetime import timedelta

from services.intake import handlers
from shared import contracts
from tests.unit.intake.builders import a_form, a_jpeg, a_png, a_rig, an_identity, bearer

TEACHER = an_identity(("north", "teacher"))
IT = an_identity(("north", "it_auditor"), user_id="u-it")


def confirm(rig, receipt_id, identity=TEACHER, **body):
    return rig.client().post(
        f"/api/receipts/{receipt_id}/deletion",
        json=body or {"method": "uploader-unlink"},
        headers=bearer(identity),
    )


def test_each_receipt_from_a_personal_device_opens_a_deletion_obligation():
    rig = a_rig()

    res = rig.upload(a_form((a_jpeg(), "a.jpg"), (a_png(), "b.png")))

    body = res.get_json()
    assert body["delete_from_device"] is True
    assert body["deletion_due_at"] == "2030-03-04T09:15:00+00:00"
    assert set(rig.store.obligations) == {r["receipt_id"] for r in body["receipts"]}
    issued = [
        contracts.parse(e) for e in rig.bus.published if e.type == "receipt.issued"
    ]
    assert {r.receipt_id for r in issued} == set(rig.store.obligations)
    assert all(r.deletion_due_at is not None for r in issued)


def test_a_trust_device_opens_no_obligation():
    rig = a_rig()
    _, token = rig.device(kind="trust")

    res = rig.upload(a_form((a_jpeg(), "a.jpg")), token=token)

    assert res.get_json()["delete_from_device"] is False
    assert rig.store.obligations == {}


def test_an_overdue_obligation_blocks_the_next_upload_until_confirmed():
    rig = a_rig()
    [receipt] = rig.upload(a_form((a_jpeg(), "a.jpg"))).get_json()["receipts"]
    rig.clock.at += timedelta(minutes=16)

    blocked = rig.upload(a_form((a_png(), "b.png")))
    confirmed = confirm(rig, receipt["receipt_id"])
    unblocked = rig.upload(a_form((a_png(), "b.png")))

    assert blocked.status_code == 403
    assert blocked.get_json()["error"] == "deletion_overdue"
    assert confirmed.status_code == 200
    assert confirmed.get_json()["closed_at"] is not None
    assert unblocked.status_code == 201
    done = [
        contracts.parse(e) for e in rig.bus.published if e.type == "deletion.confirmed"
    ]
    assert [(d.receipt_id, d.method, d.late) for d in done] == [
        (receipt["receipt_id"], "uploader-unlink", True)
    ]


def test_an_obligation_within_its_grace_period_does_not_block():
    rig = a_rig()
    rig.upload(a_form((a_jpeg(), "a.jpg")))
    rig.clock.at += timedelta(minutes=14)

    res = rig.upload(a_form((a_png(), "b.png")))

    assert res.status_code == 201


def test_the_block_can_be_switched_off_but_the_overdue_event_is_still_published():
    rig = a_rig(block_overdue=False)
    rig.upload(a_form((a_jpeg(), "a.jpg")))
    rig.clock.at += timedelta(minutes=16)

    res = rig.upload(a_form((a_png(), "b.png")))
    handlers.sweep_overdue(rig.ports)

    assert res.status_code == 201
    assert rig.bus.types().count("deletion.overdue") == 1


def test_the_sweep_publishes_each_overdue_obligation_once():
    rig = a_rig()
    [receipt] = rig.upload(a_form((a_jpeg(), "a.jpg"))).get_json()["receipts"]
    early = handlers.sweep_overdue(rig.ports)
    rig.clock.at += timedelta(minutes=15)

    first = handlers.sweep_overdue(rig.ports)
    second = handlers.sweep_overdue(rig.ports)

    assert (early, first, second) == (0, 1, 0)
    [overdue] = [
        contracts.parse(e) for e in rig.bus.published if e.type == "deletion.overdue"
    ]
    assert overdue.receipt_id == receipt["receipt_id"]
    assert overdue.owner == "u-teacher"


def test_a_confirmation_is_idempotent_and_only_the_owner_or_it_may_confirm():
    rig = a_rig()
    [receipt] = rig.upload(a_form((a_jpeg(), "a.jpg"))).get_json()["receipts"]
    colleague = an_identity(("north", "teacher"), user_id="u-colleague")

    by_colleague = confirm(rig, receipt["receipt_id"], colleague)
    first = confirm(rig, receipt["receipt_id"])
    again = confirm(rig, receipt["receipt_id"])

    assert by_colleague.status_code == 403
    assert first.status_code == again.status_code == 200
    assert rig.bus.types().count("deletion.confirmed") == 1


def test_it_can_resolve_an_obligation_and_it_is_recorded_as_such():
    rig = a_rig()
    [receipt] = rig.upload(a_form((a_jpeg(), "a.jpg"))).get_json()["receipts"]

    res = confirm(rig, receipt["receipt_id"], IT)

    assert res.status_code == 200
    assert res.get_json()["method"] == "it-resolved"


def test_it_sees_overdue_obligations_on_the_devices_listing():
    rig = a_rig()
    rig.upload(a_form((a_jpeg(), "a.jpg")))
    rig.clock.at += timedelta(minutes=20)

    listing = rig.client().get("/api/devices", headers=bearer(IT)).get_json()
    overdue = rig.client().get("/api/obligations", headers=bearer(IT)).get_json()

    [device] = listing["devices"]
    assert (device["open_deletions"], device["overdue_deletions"]) == (1, 1)
    assert [o["overdue"] for o in overdue["obligations"]] == [True]


def test_a_teacher_sees_their_own_open_obligations():
    rig = a_rig()
    rig.upload(a_form((a_jpeg(), "a.jpg")))

    mine = rig.client().get("/api/obligations?mine=1", headers=bearer(TEACHER))
    others = rig.client().get("/api/obligations", headers=bearer(TEACHER))

    assert [o["file"] for o in mine.get_json()["obligations"]] == ["a.jpg"]
    assert others.status_code == 403


def test_the_server_says_which_photos_it_already_holds_for_a_resumed_upload():
    rig = a_rig()
    jpeg = a_jpeg()
    [receipt] = rig.upload(a_form((jpeg, "a.jpg"))).get_json()["receipts"]
    other = an_identity(("north", "teacher"), user_id="u-other")
    ask = {"sha256": [receipt["sha256"], "b" * 64]}

    mine = rig.client().post("/api/photos/held", json=ask, headers=bearer(TEACHER))
    theirs = rig.client().post("/api/photos/held", json=ask, headers=bearer(other))

    [held] = mine.get_json()["held"]
    assert held["receipt_id"] == receipt["receipt_id"]
    assert held["deletion_expected"] is True
    assert theirs.get_json()["held"] == []


def test_a_record_that_fails_after_storing_leaves_no_receipt_and_no_original():
    rig = a_rig()
    rig.token()
    rig.store.fail_posts = True

    res = rig.upload(a_form((a_jpeg(), "a.jpg")))

    assert res.status_code == 503
    assert "receipts" not in res.get_json()
    assert rig.originals.blobs == {}
    assert rig.store.obligations == {}
    assert "receipt.issued" not in rig.bus.types()
