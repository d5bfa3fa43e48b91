"""Upload rules: what a photo file must be, where it is kept, what a post is. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from shared.errors import (
    InvalidInputError,
    PayloadTooLargeError,
    UnsupportedMediaError,
)

MAX_PHOTOS = 10
MAX_CAPTION = 2200  # the strictest network we target (Instagram)
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
PURPOSE = re.compile(r"^[a-z][a-z_]{0,39}$")
SCHOOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")


class EmptyFileError(InvalidInputError):
    code = "empty_file"


class FileTooLargeError(PayloadTooLargeError):
    code = "file_too_large"


class UnsupportedFormatError(UnsupportedMediaError):
    code = "unsupported_format"


class DuplicatePhotoError(InvalidInputError):
    code = "duplicate_photo"


@dataclass(frozen=True)
class ImageType:
    ext: str
    content_type: str


JPEG = ImageType("jpg", "image/jpeg")
PNG = ImageType("png", "image/png")
WEBP = ImageType("webp", "image/webp")
HEIC = ImageType("heic", "image/heic")
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}


def sniff(head: bytes) -> ImageType | None:
    """The image type told by the file's first bytes (never by its name), or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return HEIC
    return None


@dataclass(frozen=True)
class Photo:
    """One uploaded file, checked and hashed, ready to store."""

    filename: str
    sha256: str
    size: int
    kind: ImageType

    def key(self, post_id: str) -> str:
        return f"originals/{post_id}/{self.sha256}.{self.kind.ext}"


@dataclass(frozen=True)
class Draft:
    """What the teacher asked for, validated."""

    school_id: str
    author_id: str
    caption: str
    purpose: str
    accounts: tuple[str, ...]
    publish_on: date | None


def check_photo(
    filename: str, sha256: str, size: int, head: bytes, limit: int
) -> Photo:
    """A photo must be non-empty, within the size limit and a JPEG/PNG/WebP/HEIC."""
    name = safe_filename(filename)
    if size == 0:
        raise EmptyFileError(f"{name} is empty")
    if size > limit:
        raise FileTooLargeError(f"{name} is larger than {limit} bytes")
    kind = sniff(head)
    if kind is None:
        raise UnsupportedFormatError(f"{name} is not a JPEG, PNG, WebP or HEIC image")
    return Photo(filename=name, sha256=sha256, size=size, kind=kind)


def check_photos(photos: list[Photo]) -> list[Photo]:
    if not photos:
        raise InvalidInputError("attach at least one photo", code="no_photos")
    if len(photos) > MAX_PHOTOS:
        raise InvalidInputError(
            f"at most {MAX_PHOTOS} photos per post", code="too_many_photos"
        )
    seen: set[str] = set()
    for photo in photos:
        if photo.sha256 in seen:
            raise DuplicatePhotoError(f"{photo.filename} was attached twice")
        seen.add(photo.sha256)
    return photos


def safe_filename(filename: str) -> str:
    """The base name only, printable, at most 200 characters (for receipts and logs)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable()).strip()
    return cleaned[:200] or "photo"


def split_accounts(values: list[str]) -> tuple[str, ...]:
    """Account ids from repeated or comma-separated fields; order kept, no repeats."""
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            account = part.strip()
            if account and account not in out:
                out.append(account)
    if not out:
        raise InvalidInputError("choose at least one account", code="no_accounts")
    bad = [a for a in out if not ACCOUNT_ID.match(a)]
    if bad:
        raise InvalidInputError(f"not an account id: {bad[0]}", code="bad_account")
    return tuple(out)
