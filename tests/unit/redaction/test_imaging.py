import io

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms

from services.redaction import domain, imaging
from services.redaction.domain import FaceOutcome, Limits
from tests.unit.redaction.fakes import a_picture, changed_fraction, jpeg_bytes

SECRET = b"Hillside Primary, Form 3B"


def a_jpeg_full_of_metadata() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneCo"
    exif[ExifTags.Base.ImageDescription] = SECRET.decode()
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (0.0, 7.0, 40.0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/">' + SECRET + b"</x:xmpmeta>"
    return jpeg_bytes(exif=exif.tobytes(), icc_profile=icc, comment=SECRET, xmp=xmp)


def a_png_with_damaged_pixels() -> bytes:
    buffer = io.BytesIO()
    a_picture().save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    start = data.index(b"IDAT") + 20
    data[start : start + 40] = b"\xff" * 40
    return bytes(data)


def test_the_test_photo_really_carries_gps_comment_icc_and_xmp():
    image = Image.open(io.BytesIO(a_jpeg_full_of_metadata()))

    assert image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert image.info["comment"] == SECRET
    assert image.info["icc_profile"]
    assert "xmp" in image.info


def test_the_redacted_copy_carries_no_metadata_at_all():
    image = imaging.decode(a_jpeg_full_of_metadata(), Limits())

    out = imaging.render(image, [], Limits())

    for data in (out.jpeg, out.preview):
        reread = Image.open(io.BytesIO(data))
        assert not reread.getexif()
        assert not {"exif", "icc_profile", "comment", "xmp", "photoshop"} & set(
            reread.info
        )
        assert SECRET not in data
        for marker in (b"Exif", b"ICC_PROFILE", b"GPS", b"adobe", b"Photoshop"):
            assert marker not in data


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"Dear parents, the trip is on Friday.\n" * 20, "unsupported_format"),
        (jpeg_bytes()[:1500], "truncated"),
        (a_png_with_damaged_pixels(), "corrupt"),
    ],
    ids=["zero bytes", "text renamed .jpg", "truncated jpeg", "damaged png"],
)
def test_a_bad_file_is_refused_with_a_reason(data, reason):
    with pytest.raises(domain.PhotoRefusedError) as refused:
        imaging.decode(data, Limits())

    assert refused.value.reason == reason


def test_a_truncated_jpeg_is_refused_even_after_face_recognition_is_imported():
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = True  # what importing face_recognition does

    with pytest.raises(domain.PhotoRefusedError) as refused:
        imaging.decode(jpeg_bytes()[:1500], Limits())

    assert refused.value.reason == "truncated"


def test_a_photo_over_the_pixel_limit_is_refused_before_decoding():
    with pytest.raises(domain.PhotoRefusedError) as refused:
        imaging.decode(jpeg_bytes(a_picture(400, 300)), Limits(max_pixels=100_000))

    assert refused.value.reason == "too_large"


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"], ids=["animated webp", "apng"])
def test_an_animation_is_refused(fmt):
    frames = [a_picture(), a_picture().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:])

    with pytest.raises(domain.PhotoRefusedError) as refused:
        imaging.decode(buffer.getvalue(), Limits())

    assert refused.value.reason == "multi_frame"


def test_exif_orientation_is_applied_before_anything_else():
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # rotate 90 degrees clockwise to view

    image = imaging.decode(
        jpeg_bytes(a_picture(320, 240), exif=exif.tobytes()), Limits()
    )

    assert image.size == (240, 320)


def test_transparency_is_flattened_onto_white():
    rgba = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    buffer = io.BytesIO()
    rgba.save(buffer, "PNG")

    image = imaging.decode(buffer.getvalue(), Limits())

    assert image.mode == "RGB"
    assert image.getpixel((5, 5)) == (255, 255, 255)


def test_a_solid_mask_replaces_the_whole_region():
    picture = a_picture(320, 240)
    box = (100, 60, 180, 160)
    outcome = FaceOutcome(0, box, masked=True, reason="unknown", pupil_id=None)

    out = imaging.render(picture, [outcome], Limits())

    redacted = Image.open(io.BytesIO(out.jpeg))
    assert changed_fraction(picture, redacted, box) >= 0.9
    assert changed_fraction(picture, redacted, (0, 0, 90, 50)) == 0.0


def test_a_mosaic_mask_keeps_nothing_of_the_detail_underneath():
    rng = np.random.default_rng(7)
    detail = rng.integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
    picture = Image.fromarray(detail, "RGB")
    box = (100, 60, 180, 160)
    outcome = FaceOutcome(0, box, masked=True, reason="unknown", pupil_id=None)

    out = imaging.render(picture, [outcome], Limits(mask_style="mosaic"))

    masked = np.asarray(Image.open(io.BytesIO(out.jpeg)), dtype=np.float64)
    before = detail[62:158, 102:178].astype(np.float64).ravel()
    after = masked[62:158, 102:178].ravel()
    assert abs(np.corrcoef(before, after)[0, 1]) < 0.1


def test_a_solid_mask_leaves_nothing_of_the_face():
    picture = a_picture(320, 240)
    box = (100, 60, 180, 160)
    outcome = FaceOutcome(0, box, masked=True, reason="unknown", pupil_id=None)

    out = imaging.render(picture, [outcome], Limits())

    region = np.asarray(Image.open(io.BytesIO(out.jpeg)))[62:158, 102:178]
    assert region.reshape(-1, 3).std(axis=0).max() < 3


def test_a_large_photo_is_resized_to_the_long_side_limit():
    out = imaging.render(a_picture(3000, 1000), [], Limits(max_side=2048))

    assert (out.width, out.height) == (2048, 683)
    assert Image.open(io.BytesIO(out.jpeg)).size == (2048, 683)


def test_the_preview_marks_faces_and_the_redacted_copy_does_not():
    picture = a_picture(320, 240)
    shown = FaceOutcome(0, (20, 40, 80, 100), masked=False, reason=None, pupil_id="a")

    out = imaging.render(picture, [shown], Limits())

    redacted = Image.open(io.BytesIO(out.jpeg))
    preview = Image.open(io.BytesIO(out.preview))
    edge = (20, 40, 80, 43)
    assert changed_fraction(picture, redacted, edge) == 0.0
    assert changed_fraction(picture, preview, edge) > 0.5
