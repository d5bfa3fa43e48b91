"""POST /api/posts: receipts, refusals, the store failing, the broker down."""

from __future__ import annotations

import hashlib

from shared import contracts
from tests.support.bus import InMemoryBus
from tests.unit.intake.builders import a_form, a_jpeg, a_png, a_rig, an_identity
from tests.unit.intake.fakes import FailingBlobStore

TEACHER = an_identity(("north", "teacher"))


def upload(rig, form, identity=TEACHER):
    return rig.upload(form, identity)


def test_an_upload_stores_each_original_and_answers_a_receipt_per_file():
    rig = a_rig()
    jpeg, png = a_jpeg(), a_png()

    res = upload(rig, a_form((jpeg, "a.jpg"), (png, "b.png")))

    assert res.status_code == 201
    body = res.get_json()
    post_id = body["post_id"]
    assert post_id in rig.store.posts
    first, second = body["receipts"]
    assert first["file"] == "a.jpg"
    assert first["sha256"] == hashlib.sha256(jpeg).hexdigest()
    assert first["bytes"] == len(jpeg)
    assert first["stored_at"] == f"originals/{post_id}/{first['sha256']}.jpg"
    assert second["stored_at"].endswith(".png")
    assert rig.originals.get(first["stored_at"]) == jpeg
    assert rig.originals.get(second["stored_at"]) == png


def test_an_upload_publishes_post_submitted_as_the_teacher_and_marks_the_outbox_sent():
    rig = a_rig()

    res = upload(
        rig,
        a_form((a_jpeg(), "a.jpg"), accounts="newsroom, web", publish_on="2030-05-01"),
    )

    assert res.status_code == 201
    [envelope] = [e for e in rig.bus.published if e.type == "post.submitted"]
    assert envelope.actor == "u-teacher"
    message = contracts.parse(envelope)
    assert isinstance(message, contracts.PostSubmitted)
    assert message.accounts == ["newsroom", "web"]
    assert message.school_id == "north"
    assert message.author_id == "u-teacher"
    assert str(message.publish_on) == "2030-05-01"
    assert message.photos[0].original_key == res.get_json()["receipts"][0]["stored_at"]
    assert rig.pending() == []


def test_repeated_account_fields_are_accepted():
    rig = a_rig()
    form = a_form((a_jpeg(), "a.jpg"))
    form["accounts"] = ["newsroom", "web"]

    upload(rig, form)

    [message] = [
        contracts.parse(e) for e in rig.bus.published if e.type == "post.submitted"
    ]
    assert message.accounts == ["newsroom", "web"]


def test_an_empty_file_is_refused_and_nothing_is_kept():
    rig = a_rig()

    res = upload(rig, a_form((a_jpeg(), "a.jpg"), (b"", "empty.jpg")))

    assert res.status_code == 400
    assert res.get_json()["error"] == "empty_file"
    assert rig.originals.blobs == {}
    assert rig.store.posts == {}


def test_a_file_over_the_limit_is_refused_with_413():
    rig = a_rig(limit=1000)

    res = upload(rig, a_form((a_jpeg() + b"\0" * 2000, "big.jpg")))

    assert res.status_code == 413
    assert res.get_json()["error"] == "file_too_large"
    assert rig.store.posts == {}


def test_a_file_that_is_not_an_image_is_refused_with_415_whatever_its_name():
    rig = a_rig()

    res = upload(rig, a_form((b"%PDF-1.7 not a photo", "holiday.jpg")))

    assert res.status_code == 415
    assert res.get_json()["error"] == "unsupported_format"


def test_a_post_without_photos_or_accounts_is_refused():
    rig = a_rig()

    no_photos = upload(rig, a_form())
    no_accounts = upload(rig, a_form((a_jpeg(), "a.jpg"), accounts=""))

    assert no_photos.status_code == 400
    assert no_photos.get_json()["error"] == "no_photos"
    assert no_accounts.status_code == 400
    assert no_accounts.get_json()["error"] == "no_accounts"


def test_a_bad_publish_date_is_a_400():
    rig = a_rig()

    res = upload(rig, a_form((a_jpeg(), "a.jpg"), publish_on="next tuesday"))

    assert res.status_code == 400
    assert res.get_json()["error"] == "invalid_input"


def test_the_same_photo_twice_in_one_post_is_refused():
    rig = a_rig()
    jpeg = a_jpeg()

    res = upload(rig, a_form((jpeg, "a.jpg"), (jpeg, "copy.jpg")))

    assert res.status_code == 400
    assert res.get_json()["error"] == "duplicate_photo"


def test_a_store_failing_mid_upload_leaves_no_receipt_no_post_and_no_outbox_row():
    store = FailingBlobStore(good=1)
    rig = a_rig(originals=store)

    res = upload(rig, a_form((a_jpeg(), "a.jpg"), (a_png(), "b.png")))

    assert res.status_code == 503
    assert res.get_json()["error"] == "storage_unavailable"
    assert "receipts" not in res.get_json()
    assert rig.store.posts == {}
    assert rig.store.obligations == {}
    kept = {e.type for e in rig.store.outbox.values()}
    assert not kept & {"post.submitted", "receipt.issued"}
    assert not set(rig.bus.types()) & {"post.submitted", "receipt.issued"}
    assert store.blobs == {}


def test_with_the_broker_down_the_post_is_kept_and_its_messages_wait_in_the_outbox():
    rig = a_rig(bus=InMemoryBus(up=False))
    rig.token()
    before = len(rig.pending())

    res = upload(rig, a_form((a_jpeg(), "a.jpg")))

    assert res.status_code == 201
    assert res.get_json()["queued"] is True
    post_id = res.get_json()["post_id"]
    assert post_id in rig.store.posts
    waiting = [e.type for e in rig.pending()[before:]]
    assert waiting == ["post.submitted", "receipt.issued"]
    assert rig.bus.published == []


def test_the_relay_publishes_a_pending_post_once_the_broker_is_back_and_only_once():
    rig = a_rig(bus=InMemoryBus(up=False))
    upload(rig, a_form((a_jpeg(), "a.jpg")))
    waiting = rig.pending()
    assert rig.relay() == 0

    rig.bus.up = True
    first = rig.relay()
    second = rig.relay()

    assert (first, second) == (len(waiting), 0)
    assert [e.id for e in rig.bus.published] == [e.id for e in waiting]
    assert "post.submitted" in rig.bus.types()
    assert rig.pending() == []


def test_an_object_store_that_does_not_answer_is_a_503_with_retry_after_not_a_500():
    from shared.storage import S3BlobStore, s3_client
    from tests.conftest import free_port

    nobody = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    store = S3BlobStore(s3_client(nobody, "us-east-1", "k", "s"), "originals")
    rig = a_rig(originals=store)

    res = upload(rig, a_form((a_jpeg(), "a.jpg")))

    assert res.status_code == 503
    assert res.get_json()["error"] == "storage_unavailable"
    assert res.headers["Retry-After"].isdigit()
    assert rig.store.posts == {}
