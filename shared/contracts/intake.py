"""Messages produced by the intake service."""

from __future__ import annotations

from datetime import date, datetime
from typing import ClassVar

from pydantic import Field

from shared.contracts.base import Event, Message, Model


class PhotoRef(Model):
    photo_id: str
    original_key: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=1)
    filename: str = ""


class PostSubmitted(Event):
    """A teacher submitted a post; its originals are stored privately."""

    TYPE: ClassVar[str] = "post.submitted"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    author_id: str
    caption: str = ""
    purpose: str = "social_media"
    accounts: list[str] = Field(min_length=1)
    publish_on: date | None = None
    photos: list[PhotoRef] = Field(min_length=1)
    device_id: str | None = None


class DeviceRegistered(Event):
    """IT registered a device for a staff member; it may not upload until approved."""

    TYPE: ClassVar[str] = "device.registered"
    VERSION: ClassVar[int] = 1

    device_id: str
    school_id: str
    owner: str  # the staff member's username
    kind: str  # trust | personal
    name: str = ""


class DeviceApproved(Event):
    """An approver, admin or IT approved a device for uploads."""

    TYPE: ClassVar[str] = "device.approved"
    VERSION: ClassVar[int] = 1

    device_id: str
    school_id: str
    owner: str
    kind: str
    approved_by: str


class DeviceRevoked(Event):
    """A device was revoked: its token is refused from the next request on."""

    TYPE: ClassVar[str] = "device.revoked"
    VERSION: ClassVar[int] = 1

    device_id: str
    school_id: str
    owner: str
    revoked_by: str
    reason: str = ""


class DeviceEnrolled(Event):
    """A device exchanged its one-time enrolment code for a (new) device token."""

    TYPE: ClassVar[str] = "device.enrolled"
    VERSION: ClassVar[int] = 1

    device_id: str
    school_id: str
    owner: str
    via: str = "api"  # api (the uploader) | browser


class UploadRefused(Event):
    """An upload attempt was refused (unknown, pending, revoked or foreign device,
    or an overdue deletion); nothing was stored."""

    TYPE: ClassVar[str] = "upload.refused"
    VERSION: ClassVar[int] = 1

    reason: str  # the error code answered, e.g. device_revoked
    user_id: str
    username: str = ""
    school_id: str | None = None
    device_id: str | None = None


class ReceiptIssued(Event):
    """intake stored and committed one original and answered a receipt for it."""

    TYPE: ClassVar[str] = "receipt.issued"
    VERSION: ClassVar[int] = 1

    receipt_id: str
    post_id: str
    photo_id: str
    school_id: str
    author_id: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=1)
    stored_at: str
    device_id: str | None = None
    deletion_due_at: datetime | None = None  # set when the device must delete it


class DeletionConfirmed(Event):
    """The original behind a receipt was deleted from the device that uploaded it."""

    TYPE: ClassVar[str] = "deletion.confirmed"
    VERSION: ClassVar[int] = 1

    receipt_id: str
    post_id: str
    school_id: str
    device_id: str
    deleted_at: datetime
    method: str  # e.g. uploader-unlink, browser-confirmed, it-resolved
    confirmed_by: str
    late: bool = False


class DeletionOverdue(Event):
    """A personal device still holds an uploaded original past the grace period."""

    TYPE: ClassVar[str] = "deletion.overdue"
    VERSION: ClassVar[int] = 1

    receipt_id: str
    post_id: str
    school_id: str
    device_id: str
    owner: str
    due_at: datetime


# Every message class this producer defines (the registry in __init__ collects them).
CONTRACTS: tuple[type[Message], ...] = (
    PostSubmitted,
    DeviceRegistered,
    DeviceApproved,
    DeviceRevoked,
    DeviceEnrolled,
    UploadRefused,
    ReceiptIssued,
    DeletionConfirmed,
    DeletionOverdue,
)

__all__ = [
    "DeletionConfirmed",
    "DeletionOverdue",
    "DeviceApproved",
    "DeviceEnrolled",
    "DeviceRegistered",
    "DeviceRevoked",
    "PhotoRef",
    "PostSubmitted",
    "ReceiptIssued",
    "UploadRefused",
]
