"""Upload use cases: take a post in (originals stored before the unit, removed if it
does not commit), and decide whether a device may upload (refusals audited)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from services.intake import domain, originals
from services.intake.originals import StorageUnavailableError, Upload
from services.intake.ports import NewPost, StoredPhoto, Unit, UseCasePorts
from shared import contracts
from shared.errors import ForbiddenError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Receipt:
    post_id: str
    photos: tuple[StoredPhoto, ...]
    published: bool  # False: recorded, its messages wait in the outbox
    deletion_due_at: datetime | None = None


# -- uploads --------------------------------------------------------------------------


def submit_post(
    ports: UseCasePorts,
    draft: domain.Draft,
    uploads: Iterable[Upload],
    *,
    post_id: str,
    device: domain.Device | None = None,
) -> Receipt:
    """Check and store every original, then record the post, its photos and, for a
    personal device, one deletion obligation per photo, emitting ``post.submitted``
    and one ``receipt.issued`` per photo: one unit of work.

    Nothing is recorded (and no receipt answered) unless every original is stored and
    the unit committed; if it does not commit, the originals are removed (503). A
    broker outage leaves the post recorded and its messages waiting in the outbox.
    """
    read = [originals.read_photo(u, ports.max_upload_bytes) for u in uploads]
    domain.check_photos([photo for photo, _ in read])
    stored = originals.store(post_id, read, ports.originals)
    post = NewPost(
        post_id=post_id,
        draft=draft,
        photos=stored,
        device_id=device.device_id if device else None,
    )
    at = ports.now()
    personal = device is not None and device.must_delete
    due = domain.deletion_due(at, ports.deletion_grace) if personal else None
    unit = ports.unit()
    committed = False
    try:
        with unit:
            envelope = _record(unit, post, device, at, due)
            unit.commit()
            committed = True
    except Exception as exc:
        if committed:  # recorded; only sending failed: the relay sends it later
            raise
        logger.error(
            "post %s could not be recorded (%s); removing its originals",
            post_id,
            type(exc).__name__,
        )
        originals.forget(ports.originals, stored)
        raise StorageUnavailableError(
            "the upload could not be recorded; nothing was kept, please try again"
        ) from exc
    published = envelope.id not in unit.waiting
    logger.info(
        "post %s recorded with %d photo(s)",
        post_id,
        len(stored),
        extra={"post_id": post_id, "published": published},
    )
    return Receipt(
        post_id=post_id, photos=stored, published=published, deletion_due_at=due
    )


def _record(
    unit: Unit,
    post: NewPost,
    device: domain.Device | None,
    at: datetime,
    due: datetime | None,
) -> contracts.Envelope:
    """The post, its photos and obligations, and its messages, in ``unit``."""
    unit.posts.add(post, at)
    if device is not None and due is not None:
        unit.obligations.open(_obligations(post, device, at, due))
    actor = post.draft.author_name or post.draft.author_id
    envelope = unit.emit(
        submitted(post),
        actor=actor,
        message_id=contracts.deterministic_id("post.submitted", post.post_id),
    )
    for p in post.photos:
        unit.emit(
            _receipt_issued(post, p, due),
            actor=actor,
            message_id=contracts.deterministic_id("receipt.issued", p.receipt_id),
        )
    return envelope


def submitted(post: NewPost) -> contracts.PostSubmitted:
    draft = post.draft
    return contracts.PostSubmitted(
        post_id=post.post_id,
        school_id=draft.school_id,
        author_id=draft.author_id,
        caption=draft.caption,
        purpose=draft.purpose,
        accounts=list(draft.accounts),
        publish_on=draft.publish_on,
        device_id=post.device_id,
        photos=[
            contracts.PhotoRef(
                photo_id=p.photo_id,
                original_key=p.key,
                sha256=p.photo.sha256,
                bytes=p.photo.size,
                filename=p.photo.filename,
            )
            for p in post.photos
        ],
    )


def _receipt_issued(
    post: NewPost, p: StoredPhoto, due: datetime | None
) -> contracts.ReceiptIssued:
    return contracts.ReceiptIssued(
        receipt_id=p.receipt_id,
        post_id=post.post_id,
        photo_id=p.photo_id,
        school_id=post.draft.school_id,
        author_id=post.draft.author_id,
        sha256=p.photo.sha256,
        bytes=p.photo.size,
        stored_at=p.key,
        device_id=post.device_id,
        deletion_due_at=due,
    )


def _obligations(
    post: NewPost, device: domain.Device, at: datetime, due: datetime
) -> list[domain.Obligation]:
    return [
        domain.Obligation(
            receipt_id=p.receipt_id,
            post_id=post.post_id,
            school_id=post.draft.school_id,
            device_id=device.device_id,
            owner=device.owner,
            sha256=p.photo.sha256,
            filename=p.photo.filename,
            opened_at=at,
            due_at=due,
        )
        for p in post.photos
    ]


def authorise_upload(
    ports: UseCasePorts,
    token: str | None,
    *,
    user_id: str,
    username: str,
    school: str | None,
) -> domain.Device:
    """The caller's approved device for this school (noted as seen), or a 403 with
    the reason (the refused attempt is audited first)."""
    with ports.unit() as unit:
        device = (
            unit.devices.by_token(domain.hash_secret(token.strip())) if token else None
        )
        overdue = (
            unit.obligations.overdue_count(device.device_id, ports.now())
            if device is not None and device.status == domain.APPROVED
            else 0
        )
        problem: ForbiddenError | None
        if not token:
            problem = domain.DeviceRefusedError(
                "uploads need an enrolled device: send its token in X-Device-Token "
                "or enrol this browser",
                code="device_required",
            )
        else:
            problem = domain.refusal(
                device, username, school, overdue, block_overdue=ports.block_overdue
            )
        if problem is None:
            assert device is not None
            unit.devices.seen(device.device_id, ports.now())
            unit.commit()
            return device
    refuse(
        ports, problem, user_id=user_id, username=username, school=school, device=device
    )
    raise problem


def refuse(
    ports: UseCasePorts,
    problem: ForbiddenError,
    *,
    user_id: str,
    username: str,
    school: str | None,
    device: domain.Device | None,
) -> None:
    """Audit a refused attempt (through the outbox, so it is never lost); the
    refusal stands even if it cannot be recorded."""
    logger.warning(
        "upload refused: %s",
        problem.code,
        extra={"device_id": device.device_id if device else None, "user": user_id},
    )
    message = contracts.UploadRefused(
        reason=problem.code,
        user_id=user_id,
        username=username,
        school_id=school or (device.school_id if device else None),
        device_id=device.device_id if device else None,
    )
    try:
        with ports.unit() as unit:
            unit.emit(message, actor=user_id)
            unit.commit()
    except Exception:  # noqa: BLE001 - the refusal stands even if it cannot be noted
        logger.exception("could not record a refused upload")
