"""Messages handled or produced by the approval service."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from shared.contracts.base import Command, Event, Message, Model


class SeenPhoto(Model):
    """What the approver had in front of them for one photo."""

    revision: int = Field(ge=0)
    sha256: str = Field(max_length=64)


class RecordDecision(Command):
    """An approver's approve/reject for a post. Approval's API applies it at once (the
    record in the trail); its worker applies one sent by an older release."""

    TYPE: ClassVar[str] = "approval.record_decision"
    VERSION: ClassVar[int] = 1

    post_id: str
    approver_id: str
    approve: bool
    reason: str = ""
    school_id: str | None = None  # lets a school's auditors see their decisions
    # photo id -> the revision and redacted image hash the approver saw: an approval
    # of anything else is refused ("the photo changed since you looked")
    seen: dict[str, SeenPhoto] = {}


class DecisionRefused(Event):
    """An approve/reject that was refused: the post changed, someone decided first,
    the approver named a face in it, ... The reason says which; nothing changed."""

    TYPE: ClassVar[str] = "approval.decision_refused"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    approver_id: str
    approve: bool
    code: str
    reason: str


class ShownFace(Model):
    """A pupil shown in the approved image and the consent records it rests on."""

    pupil_id: str
    consent_versions: list[str] = []


class ApprovedImage(Model):
    photo_id: str
    redacted_key: str
    sha256: str
    shown: list[ShownFace] = []


class PostApproved(Event):
    """A person confirmed the post; only its redacted images may be published."""

    TYPE: ClassVar[str] = "post.approved"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    author_id: str
    approved_by: str
    caption: str = ""
    accounts: list[str] = Field(min_length=1)
    images: list[ApprovedImage] = Field(min_length=1)
    round: int = Field(default=1, ge=1)  # the n-th approval of this post


class PostRejected(Event):
    """The post will not be published: an approver said no, or a photo was refused."""

    TYPE: ClassVar[str] = "post.rejected"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    reason: str
    rejected_by: str | None = None  # None when the system refused it


class FitImage(Model):
    photo_id: str
    redacted_key: str


class CheckFit(Command):
    """Approval asks publishing whether a post awaiting approval fits each target
    account (caption with the account's footer, images, formats, sizes); publishing
    answers ``post.fit_checked``. Sent again after every re-rendering."""

    TYPE: ClassVar[str] = "publishing.check_fit"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    caption: str = ""
    accounts: list[str] = Field(min_length=1)
    images: list[FitImage] = []


class PostRecalled(Event):
    """An approved post that is not live yet must not go live in this round: consent
    changed for a pupil it shows. It is back with the approver, being re-rendered."""

    TYPE: ClassVar[str] = "post.recalled"
    VERSION: ClassVar[int] = 1

    post_id: str
    school_id: str
    round: int
    reason: str
    pupils: list[str] = []


# Every message class this producer defines (the registry in __init__ collects them).
CONTRACTS: tuple[type[Message], ...] = (
    CheckFit,
    RecordDecision,
    DecisionRefused,
    PostApproved,
    PostRejected,
    PostRecalled,
)

__all__ = [
    "ApprovedImage",
    "CheckFit",
    "DecisionRefused",
    "FitImage",
    "SeenPhoto",
    "PostRecalled",
    "ShownFace",
    "PostApproved",
    "PostRejected",
    "RecordDecision",
]
