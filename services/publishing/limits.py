"""Per-platform limits a post must fit before anyone approves it (issue 9 §4).

Pure: the standard library and ``twitter_text`` only. ``check`` says, in words a
teacher understands, every way a post does not fit an account; an empty list means it
fits. Nothing is ever truncated or cropped: a post that does not fit is changed by a
person or not sent to that account.

The caption checked is the text actually published: ``with_footer(caption, footer)``.
Lengths are counted in Unicode code points after NFC normalisation, except on X, which
counts weighted characters with its own ``twitter-text`` rules.

Sources (read for this module):

- X: 280 weighted characters; most CJK characters and emoji weigh 2, every URL counts
  as 23 (t.co), text is NFC-normalised, counted by ``twitter-text``:
  https://docs.x.com/fundamentals/counting-characters . Images 5 MB each (GIF 15 MB),
  JPEG, PNG, GIF and WEBP: https://docs.x.com/x-api/media (media types and size
  restrictions); up to 4 images per post (``POST /2/tweets``: ``media.media_ids``
  has minItems 1, maxItems 4 in X's OpenAPI document https://api.x.com/2/openapi.json
  ; https://docs.x.com/x-api/posts/create-post ).
- Instagram: caption "Maximum 2200 characters, 30 hashtags, and 20 @ tags"; image JPEG
  only ("Extended JPEG formats such as MPO and JPS are not supported"), 8 MB maximum,
  aspect ratio within 4:5 to 1.91:1:
  https://developers.facebook.com/docs/instagram-platform/instagram-graph-api/reference/ig-user/media
  ; carousels "are limited to 10 images, videos, or a mix of the two":
  https://developers.facebook.com/docs/instagram-platform/content-publishing .
  (The 320-1440 px width range is not checked: Instagram scales an image outside it.)
- LinkedIn: post commentary up to 3,000 characters; a multiImage post holds 2 to 20
  images ("minimum of 2 images and maximum of 20 images"), one image goes as a single
  image post:
  https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/multiimage-post-api
  ; images JPG, GIF or PNG of fewer than 36,152,320 pixels (Images API):
  https://learn.microsoft.com/en-us/linkedin/marketing/community-management/shares/images-api
  . LinkedIn documents no byte limit for images; we hold images to 5 MB (the figure
  the publishing tools document) so a refusal shows before approval, not after.
- Facebook Page: a post's text up to 63,206 characters (Facebook's long-standing post
  limit); photos "should be less than 4 MB and saved as JPG, PNG, GIF, TIFF, HEIF or
  WebP files" (Graph's own error for a refused photo upload;
  https://developers.facebook.com/docs/graph-api/reference/page/photos ). Meta
  documents no maximum number of ``attached_media`` photos in one post; we allow 10,
  the number the publishing tools document as safe.
- webhook and folder: no platform limits; a caption cap of 10,000 characters so a
  runaway caption is caught.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from twitter_text import parse_tweet

MB = 1024 * 1024
JPEG = "image/jpeg"
PNG = "image/png"
GIF = "image/gif"
WEBP = "image/webp"
_FORMAT_NAMES = {JPEG: "JPEG", PNG: "PNG", GIF: "GIF", WEBP: "WebP"}


@dataclass(frozen=True)
class ImageInfo:
    """What the checks need to know about one redacted image."""

    width: int
    height: int
    bytes: int
    content_type: str


@dataclass(frozen=True)
class Problem:
    """One way the post does not fit; ``message`` is for the approver to read."""

    code: str
    message: str


@dataclass(frozen=True)
class Rules:
    name: str  # how the platform is named to a person
    max_caption: int
    weighted: bool = False  # X's weighted counting
    min_images: int = 0
    max_images: int | None = None
    formats: frozenset[str] = frozenset()  # empty: any image type
    max_bytes: int | None = None
    max_pixels: int | None = None  # width * height must be below this
    aspect: tuple[Fraction, Fraction] | None = None  # width / height, inclusive


RULES: dict[str, Rules] = {
    "x": Rules(
        "X",
        max_caption=280,
        weighted=True,
        min_images=1,
        max_images=4,
        formats=frozenset({JPEG, PNG, GIF, WEBP}),
        max_bytes=5 * MB,
    ),
    "instagram": Rules(
        "Instagram",
        max_caption=2200,
        min_images=1,
        max_images=10,
        formats=frozenset({JPEG}),
        max_bytes=8 * MB,
        aspect=(Fraction(4, 5), Fraction(191, 100)),
    ),
    "linkedin": Rules(
        "LinkedIn",
        max_caption=3000,
        min_images=1,
        max_images=20,
        formats=frozenset({JPEG, PNG, GIF}),
        max_bytes=5 * MB,
        max_pixels=36_152_320,
    ),
    "facebook": Rules(
        "Facebook",
        max_caption=63_206,
        min_images=1,
        max_images=10,
        formats=frozenset({JPEG, PNG, GIF, WEBP}),
        max_bytes=4 * MB,
    ),
    "webhook": Rules("the website", max_caption=10_000),
    "folder": Rules("the folder", max_caption=10_000),
}


def with_footer(caption: str, footer: str) -> str:
    """The exact text published: the caption, a blank line, then the footer.

    Without a footer the caption is unchanged; trailing blank space of the caption
    is dropped before the footer so there is exactly one blank line between them."""
    if not footer.strip():
        return caption
    if not caption.strip():
        return footer.strip()
    return f"{caption.rstrip()}\n\n{footer.strip()}"


def caption_length(platform: str, text: str) -> int:
    """How long ``text`` is by the platform's own counting."""
    if _rules(platform).weighted:
        return int(parse_tweet(text).weightedLength)
    return len(unicodedata.normalize("NFC", text))


