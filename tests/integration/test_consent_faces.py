"""Consent's enrolment encoder on real photos (faces_dir)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import ImageFile

from services.consent import adapters, domain


@pytest.fixture(scope="module")
def enroller() -> adapters.FaceRecognitionEnroller:
    return adapters.FaceRecognitionEnroller()


def test_a_reference_photo_gives_one_encoding_that_identifies_the_person_elsewhere(
    enroller: adapters.FaceRecognitionEnroller, faces_dir: Path
) -> None:
    identity = faces_dir / "identity"
    obama = enroller.encode((identity / "obama.jpg").read_bytes())
    biden = enroller.encode((identity / "biden.jpg").read_bytes())
    gallery = adapters.build_gallery(1, [("OB1", obama), ("BI1", biden)])
    probe = enroller.encode((identity / "obama2.jpg").read_bytes())

    match = domain.classify(adapters.nearest(gallery, {0: probe})[0])

    assert len(obama) == 128
    assert match == domain.Match("OB1", "matched")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("identity/two_people.jpg", "2 faces found"),
        ("detection/images/dogs.jpg", "no face found"),
    ],
)
def test_a_reference_photo_must_show_exactly_one_face(
    enroller: adapters.FaceRecognitionEnroller,
    faces_dir: Path,
    path: str,
    message: str,
) -> None:
    with pytest.raises(adapters.EnrolmentError, match=message):
        enroller.encode((faces_dir / path).read_bytes(), "ref.jpg")


@pytest.mark.parametrize(
    "cut", [0.5, 0.9], ids=["half a file", "truncated near the end"]
)
def test_a_truncated_or_broken_reference_photo_is_refused(
    enroller: adapters.FaceRecognitionEnroller, faces_dir: Path, cut: float
) -> None:
    data = (faces_dir / "identity" / "obama.jpg").read_bytes()

    with pytest.raises(adapters.EnrolmentError, match="not a readable image"):
        enroller.encode(data[: int(len(data) * cut)], "ref.jpg")
