"""Each kind of file a phone (or an attacker) may send gets a clear outcome."""

import io
import struct
import zlib

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageCms

from services.redaction import domain, imaging
from services.redaction.domain import FaceOutcome, Limits
from tests.unit.redaction.fakes import a_picture, changed_fraction, jpeg_bytes


def saved(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def a_png(width: int, height: int, depth: int, colour: int, rows: bytes) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def a_bomb_png() -> bytes:
    """A few kilobytes claiming 100 000 x 100 000 pixels (10 gigapixels)."""
    row = b"\x00" + b"\x00" * (100_000 // 8)
    return a_png(100_000, 100_000, 1, 0, row * 16)


def a_16_bit_rgb_png() -> bytes:
    """48-bit RGB: a mid-orange every pixel (0xC000, 0x8000, 0x4000)."""
    pixel = struct.pack(">HHH", 0xC000, 0x8000, 0x4000)
    rows = (b"\x00" + pixel * 32) * 24
    return a_png(32, 24, 16, 2, rows)


def refusal(data: bytes, limits: Limits | None = None) -> str:
    with pytest.raises(domain.PhotoRefusedError) as refused:
        imaging.decode(data, limits or Limits())
    return refused.value.reason


def test_a_decompression_bomb_is_refused_as_too_large_without_decoding_it():
    assert refusal(a_bomb_png()) == "too_large"


def test_a_gif_is_refused_as_unsupported():
    assert refusal(saved(a_picture(), "GIF")) == "unsupported_format"


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_other_image_formats_are_refused_as_unsupported(fmt):
    assert refusal(saved(a_picture(), fmt)) == "unsupported_format"


def test_a_file_that_only_pretends_to_be_an_image_is_refused():
    polyglot = b"<html><script>alert(1)</script>" + saved(a_picture(), "PNG")

    assert refusal(polyglot) == "unsupported_format"


def test_a_jpeg_carrying_an_archive_comes_out_as_pixels_only():
    payload = b"PK\x03\x04" + b"evil.js" + b"\x00" * 32 + b"alert(document.cookie)"
    polyglot = jpeg_bytes() + payload

    image = imaging.decode(polyglot, Limits())
    out = imaging.render(image, [], Limits())

    assert b"alert(document.cookie)" not in out.jpeg
    assert out.jpeg.endswith(b"\xff\xd9")


def test_a_cmyk_jpeg_is_converted_to_the_colours_it_shows():
    red = Image.new("CMYK", (40, 30), (0, 255, 255, 0))

    image = imaging.decode(saved(red, "JPEG", quality=95), Limits())

    assert image.mode == "RGB"
    r, g, b = image.getpixel((20, 15))
    assert r > 200 and g < 60 and b < 60


def test_a_16_bit_greyscale_png_is_scaled_not_clipped_to_white():
    grey = np.full((24, 32), 0x8000, dtype=np.uint16)

    image = imaging.decode(saved(Image.fromarray(grey), "PNG"), Limits())

    assert image.mode == "RGB"
    assert all(120 <= v <= 135 for v in image.getpixel((5, 5)))


def test_a_16_bit_colour_png_keeps_its_colour():
    image = imaging.decode(a_16_bit_rgb_png(), Limits())

    r, g, b = image.getpixel((5, 5))
    assert (abs(r - 192), abs(g - 128), abs(b - 64)) <= (2, 2, 2)


def test_an_rgba_png_is_composed_over_white():
    half = Image.new("RGBA", (20, 20), (0, 0, 0, 128))

    image = imaging.decode(saved(half, "PNG"), Limits())

    assert image.mode == "RGB"
    assert all(120 <= v <= 135 for v in image.getpixel((5, 5)))


def test_a_palette_png_with_a_transparent_colour_is_converted():
    palette = a_picture(40, 30).convert("P", palette=Image.Palette.ADAPTIVE)
    transparent = palette.getpixel((0, 0))

    image = imaging.decode(saved(palette, "PNG", transparency=transparent), Limits())

    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (255, 255, 255)


def test_a_heic_from_an_iphone_is_read_and_its_pixels_used():
    data = saved(a_picture(64, 48), "HEIF", quality=95)
    assert data[4:12] == b"ftypheic"

    image = imaging.decode(data, Limits())

    assert image.size == (64, 48) and image.mode == "RGB"
    assert changed_fraction(a_picture(64, 48), image, (0, 0, 64, 48)) < 0.05


def test_a_heic_with_several_images_is_refused():
    heif = pillow_heif.from_pillow(a_picture(64, 48))
    heif.add_from_pillow(a_picture(64, 48).transpose(Image.Transpose.FLIP_TOP_BOTTOM))
    buffer = io.BytesIO()
    heif.save(buffer, quality=90)

    assert refusal(buffer.getvalue()) == "multi_frame"


def test_a_truncated_heic_is_refused():
    data = saved(a_picture(64, 48), "HEIF", quality=95)

    assert refusal(data[: len(data) // 2]) in ("truncated", "corrupt")


def test_a_webp_is_read():
    image = imaging.decode(saved(a_picture(), "WEBP", quality=95), Limits())

    assert image.size == (320, 240)


def test_an_icc_profile_is_not_carried_into_the_output():
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    image = imaging.decode(saved(a_picture(), "PNG", icc_profile=icc), Limits())

    out = imaging.render(image, [], Limits())

    assert "icc_profile" not in Image.open(io.BytesIO(out.jpeg)).info


def test_masks_are_applied_at_full_resolution_before_the_resize():
    """No pixel of a masked face reaches the output, not even blended into the
    pixels around the mask by the downscale: two photos that differ only inside the
    face box give the same redacted bytes. (Masking after the resize lets the
    resampling filter carry the face into the ring of pixels around the box.)"""
    rng = np.random.default_rng(3)
    detail = rng.integers(0, 256, size=(1024, 4096, 3), dtype=np.uint8)
    other = detail.copy()
    box = (1001, 401, 1199, 599)  # odd edges: between two output pixels
    other[401:599, 1001:1199] = 255 - other[401:599, 1001:1199]  # another face
    face = FaceOutcome(0, box, masked=True, reason="unknown", pupil_id=None)

    out = imaging.render(Image.fromarray(detail, "RGB"), [face], Limits())
    again = imaging.render(Image.fromarray(other, "RGB"), [face], Limits())

    assert out.jpeg == again.jpeg  # nothing of the face, inside or around the mask
    redacted = np.asarray(Image.open(io.BytesIO(out.jpeg)), dtype=np.int16)
    inner = redacted[208:292, 508:592].reshape(-1, 3)  # away from JPEG blocks
    assert np.abs(inner - np.array(imaging.FILL)).max() < 24  # JPEG noise only
    assert (out.width, out.height) == (2048, 512)
