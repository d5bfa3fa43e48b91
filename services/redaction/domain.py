"""Redaction rules: which faces are masked, where, and why a file is refused. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from shared.errors import InvalidInputError

Box = tuple[int, int, int, int]  # left, top, right, bottom; right/bottom exclusive

# CenterFace boxes are narrower than a head. Measured on faces_dir/detection (masked =
# >= 90% of a labelled box changed): 1.3 -> 88.0%, 1.5 -> 91.3%, 1.7 -> 93.4%,
# 1.9 -> 95.0% recall; below 1.9 the >= 40 px band (90.3%) falls below what CenterFace
# finds by IoU (91.9%) (benchmarks/redaction.py).
MASK_GROWTH = 1.9
UNKNOWN = "unknown"
PUPIL_NAME = "pupil_name"
READABLE_TEXT = "readable_text"
OCR_OK = "ok"
OCR_UNAVAILABLE = "unavailable"
RETENTION_DAYS = 30

# PhotoRefused.reason codes
UNSUPPORTED_FORMAT = "unsupported_format"
CORRUPT = "corrupt"
TRUNCATED = "truncated"
TOO_LARGE = "too_large"
MULTI_FRAME = "multi_frame"
EMPTY = "empty"


class PhotoRefusedError(InvalidInputError):
    """A file that cannot be processed safely; ``code`` is the PhotoRefused reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail, code=reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Limits:
    """How big a photo may be, and what the redacted copy looks like."""

    max_bytes: int = 40 * 1024 * 1024
    max_pixels: int = 50_000_000  # a 48 MP phone photo fits; a decompression bomb not
    max_side: int = 2048  # long side of the redacted copy
    jpeg_quality: int = 85
    mask_style: str = "solid"  # solid | mosaic
    mask_growth: float = MASK_GROWTH


@dataclass(frozen=True)
class Face:
    index: int
    box: Box
    score: float


@dataclass(frozen=True)
class Decision:
    index: int
    show: bool
    reason: str
    pupil_id: str | None = None
    consent_versions: tuple[str, ...] = ()  # what a shown face's consent rests on


@dataclass(frozen=True)
class FaceOutcome:
    """What was done to one face; ``box`` is in the pixels of the image it refers to
    (the original while rendering, the redacted copy once reported)."""

    index: int
    box: Box
    masked: bool
    reason: str | None
    pupil_id: str | None
    consent_versions: tuple[str, ...] = ()


@dataclass(frozen=True)
class TextDecision:
    index: int
    mask: bool
    reason: str


@dataclass(frozen=True)
class TextOutcome:
    """What was done to one region of readable text (never the text itself)."""

    index: int
    box: Box
    masked: bool
    reason: str  # pupil_name | readable_text | unknown (no decision: masked)


@dataclass(frozen=True)
class Redaction:
    redacted_key: str
    preview_key: str
    sha256: str
    width: int
    height: int
    faces: tuple[FaceOutcome, ...]
    texts: tuple[TextOutcome, ...] = ()
    ocr: str = OCR_UNAVAILABLE
    revision: int = 0
    added_masks: tuple[Box, ...] = ()  # output pixels


@dataclass(frozen=True)
class Refusal:
    reason: str
    detail: str


@dataclass(frozen=True)
class Closure:
    """The post was published or rejected: the original's retention clock runs."""

    reason: str  # post_published | post_rejected
    at: datetime


@dataclass(frozen=True)
class PhotoRecord:
    """A photo as redaction knows it: never its encodings, never its bytes."""

    photo_id: str
    post_id: str
    school_id: str
    original_key: str
    purpose: str = "social_media"
    platforms: tuple[str, ...] = ()  # the post's target account ids (column name kept)
    publish_on: date | None = None
    width: int = 0
    height: int = 0
    faces: tuple[Face, ...] = ()
    refusal: Refusal | None = None
    redaction: Redaction | None = None
    texts: tuple[Box, ...] = ()  # OCR regions by index (the text is never stored)
    ocr: str = OCR_UNAVAILABLE
    revision: int = 0  # the newest revision asked for (0: the first pass)
    extra_masks: tuple[Box, ...] = ()  # an approver's masks, original pixels
    named: tuple[tuple[int, str], ...] = ()  # face index -> pupil id, by an approver
    closed: Closure | None = None
    original_deleted: bool = False

    @property
    def status(self) -> str:
        if self.refusal is not None:
            return "refused"
        if self.redaction is not None:
            return "redacted"
        return "detected"