def check(
    platform: str, caption: str, footer: str, images: Sequence[ImageInfo]
) -> list[Problem]:
    """Every way the post (caption with the footer, and images) does not fit
    ``platform``; an empty list means it fits. Raises ``ValueError`` for an unknown
    platform."""
    rules = _rules(platform)
    text = with_footer(caption, footer)
    problems = _caption_problems(rules, text, bool(footer.strip()))
    problems += _count_problems(rules, len(images))
    for number, image in enumerate(images, start=1):
        problems += _image_problems(rules, number, image)
    return problems


def _rules(platform: str) -> Rules:
    try:
        return RULES[platform]
    except KeyError:
        raise ValueError(f"unknown platform {platform!r}") from None


def _caption_problems(rules: Rules, text: str, has_footer: bool) -> list[Problem]:
    if rules.weighted:
        parsed = parse_tweet(text)
        length = int(parsed.weightedLength)
        if not parsed.valid and length <= rules.max_caption:
            return [
                Problem(
                    "invalid_characters",
                    f"The caption contains characters {rules.name} does not accept.",
                )
            ]
    else:
        length = len(unicodedata.normalize("NFC", text))
    if length <= rules.max_caption:
        return []
    with_what = " with the footer" if has_footer else ""
    unit = " (X counts links as 23 and some characters as 2)" if rules.weighted else ""
    return [
        Problem(
            "caption_too_long",
            f"The caption is {length:,} characters{with_what}; {rules.name} allows "
            f"{rules.max_caption:,}{unit}.",
        )
    ]


def _count_problems(rules: Rules, count: int) -> list[Problem]:
    if count < rules.min_images:
        return [
            Problem(
                "too_few_images",
                f"{rules.name} needs at least {_photos(rules.min_images)}; "
                f"this post has {_photos(count)}.",
            )
        ]
    if rules.max_images is not None and count > rules.max_images:
        return [
            Problem(
                "too_many_images",
                f"This post has {_photos(count)}; {rules.name} allows at most "
                f"{rules.max_images}.",
            )
        ]
    return []


def _image_problems(rules: Rules, number: int, image: ImageInfo) -> list[Problem]:
    problems = []
    which = f"Photo {number}"
    if rules.formats and image.content_type not in rules.formats:
        kind = _FORMAT_NAMES.get(image.content_type, image.content_type or "unknown")
        allowed = " or ".join(sorted(_FORMAT_NAMES[f] for f in rules.formats))
        problems.append(
            Problem(
                "unsupported_format",
                f"{which} is a {kind} file; {rules.name} accepts {allowed} only.",
            )
        )
    if rules.max_bytes is not None and image.bytes > rules.max_bytes:
        problems.append(
            Problem(
                "image_too_large",
                f"{which} is {_size(image.bytes)}; {rules.name} allows "
                f"{_size(rules.max_bytes)} per photo.",
            )
        )
    if rules.max_pixels is not None and image.width * image.height >= rules.max_pixels:
        problems.append(
            Problem(
                "image_too_many_pixels",
                f"{which} is {image.width} x {image.height} pixels; {rules.name} "
                f"needs fewer than {rules.max_pixels:,} pixels in all.",
            )
        )
    problems += _aspect_problems(rules, which, image)
    return problems


def _aspect_problems(rules: Rules, which: str, image: ImageInfo) -> list[Problem]:
    if rules.aspect is None:
        return []
    if image.width <= 0 or image.height <= 0:
        return [Problem("unknown_size", f"{which} has no readable size.")]
    low, high = rules.aspect
    ratio = Fraction(image.width, image.height)
    if low <= ratio <= high:
        return []
    shape = "too tall" if ratio < low else "too wide"
    return [
        Problem(
            "aspect_ratio",
            f"{which} is {shape} for {rules.name} ({image.width} x {image.height} "
            f"pixels); it takes shapes from 4:5 (portrait) to 1.91:1 (landscape). "
            "Upload a cropped copy: Safepost never crops a photo itself.",
        )
    ]


def _photos(count: int) -> str:
    return "1 photo" if count == 1 else f"{count} photos"


def _size(size: int) -> str:
    """Megabytes rounded up to a tenth, so a file just over a limit never reads as
    equal to it."""
    return f"{math.ceil(size * 10 / MB) / 10:.1f} MB"
