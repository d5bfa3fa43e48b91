"""Taking a post in: check and hash each file, store the originals, record, publish."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO, Protocol

from services.intake import domain, outbox
from services.intake.ports import NewPost, PostLedger, StoredPhoto
from shared import contracts
from shared.bus import Publisher
from shared.errors import DomainError
from shared.failures import Failure, classify
from shared.storage import BlobStore

logger = logging.getLogger(__name__)
SERVICE = "intake"
CHUNK = 1024 * 1024
HEAD = 32


class StorageUnavailableError(DomainError):
    code = "storage_unavailable"
    status = 503


class SubmitPorts(Protocol):
    @property
    def ledger(self) -> PostLedger: ...

    @property
    def publisher(self) -> Publisher: ...

    @property
    def originals(self) -> BlobStore: ...


@dataclass(frozen=True)
class Upload:
    filename: str
    stream: IO[bytes]


@dataclass(frozen=True)
class Receipt:
    post_id: str
    photos: tuple[StoredPhoto, ...]
    published: bool
    deletion_due_at: datetime | None = None


def read_photo(upload: Upload, limit: int) -> tuple[domain.Photo, bytes]:
    """Read a file in chunks, hashing as it comes; stop once it is over the limit."""
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    size = 0
    while chunk := upload.stream.read(CHUNK):
        size += len(chunk)
        if size > limit:
            break
        digest.update(chunk)
        chunks.append(chunk)
    data = b"".join(chunks)
    photo = domain.check_photo(
        upload.filename, digest.hexdigest(), size, data[:HEAD], limit
    )
    return photo, data


def submit_post(
    draft: domain.Draft,
    uploads: Iterable[Upload],
    *,
    ports: SubmitPorts,
    post_id: str,
    limit: int,
    device: domain.Device | None = None,
    now: datetime | None = None,
    grace: timedelta = timedelta(minutes=domain.GRACE_MINUTES),
) -> Receipt:
    """Store every original, then record the post with its outbox rows (the post,
    one receipt per photo) and, for a personal device, one deletion obligation per
    photo, all in one transaction; then publish.

    Nothing is recorded (and no receipt answered) unless every original is stored and
    the record committed; a broker outage leaves the post recorded and its messages
    pending in the outbox for the relay.
    """
    read = [read_photo(u, limit) for u in uploads]
    domain.check_photos([photo for photo, _ in read])
    stored = _store(post_id, read, ports.originals)
    device_id = device.device_id if device else None
    post = NewPost(post_id=post_id, draft=draft, photos=stored, device_id=device_id)
    envelope = contracts.seal(
        submitted(post),
        producer=SERVICE,
        actor=draft.author_name or draft.author_id,
        message_id=contracts.deterministic_id("post.submitted", post_id),
    )
    at = now or contracts.now()
    due = domain.deletion_due(at, grace) if device and device.must_delete else None
    obligations = (
        [
            domain.Obligation(
                receipt_id=p.receipt_id,
                post_id=post_id,
                school_id=draft.school_id,
                device_id=device.device_id,
                owner=device.owner,
                sha256=p.photo.sha256,
                filename=p.photo.filename,
                opened_at=at,
                due_at=due,
            )
            for p in stored
        ]
        if device is not None and due is not None
        else []
    )
    receipts = [
        contracts.seal(
            contracts.ReceiptIssued(
                receipt_id=p.receipt_id,
                post_id=post_id,
                photo_id=p.photo_id,
                school_id=draft.school_id,
                author_id=draft.author_id,
                sha256=p.photo.sha256,
                bytes=p.photo.size,
                stored_at=p.key,
                device_id=device_id,
                deletion_due_at=due,
            ),
            producer=SERVICE,
            actor=draft.author_name or draft.author_id,
            message_id=contracts.deterministic_id("receipt.issued", p.receipt_id),
        )
        for p in stored
    ]
    try:
        ports.ledger.record(post, envelope, events=receipts, obligations=obligations)
    except Exception as exc:
        logger.error(
            "post %s could not be recorded (%s); removing its originals",
            post_id,
            type(exc).__name__,
        )
        for done in stored:
            _forget(ports.originals, done.key)
        raise StorageUnavailableError(
            "the upload could not be recorded; nothing was kept, please try again"
        ) from exc
    published = outbox.send(ports, envelope)
    for receipt in receipts:
        if not published or not outbox.send(ports, receipt):
            break
    logger.info(
        "post %s recorded with %d photo(s)",
        post_id,
        len(stored),
        extra={"post_id": post_id, "published": published},
    )
    return Receipt(
        post_id=post_id, photos=stored, published=published, deletion_due_at=due
    )


def _store(
    post_id: str, read: list[tuple[domain.Photo, bytes]], store: BlobStore
) -> tuple[StoredPhoto, ...]:
    stored: list[StoredPhoto] = []
    try:
        for photo, data in read:
            key = photo.key(post_id)
            store.put(key, data, photo.kind.content_type)
            stored.append(
                StoredPhoto(
                    photo_id=contracts.deterministic_id("photo", post_id, photo.sha256),
                    receipt_id=contracts.deterministic_id(
                        "receipt", post_id, photo.sha256
                    ),
                    key=key,
                    photo=photo,
                )
            )
    except Exception as exc:
        logger.error(
            "originals store failed for post %s: %s", post_id, type(exc).__name__
        )
        for done in stored:
            _forget(store, done.key)
        if isinstance(exc, OSError) or classify(exc) is not Failure.POISON:
            raise StorageUnavailableError(
                "the photo store is unavailable; nothing was kept, please try again"
            ) from exc
        raise
    return tuple(stored)


def _forget(store: BlobStore, key: str) -> None:
    try:
        store.delete(key)
    except Exception:  # the store is away: say which original was left behind
        logger.warning("could not remove orphan original %s", key)


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