def _suffix(revision: int) -> str:
    return f"-r{revision}" if revision else ""


def redacted_key(post_id: str, photo_id: str, revision: int = 0) -> str:
    return f"redacted/{post_id}/{photo_id}{_suffix(revision)}.jpg"


def preview_key(post_id: str, photo_id: str, revision: int = 0) -> str:
    return f"previews/{post_id}/{photo_id}{_suffix(revision)}.jpg"


def original_due(record: PhotoRecord, now: datetime, retention_days: int) -> bool:
    """The original may go: its post was closed at least ``retention_days`` ago."""
    return (
        not record.original_deleted
        and record.closed is not None
        and now >= record.closed.at + timedelta(days=retention_days)
    )


def clip(box: tuple[float, float, float, float], width: int, height: int) -> Box:
    """Round outwards to whole pixels and keep inside the image."""
    left, top, right, bottom = box
    return (
        max(0, min(width, math.floor(left))),
        max(0, min(height, math.floor(top))),
        max(0, min(width, math.ceil(right))),
        max(0, min(height, math.ceil(bottom))),
    )


def enlarge(box: Box, width: int, height: int, factor: float = MASK_GROWTH) -> Box:
    """The box grown ``factor`` times about its centre, clipped to the image."""
    left, top, right, bottom = box
    cx, cy = (left + right) / 2, (top + bottom) / 2
    half_w, half_h = (right - left) * factor / 2, (bottom - top) * factor / 2
    return clip((cx - half_w, cy - half_h, cx + half_w, cy + half_h), width, height)


def output_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Size of the redacted copy: the long side at most ``max_side``, aspect kept."""
    long_side = max(width, height)
    if long_side <= max_side:
        return width, height
    scale = max_side / long_side
    return max(1, round(width * scale)), max(1, round(height * scale))


def scale_box(box: Box, sx: float, sy: float, width: int, height: int) -> Box:
    """A box in resized pixels, rounded outwards so it still covers the same region."""
    left, top, right, bottom = box
    return clip((left * sx, top * sy, right * sx, bottom * sy), width, height)


def to_source(box: Box, source: tuple[int, int], target: tuple[int, int]) -> Box:
    """A box in the redacted copy's pixels mapped back to the original's, outwards."""
    (sw, sh), (tw, th) = source, target
    return scale_box(box, sw / tw, sh / th, sw, sh)


def to_target(box: Box, source: tuple[int, int], target: tuple[int, int]) -> Box:
    """A box in the original's pixels mapped to the redacted copy's, outwards."""
    (sw, sh), (tw, th) = source, target
    return scale_box(box, tw / sw, th / sh, tw, th)


def decide_masks(
    faces: Iterable[Face],
    decisions: Iterable[Decision],
    *,
    source: tuple[int, int],
    target: tuple[int, int] | None = None,
    growth: float = MASK_GROWTH,
) -> list[FaceOutcome]:
    """Default deny: every face is masked unless its decision says ``show``.

    A masked face covers its box grown ``growth`` times; boxes are mapped from
    ``source`` (the decoded image) to ``target`` (default: ``source``) pixels.
    """
    by_index = {d.index: d for d in decisions}
    sw, sh = source
    target = target or source
    outcomes = []
    for face in faces:
        decision = by_index.get(face.index)
        shown = decision is not None and decision.show
        region = face.box if shown else enlarge(face.box, sw, sh, growth)
        outcomes.append(
            FaceOutcome(
                index=face.index,
                box=to_target(region, source, target),
                masked=not shown,
                reason=None if shown else (decision.reason if decision else UNKNOWN),
                pupil_id=decision.pupil_id if decision else None,
                consent_versions=(
                    decision.consent_versions if decision and shown else ()
                ),
            )
        )
    return outcomes


def decide_texts(
    regions: Sequence[Box],
    decisions: Iterable[TextDecision],
    *,
    fallback: Mapping[int, TextOutcome] | None = None,
) -> list[TextOutcome]:
    """Mask a pupil's name; flag other text. No decision (nor an earlier one): mask."""
    by_index = {d.index: d for d in decisions}
    earlier = fallback or {}
    outcomes = []
    for index, box in enumerate(regions):
        decision = by_index.get(index)
        if decision is not None:
            outcomes.append(TextOutcome(index, box, decision.mask, decision.reason))
        elif index in earlier:
            before = earlier[index]
            outcomes.append(TextOutcome(index, box, before.masked, before.reason))
        else:
            outcomes.append(TextOutcome(index, box, True, UNKNOWN))
    return outcomes
