"""Readable text, approvers' revisions and originals' retention, via handlers."""

from datetime import timedelta

from PIL import Image

from services.redaction.bootstrap import Ports, sweep_originals
from shared import contracts
from tests.unit.redaction.fakes import (
    NOW,
    FakeDetector,
    FakeReader,
    a_picture,
    a_post,
    changed_fraction,
    fake_ports,
    handle,
    hide,
    jpeg_bytes,
    show,
)

FACE_A = (40, 40, 100, 100)
FACE_B = (200, 60, 260, 120)
NAME = ((20, 180, 140, 210), "ADA LOVELACE")
SIGN = ((180, 180, 300, 210), "SPORTS DAY")
PHOTO = "post-1-photo-0"


def decided(*faces, texts=(), revision=0) -> contracts.FacesDecided:
    return contracts.FacesDecided(
        photo_id=PHOTO,
        post_id="post-1",
        school_id="hill",
        decisions=list(faces),
        texts=list(texts),
        revision=revision,
    )


def revise(revision=1, add_masks=(), named=None) -> contracts.ReviseRedaction:
    return contracts.ReviseRedaction(
        photo_id=PHOTO,
        post_id="post-1",
        school_id="hill",
        revision=revision,
        add_masks=list(add_masks),
        named=named or {},
        requested_by="approver-1",
    )


def output(ports: Ports, done: contracts.PhotoRedacted) -> Image.Image:
    import io

    return Image.open(io.BytesIO(ports.redacted.get(done.redacted_key)))


def mask_name(index=0) -> contracts.TextDecision:
    return contracts.TextDecision(index=index, mask=True, reason="pupil_name")


def flag_text(index=1) -> contracts.TextDecision:
    return contracts.TextDecision(index=index, mask=False, reason="readable_text")


def test_text_found_by_ocr_goes_to_consent_with_its_words():
    ports = fake_ports(FakeDetector(FACE_A), FakeReader(NAME, SIGN))

    [found] = handle(a_post(ports), ports)

    assert [(t.index, t.box, t.text) for t in found.texts] == [
        (0, NAME[0], "ADA LOVELACE"),
        (1, SIGN[0], "SPORTS DAY"),
    ]


def test_the_words_are_never_stored_only_their_regions():
    ports = fake_ports(FakeDetector(FACE_A), FakeReader(NAME))

    handle(a_post(ports), ports)

    record = ports.records.find(PHOTO)
    assert record is not None and record.texts == (NAME[0],)
    assert "LOVELACE" not in repr(record)


def test_a_pupils_name_is_masked_and_other_text_flagged_but_shown():
    ports = fake_ports(FakeDetector(), FakeReader(NAME, SIGN))
    handle(a_post(ports), ports)

    [done] = handle(decided(texts=[mask_name(0), flag_text(1)]), ports)

    assert [(t.masked, t.reason) for t in done.texts] == [
        (True, "pupil_name"),
        (False, "readable_text"),
    ]
    assert done.ocr == "ok"
    after = output(ports, done)
    assert changed_fraction(a_picture(), after, NAME[0]) >= 0.9
    assert changed_fraction(a_picture(), after, SIGN[0]) == 0.0


def test_text_without_a_decision_is_masked():
    ports = fake_ports(FakeDetector(), FakeReader(NAME, SIGN))
    handle(a_post(ports), ports)

    [done] = handle(decided(texts=[flag_text(1)]), ports)

    assert [(t.masked, t.reason) for t in done.texts] == [
        (True, "unknown"),
        (False, "readable_text"),
    ]


def test_without_tesseract_the_report_says_ocr_is_unavailable():
    ports = fake_ports(FakeDetector(FACE_A), FakeReader(available=False))
    [found] = handle(a_post(ports), ports)

    [done] = handle(decided(), ports)

    assert found.texts == []
    assert done.ocr == "unavailable"


def test_an_approvers_revision_asks_consent_again_with_the_named_faces():
    ports = fake_ports(FakeDetector(FACE_A, FACE_B), FakeReader(NAME))
    handle(a_post(ports), ports)
    handle(decided(hide(0), hide(1), texts=[mask_name()]), ports)

    [again] = handle(revise(named={1: "pupil-9"}), ports)

    assert isinstance(again, contracts.FacesDetected)
    assert (again.revision, again.named) == (1, {1: "pupil-9"})
    assert [f.box for f in again.faces] == [FACE_A, FACE_B]
    assert all(f.encoding for f in again.faces)
    assert again.texts == []  # the names are not sent again


def test_a_revision_re_renders_from_the_original_with_the_extra_mask():
    ports = fake_ports(FakeDetector(FACE_A), FakeReader(NAME))
    handle(a_post(ports), ports)
    [first] = handle(decided(show(0), texts=[mask_name()]), ports)
    extra = (150, 20, 190, 60)
    handle(revise(add_masks=[extra]), ports)

    [done] = handle(decided(show(0), revision=1), ports)

    assert done.revision == 1 and done.redacted_key != first.redacted_key
    assert done.added_masks == [extra]
    assert [(t.masked, t.reason) for t in done.texts] == [(True, "pupil_name")]
    after = output(ports, done)
    assert changed_fraction(a_picture(), after, extra) >= 0.9
    assert changed_fraction(a_picture(), after, NAME[0]) >= 0.9
    assert changed_fraction(a_picture(), after, FACE_A) == 0.0


