"""Pixels in and out: safe decoding, irreversible masks, metadata-free JPEG, previews.

No I/O beyond bytes in memory. Everything here works on oriented RGB pixels, so what the
detector saw is exactly what is masked and published.
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFile, ImageFont, ImageOps, UnidentifiedImageError

from services.redaction import domain

FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "TIFF", "BMP", "GIF"})
FILL = (30, 30, 120)  # navy: far from any skin, hair or shadow colour
SHOWN_COLOUR = (0, 170, 0)
MASKED_COLOUR = (220, 0, 0)
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    zlib.error,
    IndexError,
    TypeError,
    KeyError,
)


@dataclass(frozen=True)
class Rendered:
    """The redacted copy (what may be published) and the approver's preview."""

    jpeg: bytes
    preview: bytes
    width: int
    height: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.jpeg).hexdigest()


def decode(data: bytes, limits: domain.Limits) -> Image.Image:
    """Oriented RGB pixels of a photo; PhotoRefusedError if unsafe or broken."""
    if not data:
        raise domain.PhotoRefusedError(domain.EMPTY, "the file is empty")
    if len(data) > limits.max_bytes:
        raise domain.PhotoRefusedError(domain.TOO_LARGE, f"{len(data)} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(data, limits)
    except domain.PhotoRefusedError:
        raise
    except UnidentifiedImageError:
        raise domain.PhotoRefusedError(
            domain.UNSUPPORTED_FORMAT, "not an image format we can read"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise domain.PhotoRefusedError(domain.TOO_LARGE, str(exc)) from None
    except _DECODE_ERRORS as exc:
        reason = domain.TRUNCATED if "truncated" in str(exc) else domain.CORRUPT
        raise domain.PhotoRefusedError(reason, f"{type(exc).__name__}: {exc}") from None


def _decode(data: bytes, limits: domain.Limits) -> Image.Image:
    # face_recognition switches this on at import; a truncated file must be refused.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    image = Image.open(io.BytesIO(data))
    if image.format not in FORMATS:
        raise domain.PhotoRefusedError(
            domain.UNSUPPORTED_FORMAT, f"format {image.format} is not accepted"
        )
    # An MPO is a camera JPEG with extra frames (depth maps, previews): frame 0 is the
    # photo. Any other format with several frames (animations, pages) is refused.
    frames = int(getattr(image, "n_frames", 1))
    if frames > 1 and image.format != "MPO":
        raise domain.PhotoRefusedError(domain.MULTI_FRAME, f"{frames} frames")
    width, height = image.size
    if width < 1 or height < 1 or width * height > limits.max_pixels:
        raise domain.PhotoRefusedError(
            domain.TOO_LARGE, f"{width}x{height} exceeds {limits.max_pixels} pixels"
        )
    image.load()
    oriented = ImageOps.exif_transpose(image)
    oriented.load()
    return _flatten(oriented)


def _flatten(image: Image.Image) -> Image.Image:
    """RGB with any transparency composed over white, as a viewer would show it."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def pixels(image: Image.Image) -> np.ndarray:
    """A contiguous H x W x 3 uint8 array (what the detector and encoder read)."""
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def render(
    image: Image.Image, outcomes: Sequence[domain.FaceOutcome], limits: domain.Limits
) -> Rendered:
    """Resize, mask every masked face over its whole box, encode without metadata."""
    width, height = domain.output_size(*image.size, limits.max_side)
    if (width, height) != image.size:
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    array = np.array(image.convert("RGB"), dtype=np.uint8)
    for outcome in outcomes:
        if outcome.masked:
            _mask(array, outcome.box, limits.mask_style)
    redacted = _jpeg(array, limits.jpeg_quality)
    preview = _jpeg(_annotate(array, outcomes), limits.jpeg_quality)
    return Rendered(jpeg=redacted, preview=preview, width=width, height=height)


def _mask(array: np.ndarray, box: domain.Box, style: str) -> None:
    left, top, right, bottom = box
    if right <= left or bottom <= top:
        return
    region = array[top:bottom, left:right]
    if style == "mosaic":
        region[...] = _mosaic(region, box)
    else:
        region[...] = FILL


def _mosaic(region: np.ndarray, box: domain.Box) -> np.ndarray:
    """At most 4x4 coarse cells plus strong noise: nothing of the face survives."""
    h, w = region.shape[:2]
    cells = Image.fromarray(region).resize((min(4, w), min(4, h)), Image.Resampling.BOX)
    coarse = np.asarray(cells.resize((w, h), Image.Resampling.NEAREST), dtype=np.int16)
    rng = np.random.default_rng(abs(hash(box)) % (2**32))  # same box, same noise
    noisy = coarse + rng.integers(-60, 61, size=coarse.shape, dtype=np.int16)
    out: np.ndarray = np.clip(noisy, 0, 255).astype(np.uint8)
    return out


def _jpeg(array: np.ndarray, quality: int) -> bytes:
    """JPEG from pixel data alone: a fresh image has no EXIF, XMP, ICC or comment."""
    clean = Image.fromarray(np.ascontiguousarray(array), "RGB")
    buffer = io.BytesIO()
    clean.save(buffer, "JPEG", quality=quality, optimize=True)
    return buffer.getvalue()


def _annotate(array: np.ndarray, outcomes: Sequence[domain.FaceOutcome]) -> np.ndarray:
    image = Image.fromarray(array.copy(), "RGB")
    draw = ImageDraw.Draw(image)
    line = max(2, max(image.size) // 400)
    font = ImageFont.load_default(size=max(12, max(image.size) // 60))
    for outcome in outcomes:
        colour = MASKED_COLOUR if outcome.masked else SHOWN_COLOUR
        label = (outcome.reason or "masked") if outcome.masked else "shown"
        left, top, right, bottom = outcome.box
        draw.rectangle(
            (left, top, max(left, right - 1), max(top, bottom - 1)),
            outline=colour,
            width=line,
        )
        draw.text(
            (left, max(0, top - line)),
            f"{outcome.index}: {label}",
            fill=colour,
            font=font,
            anchor="lb" if top > 14 else "lt",
        )
    return np.asarray(image)
