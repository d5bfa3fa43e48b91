"""The redaction service with the real CenterFace detector on the labelled photos."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import ExifTags, Image

from services.redaction import adapters, domain, imaging
from services.redaction.offline import redact_file
from shared import contracts
from tests.unit.redaction.fakes import a_post, decided, fake_ports, handle

pytestmark = pytest.mark.faces

PASCAL = [
    "2007_007763.jpg",
    "2008_001009.jpg",
    "2008_001322.jpg",
    "2008_002079.jpg",
    "2008_002506.jpg",
    "2009_004587.jpg",
]


@pytest.fixture(scope="module")
def detector() -> adapters.CenterFaceDetector:
    return adapters.CenterFaceDetector()


@pytest.fixture(scope="module")
def labels(faces_dir) -> dict[str, dict]:
    entries = json.loads((faces_dir / "detection" / "annotations.json").read_text())
    return {entry["image"].split("/")[-1]: entry for entry in entries}


def real_ports(detector, encoder=None):
    ports = fake_ports()
    return ports.__class__(
        **{
            **ports.__dict__,
            "detector": detector,
            "encoder": encoder or adapters.NoEncoder(),
        }
    )


def redact_through_the_service(ports, data: bytes) -> contracts.PhotoRedacted:
    [found] = handle(a_post(ports, data), ports)
    [done] = handle(decided(found.photo_id), ports)
    return done


def changed(before: np.ndarray, after: np.ndarray, box) -> float:
    left, top, right, bottom = box
    a = before[top:bottom, left:right].astype(np.int16)
    b = after[top:bottom, left:right].astype(np.int16)
    return float((np.abs(a - b).max(axis=2) > 24).mean())


@pytest.mark.parametrize("name", PASCAL)
def test_every_labelled_face_of_a_pascal_photo_is_masked(
    name, faces_dir, labels, detector
):
    data = (faces_dir / "detection" / "images" / name).read_bytes()
    ports = real_ports(detector)

    done = redact_through_the_service(ports, data)

    before = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    after = np.asarray(Image.open(io.BytesIO(ports.redacted.get(done.redacted_key))))
    shares = [changed(before, after, box) for box in labels[name]["faces"]]
    assert all(share >= 0.9 for share in shares), shares


def test_a_photo_with_no_person_gets_no_mask(faces_dir, detector):
    data = (faces_dir / "detection" / "images" / "dogs.jpg").read_bytes()

    done = redact_through_the_service(real_ports(detector), data)

    assert done.faces == []


def sideways_with_orientation_6(image: Image.Image) -> bytes:
    """Pixels stored turned left, EXIF saying 'turn right to view' (as phones do)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    buffer = io.BytesIO()
    image.transpose(Image.Transpose.ROTATE_90).save(
        buffer, "JPEG", quality=95, exif=exif.tobytes()
    )
    return buffer.getvalue()


def test_a_face_in_a_photo_stored_sideways_is_found_and_masked(faces_dir, detector):
    upright = Image.open(faces_dir / "identity" / "obama.jpg").convert("RGB")
    [(face, _)] = detector.detect(np.asarray(upright))
    ports = real_ports(detector)

    done = redact_through_the_service(ports, sideways_with_orientation_6(upright))

    assert (done.width, done.height) == upright.size
    [report] = done.faces
    left, top, right, bottom = report.box
    assert left <= face[0] and top <= face[1] and right >= face[2] and bottom >= face[3]
    after = np.asarray(Image.open(io.BytesIO(ports.redacted.get(done.redacted_key))))
    assert changed(np.asarray(upright), after, face) >= 0.9


def test_faces_get_real_128_number_encodings(faces_dir, detector):
    data = (faces_dir / "identity" / "two_people.jpg").read_bytes()
    ports = real_ports(detector, adapters.FaceRecognitionEncoder())

    [found] = handle(a_post(ports, data), ports)

    assert len(found.faces) == 2
    for face in found.faces:
        assert face.encoding is not None and len(face.encoding) == 128
    first, second = (np.array(f.encoding) for f in found.faces)
    assert np.linalg.norm(first - second) > 0.6  # two different people


def test_a_truncated_photo_is_refused_after_face_recognition_is_loaded(faces_dir):
    adapters.FaceRecognitionEncoder()._module()
    data = (faces_dir / "identity" / "obama.jpg").read_bytes()

    with pytest.raises(domain.PhotoRefusedError) as refused:
        imaging.decode(data[: len(data) // 2], domain.Limits())

    assert refused.value.reason == "truncated"


def test_the_cli_masks_every_face_and_reports_boxes_in_output_pixels(
    faces_dir, tmp_path
):
    source = faces_dir / "detection" / "images" / "2008_001322.jpg"
    output, report_path = tmp_path / "out.jpg", tmp_path / "report.json"

    report = redact_file(source, output, report_path)

    assert json.loads(report_path.read_text()) == report
    assert len(report["faces"]) == 3
    after = np.asarray(Image.open(output))
    for face in report["faces"]:
        assert (
            face["masked"] and face["reason"] == "unknown" and face["pupil_id"] is None
        )
        left, top, right, bottom = face["box"]
        region = after[top + 2 : bottom - 2, left + 2 : right - 2].reshape(-1, 3)
        assert region.std(axis=0).max() < 4  # one solid colour: the mask
