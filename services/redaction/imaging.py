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
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw, ImageFile, ImageFont, ImageOps, UnidentifiedImageError

from services.redaction import domain

# What a file's first bytes say it is -> the Pillow formats it may then decode as.
KINDS: dict[str, frozenset[str]] = {
    "jpeg": frozenset({"JPEG", "MPO"}),
    "png": frozenset({"PNG"}),
    "webp": frozenset({"WEBP"}),
    "heif": frozenset({"HEIF"}),
}
HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
)
FILL = (30, 30, 120)  # navy: far from any skin, hair or shadow colour
SHOWN_COLOUR = (0, 170, 0)
MASKED_COLOUR = (220, 0, 0)
TEXT_COLOUR = (255, 140, 0)
ADDED_COLOUR = (150, 0, 200)
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


def sniff(data: bytes) -> str:
    """The image kind a file's content says it is (never its name or content type)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[4:8] == b"ftyp" and (
        data[8:12] in HEIF_BRANDS
        or any(data[i : i + 4] in HEIF_BRANDS for i in range(16, min(len(data), 64), 4))
    ):
        return "heif"
    raise domain.PhotoRefusedError(
        domain.UNSUPPORTED_FORMAT, "not a JPEG, PNG, WebP or HEIC photo"
    )


def _register_heif() -> None:
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - a declared dependency
        return
    pillow_heif.register_heif_opener()


_register_heif()


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
    kind = sniff(data)
    image = Image.open(io.BytesIO(data), formats=_pillow_formats(kind))
    if image.format not in KINDS[kind]:
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


def _pillow_formats(kind: str) -> list[str]:
    return sorted(KINDS[kind])


def _flatten(image: Image.Image) -> Image.Image:
    """RGB with any transparency composed over white, as a viewer would show it.

    16-bit greyscale is scaled to 8 bits (a plain convert would clip it to white).
    """
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255
        grey = np.clip(values * (255.0 / peak), 0, 255).round().astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def pixels(image: Image.Image) -> np.ndarray:
    """A contiguous H x W x 3 uint8 array (what the detector and encoder read)."""
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def render(
    image: Image.Image,
    faces: Sequence[domain.FaceOutcome],
    limits: domain.Limits,
    texts: Sequence[domain.TextOutcome] = (),
    extra_masks: Sequence[domain.Box] = (),
) -> Rendered:
    """Mask at full resolution (boxes in ``image``'s pixels), then resize, then encode
    without metadata. The preview shows the reported boxes in output pixels."""
    array = np.array(image.convert("RGB"), dtype=np.uint8)
    regions = [f.box for f in faces if f.masked]
    regions += [t.box for t in texts if t.masked]
    regions += list(extra_masks)
    for box in regions:
        _mask(array, box, limits.mask_style)
    source = (array.shape[1], array.shape[0])
    width, height = domain.output_size(*source, limits.max_side)
    masked = Image.fromarray(array, "RGB")
    del array
    if (width, height) != source:
        masked = masked.resize(
            (width, height), Image.Resampling.LANCZOS, reducing_gap=3.0
        )
    out = np.asarray(masked, dtype=np.uint8)
    redacted = _jpeg(out, limits.jpeg_quality)
    target = (width, height)
    annotated = _annotate(
        out,
        [replace(f, box=domain.to_target(f.box, source, target)) for f in faces],
        [replace(t, box=domain.to_target(t.box, source, target)) for t in texts],
        [domain.to_target(b, source, target) for b in extra_masks],
    )
    preview = _jpeg(annotated, limits.jpeg_quality)
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


def _annotate(
    array: np.ndarray,
    faces: Sequence[domain.FaceOutcome],
    texts: Sequence[domain.TextOutcome] = (),
    added: Sequence[domain.Box] = (),
) -> np.ndarray:
    """The approver's preview: every face, text region and added mask, labelled."""
    image = Image.fromarray(array.copy(), "RGB")
    draw = ImageDraw.Draw(image)
    line = max(2, max(image.size) // 400)
    font = ImageFont.load_default(size=max(12, max(image.size) // 60))

    def mark(box: domain.Box, colour: tuple[int, int, int], label: str) -> None:
        left, top, right, bottom = box
        draw.rectangle(
            (left, top, max(left, right - 1), max(top, bottom - 1)),
            outline=colour,
            width=line,
        )
        draw.text(
            (left, max(0, top - line)),
            label,
            fill=colour,
            font=font,
            anchor="lb" if top > 14 else "lt",
        )

    for face in faces:
        if face.masked:
            mark(
                face.box, MASKED_COLOUR, f"{face.index + 1}: {face.reason or 'masked'}"
            )
        else:
            mark(
                face.box, SHOWN_COLOUR, f"{face.index + 1}: {face.pupil_id or 'shown'}"
            )
    for text in texts:
        label = "name masked" if text.masked else "text visible"
        mark(text.box, TEXT_COLOUR, f"T{text.index + 1}: {label}")
    for box in added:
        mark(box, ADDED_COLOUR, "approver mask")
    return np.asarray(image)