def test_a_named_face_consent_shows_is_unmasked_in_the_revision():
    ports = fake_ports(FakeDetector(FACE_A))
    handle(a_post(ports), ports)
    handle(decided(hide(0, "unknown")), ports)
    handle(revise(named={0: "pupil-9"}), ports)

    [done] = handle(decided(show(0, "pupil-9"), revision=1), ports)

    assert [(f.masked, f.pupil_id) for f in done.faces] == [(False, "pupil-9")]


def test_edits_accumulate_across_revisions():
    ports = fake_ports(FakeDetector())
    handle(a_post(ports), ports)
    handle(decided(), ports)
    handle(revise(1, add_masks=[(10, 10, 30, 30)]), ports)
    handle(revise(2, add_masks=[(50, 50, 70, 70)]), ports)

    [done] = handle(decided(revision=2), ports)

    assert done.added_masks == [(10, 10, 30, 30), (50, 50, 70, 70)]


def test_a_decision_for_an_older_revision_changes_nothing():
    ports = fake_ports(FakeDetector(FACE_A))
    handle(a_post(ports), ports)
    handle(decided(hide(0)), ports)
    handle(revise(2, add_masks=[(10, 10, 30, 30)]), ports)

    assert handle(decided(show(0), revision=1), ports) == []
    assert ports.records.find(PHOTO).redaction.revision == 0


def test_a_redelivered_revision_asks_again_identically_and_a_stale_one_not_at_all():
    ports = fake_ports(FakeDetector(FACE_A))
    handle(a_post(ports), ports)
    handle(decided(), ports)
    first = handle(revise(1, add_masks=[(10, 10, 30, 30)]), ports)

    again = handle(revise(1, add_masks=[(10, 10, 30, 30)]), ports)
    handle(revise(2), ports)
    stale = handle(revise(1), ports)

    assert again == first
    assert stale == []


def test_a_revision_for_another_schools_photo_is_ignored():
    ports = fake_ports(FakeDetector(FACE_A))
    handle(a_post(ports), ports)
    foreign = revise().model_copy(update={"school_id": "elsewhere"})

    assert handle(foreign, ports) == []
    assert ports.records.find(PHOTO).revision == 0


def test_masks_are_drawn_on_a_large_photo_in_output_pixels_but_applied_in_full():
    ports = fake_ports(FakeDetector(), max_side=160)
    handle(a_post(ports, jpeg_bytes(a_picture(320, 240))), ports)
    handle(decided(), ports)
    handle(revise(add_masks=[(10, 10, 40, 40)]), ports)

    [done] = handle(decided(revision=1), ports)

    assert (done.width, done.height) == (160, 120)
    assert done.added_masks == [(10, 10, 40, 40)]
    assert ports.records.find(PHOTO).extra_masks == ((20, 20, 80, 80),)


def published() -> contracts.PostPublished:
    return contracts.PostPublished(
        post_id="post-1",
        school_id="hill",
        account="hill-facebook",
        target="folder",
        location="/x",
    )


def test_originals_stay_until_the_retention_period_after_publication_has_passed():
    ports = fake_ports(FakeDetector())
    post = a_post(ports)
    handle(post, ports)
    handle(published(), ports)

    assert sweep_originals(ports) == 0
    assert ports.originals.exists(post.photos[0].original_key)


def test_a_published_posts_original_is_deleted_after_retention_and_announced():
    ports = fake_ports(FakeDetector())
    post = a_post(ports)
    handle(post, ports)
    handle(published(), ports)
    later = NOW + timedelta(days=30, minutes=1)
    ports = Ports(**{**ports.__dict__, "now": lambda: later})

    assert sweep_originals(ports) == 1

    assert not ports.originals.exists(post.photos[0].original_key)
    [deleted] = ports.publisher.messages(contracts.OriginalDeleted)
    assert (deleted.photo_id, deleted.reason, deleted.retention_days) == (
        PHOTO,
        "post_published",
        30,
    )
    assert sweep_originals(ports) == 0


def test_a_rejected_posts_original_is_deleted_too_and_a_retry_keeps_the_event_id():
    ports = fake_ports(FakeDetector())
    post = a_post(ports)
    handle(post, ports)
    handle(
        contracts.PostRejected(post_id="post-1", school_id="hill", reason="no"), ports
    )
    ports = Ports(**{**ports.__dict__, "now": lambda: NOW + timedelta(days=31)})

    sweep_originals(ports)

    [envelope] = ports.publisher.published
    assert contracts.parse(envelope).reason == "post_rejected"
    from shared.contracts import deterministic_id

    assert envelope.id == deterministic_id("redaction", f"original-deleted:{PHOTO}")
    assert not ports.originals.exists(post.photos[0].original_key)


def test_a_post_never_closed_keeps_its_original():
    ports = fake_ports(FakeDetector())
    post = a_post(ports)
    handle(post, ports)
    ports = Ports(**{**ports.__dict__, "now": lambda: NOW + timedelta(days=400)})

    assert sweep_originals(ports) == 0
    assert ports.originals.exists(post.photos[0].original_key)
