"""Uploaded files: read and hash each one, keep the originals (deterministic keys) in
the originals store, and remove them again if the post cannot be recorded."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from services.intake import domain
from services.intake.ports import StoredPhoto
from shared import contracts
from shared.errors import DomainError
from shared.failures import Failure, classify
from shared.storage import BlobStore

logger = logging.getLogger(__name__)
CHUNK = 1024 * 1024
HEAD = 32


class StorageUnavailableError(DomainError):
    code = "storage_unavailable"
    status = 503


@dataclass(frozen=True)
class Upload:
    filename: str
    stream: IO[bytes]


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


def store(
    post_id: str, read: Sequence[tuple[domain.Photo, bytes]], originals: BlobStore
) -> tuple[StoredPhoto, ...]:
    """Put every original (its key and ids derived from the post and its hash); if
    one fails, remove those put and say the store is away (503)."""
    stored: list[StoredPhoto] = []
    try:
        for photo, data in read:
            key = photo.key(post_id)
            originals.put(key, data, photo.kind.content_type)
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
        forget(originals, stored)
        if isinstance(exc, OSError) or classify(exc) is not Failure.POISON:
            raise StorageUnavailableError(
                "the photo store is unavailable; nothing was kept, please try again"
            ) from exc
        raise
    return tuple(stored)


def forget(originals: BlobStore, stored: Sequence[StoredPhoto]) -> None:
    """Remove originals of a post that was not recorded (best effort: a store that
    is away leaves them, named in the log)."""
    for done in stored:
        try:
            originals.delete(done.key)
        except Exception:  # the store is away: say which original was left behind
            logger.warning("could not remove orphan original %s", done.key)
