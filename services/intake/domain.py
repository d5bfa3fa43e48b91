"""Upload rules: what a photo file must be, where it is kept, what a post is. Pure."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from shared.errors import (
    ConflictError,
    ForbiddenError,
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
    author_name: str = ""  # the author's username: the actor IT sees in the trail


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


# --- Devices: who may upload from what, and what must be deleted afterwards --------

TRUST = "trust"
PERSONAL = "personal"
KINDS = (TRUST, PERSONAL)
PENDING, APPROVED, REVOKED = "pending", "approved", "revoked"
USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.@\-]{0,63}$")
ENROL_MINUTES = 15  # an enrolment code's lifetime
GRACE_MINUTES = 15  # how long a personal device may keep an uploaded original
# Enrolment codes: 12 characters from 32 unambiguous ones (60 bits), shown as 4-4-4.
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12


class DeviceRefusedError(ForbiddenError):
    """An upload attempt from a device that may not upload (403 with a reason)."""

    code = "device_refused"


class EnrolmentError(ForbiddenError):
    code = "enrolment_code_invalid"


class DeviceStateError(ConflictError):
    code = "device_state"


@dataclass(frozen=True)
class Device:
    """A registered device of one staff member at one school."""

    device_id: str
    school_id: str
    name: str
    owner: str  # the staff member's username
    kind: str
    status: str
    registered_by: str
    registered_at: datetime
    approved_by: str | None = None
    approved_at: datetime | None = None
    revoked_by: str | None = None
    revoked_at: datetime | None = None
    last_seen_at: datetime | None = None
    enrolled_at: datetime | None = None

    @property
    def must_delete(self) -> bool:
        """Originals uploaded from a device not owned by the trust must leave it."""
        return self.kind == PERSONAL


@dataclass(frozen=True)
class Obligation:
    """A personal device must delete the original behind a receipt by ``due_at``."""

    receipt_id: str
    post_id: str
    school_id: str
    device_id: str
    owner: str
    sha256: str
    filename: str
    opened_at: datetime
    due_at: datetime
    closed_at: datetime | None = None
    deleted_at: datetime | None = None
    method: str | None = None
    confirmed_by: str | None = None
    overdue_at: datetime | None = None

    def overdue(self, now: datetime) -> bool:
        return self.closed_at is None and now >= self.due_at

    def close(
        self, at: datetime, deleted_at: datetime | None, method: str, by: str
    ) -> Obligation:
        """Closed at ``at`` by ``by``: the original was deleted at ``deleted_at``
        (never later than now; unknown: now)."""
        deleted = min(deleted_at, at) if deleted_at is not None else at
        return replace(
            self, closed_at=at, deleted_at=deleted, method=method[:40], confirmed_by=by
        )

    @property
    def late(self) -> bool:
        return self.deleted_at is not None and self.deleted_at > self.due_at


def hash_secret(secret: str) -> str:
    """How device tokens and enrolment codes are kept: SHA-256 hex.

    Both are high-entropy random strings (a 32-byte token, a 60-bit code living 15
    minutes), so a slow password hash adds nothing; the hash only keeps a copy of the
    table from being usable as credentials.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_code(code: str) -> str:
    """Codes are typed by people: ignore case, spaces and dashes."""
    return "".join(c for c in code.upper() if c.isalnum())


def format_code(raw: str) -> str:
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def check_new_device(school: str, owner: str, kind: str, name: str) -> None:
    if not SCHOOL.match(school):
        raise InvalidInputError(f"not a school slug: {school}", code="bad_school")
    if not USERNAME.match(owner):
        raise InvalidInputError(f"not a username: {owner}", code="bad_owner")
    if kind not in KINDS:
        raise InvalidInputError("kind must be trust or personal", code="bad_kind")
    if len(name) > 100:
        raise InvalidInputError("the name is too long", code="bad_name")


def refusal(
    device: Device | None,
    username: str,
    school: str | None,
    overdue: int = 0,
    block_overdue: bool = True,
) -> DeviceRefusedError | None:
    """Why this device may not upload for ``username`` to ``school``; None if it may.

    Default deny: only an approved device of the caller, for the post's school, with
    no overdue deletion (unless that block is switched off) may upload.
    """
    if device is None:
        return DeviceRefusedError(
            "this device is not registered; ask IT to enrol it", code="unknown_device"
        )
    if device.status == REVOKED:
        return DeviceRefusedError(
            "this device has been revoked; ask IT", code="device_revoked"
        )
    if device.status != APPROVED:
        return DeviceRefusedError(
            "this device is waiting for approval by the COO, headteacher or IT",
            code="device_pending",
        )
    if device.owner != username:
        return DeviceRefusedError(
            "this device belongs to another member of staff", code="device_not_yours"
        )
    if school is not None and device.school_id != school:
        return DeviceRefusedError(
            f"this device is registered for {device.school_id}, not {school}",
            code="device_wrong_school",
        )
    if overdue and block_overdue:
        return DeviceRefusedError(
            f"{overdue} uploaded photo(s) are still on this device past the deadline: "
            "delete them and confirm before uploading again",
            code="deletion_overdue",
        )
    return None


def check_transition(device: Device, to: str) -> None:
    """pending → approved → revoked; revoked is final."""
    if device.status == REVOKED:
        raise DeviceStateError("a revoked device stays revoked; register it again")
    if to == APPROVED and device.status == APPROVED:
        raise DeviceStateError("the device is already approved")


def transition(device: Device, to: str, by: str, at: datetime) -> Device:
    """The device approved or revoked by ``by`` at ``at``; raises if not allowed. A
    revoked device keeps its token, so its refusals can name the reason."""
    check_transition(device, to)
    if to == APPROVED:
        return replace(device, status=to, approved_by=by, approved_at=at)
    return replace(device, status=to, revoked_by=by, revoked_at=at)


def enrolment_refusal(
    device_id: str | None,
    expires_at: datetime | None,
    used_at: datetime | None,
    now: datetime,
) -> EnrolmentError | None:
    if device_id is None or expires_at is None:
        return EnrolmentError("that enrolment code is not valid")
    if used_at is not None:
        return EnrolmentError(
            "that enrolment code has been used already", code="enrolment_code_used"
        )
    if now >= expires_at:
        return EnrolmentError(
            "that enrolment code has expired; ask IT for a new one",
            code="enrolment_code_expired",
        )
    return None


def deletion_due(opened_at: datetime, grace: timedelta) -> datetime:
    return opened_at + grace
