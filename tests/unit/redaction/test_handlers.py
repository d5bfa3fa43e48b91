import io

import pytest
from PIL import ExifTags, Image

from services.redaction import handlers
from services.redaction.bootstrap import Ports
from shared import contracts
from tests.unit.redaction.fakes import (
    FakeDetector,
    a_picture,
    a_post,
    changed_fraction,
    decided,
    fake_ports,
    handle,
    hide,
    jpeg_bytes,
    show,
)

FACE_A = (40, 40, 100, 100)
FACE_B = (200, 60, 260, 120)


def detect(event: contracts.PostSubmitted, ports: Ports) -> list[contracts.Message]:
    return handle(event, ports)


def redact(event: contracts.FacesDecided, ports: Ports) -> list[contracts.Message]:
    return handle(event, ports)


def test_faces_are_detected_with_boxes_scores_and_encodings():
    ports = fake_ports(FakeDetector(FACE_A, FACE_B))
    post = a_post(ports)

    [found] = detect(post, ports)

    assert isinstance(found, contracts.FacesDetected)
    assert (found.photo_id, found.post_id, found.school_id) == (
        "post-1-photo-0",
        "post-1",
        "hill",
    )
    assert found.accounts == ["hill-facebook"]
    assert (found.width, found.height) == (320, 240)
    assert [(f.index, f.box) for f in found.faces] == [(0, FACE_A), (1, FACE_B)]
    assert all(f.encoding is not None and len(f.encoding) == 128 for f in found.faces)


def test_the_stored_detection_never_holds_an_encoding():
    ports = fake_ports(FakeDetector(FACE_A))

    detect(a_post(ports), ports)

    record = ports.records.find("post-1-photo-0")
    assert record is not None and record.faces[0].box == FACE_A
    assert "encoding" not in repr(record)


def test_a_redelivered_post_gives_the_same_faces_without_detecting_again():
    detector = FakeDetector(FACE_A)
    ports = fake_ports(detector)
    post = a_post(ports)
    first = detect(post, ports)
    detector.boxes = [FACE_B]

    again = detect(post, ports)

    assert again == first
    assert len(detector.shapes) == 1


def test_the_detector_sees_the_photo_the_right_way_up():
    detector = FakeDetector()
    ports = fake_ports(detector)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    post = a_post(ports, jpeg_bytes(a_picture(320, 240), exif=exif.tobytes()))

    [found] = detect(post, ports)

    assert detector.shapes == [(320, 240, 3)]
    assert (found.width, found.height) == (240, 320)


@pytest.mark.parametrize(
    "data",
    [b"", b"this is a text file, renamed .jpg\n", jpeg_bytes()[:1200]],
    ids=["zero bytes", "text renamed .jpg", "truncated jpeg"],
)
def test_a_bad_file_is_refused_and_the_good_one_still_detected(data):
    ports = fake_ports(FakeDetector(FACE_A))
    post = a_post(ports, data, jpeg_bytes())

    refused, found = detect(post, ports)

    assert isinstance(refused, contracts.PhotoRefused)
    assert refused.reason in {"empty", "unsupported_format", "truncated"}
    assert isinstance(found, contracts.FacesDetected)


def test_a_refused_photo_is_refused_again_on_redelivery_and_on_a_decision():
    ports = fake_ports()
    post = a_post(ports, b"not a photo")
    [first] = detect(post, ports)

    [again] = detect(post, ports)
    [answer] = redact(decided("post-1-photo-0"), ports)

    assert again == first == answer
    assert not ports.redacted.blobs


def test_every_face_not_shown_is_masked_and_the_rest_left_alone():
    ports = fake_ports(FakeDetector(FACE_A, FACE_B))
    detect(a_post(ports), ports)

    [done] = redact(decided("post-1-photo-0", show(0, "ada")), ports)

    assert isinstance(done, contracts.PhotoRedacted)
    assert [(f.masked, f.reason, f.pupil_id) for f in done.faces] == [
        (False, None, "ada"),
        (True, "unknown", None),
    ]
    redacted = Image.open(io.BytesIO(ports.redacted.get(done.redacted_key)))
    assert changed_fraction(a_picture(), redacted, FACE_B) >= 0.9
    assert changed_fraction(a_picture(), redacted, FACE_A) == 0.0


def test_a_face_decided_hidden_is_masked_with_its_reason():
    ports = fake_ports(FakeDetector(FACE_A))
    detect(a_post(ports), ports)

    [done] = redact(decided("post-1-photo-0", hide(0, "withdrawn")), ports)

    assert done.faces[0].masked and done.faces[0].reason == "withdrawn"


def test_the_redacted_copy_and_preview_are_stored_under_deterministic_keys():
    ports = fake_ports(FakeDetector(FACE_A))
    detect(a_post(ports), ports)

    [done] = redact(decided("post-1-photo-0"), ports)

    assert done.redacted_key == "redacted/post-1/post-1-photo-0.jpg"
    assert done.preview_key == "previews/post-1/post-1-photo-0.jpg"
    assert ports.redacted.content_types[done.redacted_key] == "image/jpeg"
    assert ports.previews.exists(done.preview_key)
    assert not ports.redacted.exists(done.preview_key)


def test_a_redelivered_decision_returns_the_stored_result_without_redoing_it():
    ports = fake_ports(FakeDetector(FACE_A))
    detect(a_post(ports), ports)
    [first] = redact(decided("post-1-photo-0"), ports)
    ports.originals.blobs.clear()

    [again] = redact(decided("post-1-photo-0", show(0)), ports)

    assert again == first


def test_a_large_photo_is_resized_and_its_mask_boxes_scaled():
    ports = fake_ports(FakeDetector((1000, 400, 1200, 600)))
    detect(a_post(ports, jpeg_bytes(a_picture(4096, 1024))), ports)

    [done] = redact(decided("post-1-photo-0"), ports)

    assert (done.width, done.height) == (2048, 512)
    assert done.faces[0].box == (455, 155, 645, 345)  # grown 1.9x, then halved


def test_a_decision_for_a_photo_never_detected_is_an_error():
    with pytest.raises(handlers.UnknownPhotoError):
        redact(decided("nobody-knows"), fake_ports())
