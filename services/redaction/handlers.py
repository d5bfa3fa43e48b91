"""Redaction's use cases: find faces and text, then mask all that is not shown;
close a post; delete originals past their retention.

Each runs in one unit of work (``bootstrap.handler_map``: ``transaction(ports.unit,
...)``): its record changes and the messages it returns commit together, and the
messages leave only through redaction's outbox. The blob stores (S3 or a folder) are
outside that transaction, so a use case that writes blobs writes them *first*, under
keys derived from what it is asked (post, photo, revision), and only then commits the
record and the outbox: a crash or a refused commit in between leaves at most a blob no
record points to, and the retry writes the same keys again (see ``redact_photo`` and
``delete_due_originals``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from services.redaction import domain, imaging, messages
from services.redaction.ports import (
    FaceDetector,
    FaceEncoder,
    PhotoRecords,
    Retention,
    TextReader,
    Unit,
)
from shared import contracts
from shared.errors import ConflictError, NotFoundError
from shared.storage import BlobStore

logger = logging.getLogger(__name__)


class UnknownPhotoError(NotFoundError):
    code = "unknown_photo"


@dataclass(frozen=True)
class Analysis:
    """What was found in a photo: face boxes with scores, text regions (or None)."""

    faces: list[tuple[domain.Box, float]]
    texts: list[tuple[domain.Box, str]] | None


def analyse(rgb: np.ndarray, detector: FaceDetector, reader: TextReader) -> Analysis:
    """Detect faces and read text side by side (tesseract runs as its own process)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocr") as pool:
        texts = pool.submit(reader.read, rgb)
        faces = detector.detect(rgb)
        return Analysis(faces, texts.result())


def detect_faces(
    event: contracts.PostSubmitted,
    *,
    originals: BlobStore,
    detector: FaceDetector,
    encoder: FaceEncoder,
    reader: TextReader,
    records: PhotoRecords,
    limits: domain.Limits,
) -> list[contracts.Message]:
    """Per photo: FacesDetected (boxes, encodings, text) or PhotoRefused (bad file).

    Boxes are stored once; a redelivery re-encodes the stored boxes and reads the
    same text again, so consent gets the same faces and texts with the same indices.
    In a unit of work the post is all or nothing: a photo that fails (not a refusal:
    an error, e.g. its original unreadable for now) keeps none of the post's records,
    and the retry detects every photo again. The transaction stays open while the
    post's photos are analysed (on SQLite, the embedded mode, it holds the write lock
    from the first new record to the commit: the sweep waits for it).
    """
    return [
        _detect_photo(
            event,
            photo,
            originals=originals,
            detector=detector,
            encoder=encoder,
            reader=reader,
            records=records,
            limits=limits,
        )
        for photo in event.photos
    ]


def _detect_photo(
    event: contracts.PostSubmitted,
    photo: contracts.PhotoRef,
    *,
    originals: BlobStore,
    detector: FaceDetector,
    encoder: FaceEncoder,
    reader: TextReader,
    records: PhotoRecords,
    limits: domain.Limits,
) -> contracts.Message:
    record = records.find(photo.photo_id)
    if record is not None and record.refusal is not None:
        return messages.refused(record, record.refusal)
    try:
        image = imaging.decode(originals.get(photo.original_key), limits)
    except domain.PhotoRefusedError as exc:
        logger.info("photo %s refused: %s", photo.photo_id, exc.reason)
        refusal = domain.Refusal(exc.reason, exc.detail)
        record = records.add(
            replace(messages.new_record(event, photo), refusal=refusal)
        )
        return messages.refused(record, record.refusal or refusal)
    rgb = imaging.pixels(image)
    del image
    if record is None:
        found = analyse(rgb, detector, reader)
        record = records.add(
            replace(
                messages.new_record(event, photo),
                width=rgb.shape[1],
                height=rgb.shape[0],
                faces=tuple(
                    domain.Face(i, box, score)
                    for i, (box, score) in enumerate(found.faces)
                ),
                texts=tuple(box for box, _ in found.texts or ()),
                ocr=domain.OCR_UNAVAILABLE if found.texts is None else domain.OCR_OK,
            )
        )
        texts = found.texts or []
    else:
        texts = (reader.read(rgb) or []) if record.texts else []
    if record.refusal is not None:
        return messages.refused(record, record.refusal)
    if record.ocr != domain.OCR_OK:
        logger.error("photo %s: OCR unavailable, text not checked", record.photo_id)
    logger.info(
        "photo %s: %d face(s), %d text region(s)",
        photo.photo_id,
        len(record.faces),
        len(record.texts),
    )
    return _detected(record, rgb, encoder, texts)


def _detected(
    record: domain.PhotoRecord,
    rgb: np.ndarray,
    encoder: FaceEncoder,
    texts: list[tuple[domain.Box, str]],
) -> contracts.FacesDetected:
    encodings = encoder.encode(rgb, [face.box for face in record.faces])
    return messages.detected(record, encodings, texts)


def redact_photo(
    event: contracts.FacesDecided,
    *,
    originals: BlobStore,
    redacted: BlobStore,
    previews: BlobStore,
    records: PhotoRecords,
    limits: domain.Limits,
) -> list[contracts.Message]:
    """Mask every face whose decision is not ``show`` (no decision: masked), every
    pupil's name and every undecided text, and the approver's extra masks, at full
    resolution; then resize, strip all metadata, store the copy and the preview.
    Already done for this revision: same answer. An older revision: nothing.

    The copy and the preview are stored before the record (the blob stores are not in
    the transaction), under keys fixed by post, photo and revision: if the record or
    the outbox cannot be committed after the blobs are written, the retry renders the
    same revision again and overwrites the same keys, and no record or message ever
    names a blob that is not there."""
    record = records.find(event.photo_id)
    if record is None:
        raise UnknownPhotoError(f"no detection stored for photo {event.photo_id}")
    if record.refusal is not None:
        return [messages.refused(record, record.refusal)]
    if event.revision < record.revision:
        logger.info("photo %s: decision for old revision ignored", record.photo_id)
        return []
    done = record.redaction
    if done is not None and done.revision == event.revision:
        return [messages.redacted(record, done)]
    if record.original_deleted:
        logger.warning("photo %s: original already deleted", record.photo_id)
        return []
    image = imaging.decode(originals.get(record.original_key), limits)
    if image.size != (record.width, record.height):
        raise ConflictError(f"photo {record.photo_id} decodes to a different size")
    source = image.size
    target = domain.output_size(*source, limits.max_side)
    faces = domain.decide_masks(
        record.faces,
        [
            domain.Decision(
                d.index, d.show, d.reason, d.pupil_id, tuple(d.consent_versions)
            )
            for d in event.decisions
        ],
        source=source,
        growth=limits.mask_growth,
    )
    earlier = {t.index: t for t in done.texts} if done else {}
    texts = domain.decide_texts(
        record.texts,
        [domain.TextDecision(t.index, t.mask, t.reason) for t in event.texts],
        fallback=earlier if event.revision else None,
    )
    rendered = imaging.render(image, faces, limits, texts, record.extra_masks)
    del image
    redaction = domain.Redaction(
        redacted_key=domain.redacted_key(
            record.post_id, record.photo_id, event.revision
        ),
        preview_key=domain.preview_key(record.post_id, record.photo_id, event.revision),
        sha256=rendered.sha256,
        width=rendered.width,
        height=rendered.height,
        faces=tuple(
            replace(f, box=domain.to_target(f.box, source, target)) for f in faces
        ),
        texts=tuple(
            replace(t, box=domain.to_target(t.box, source, target)) for t in texts
        ),
        ocr=record.ocr,
        revision=event.revision,
        added_masks=tuple(
            domain.to_target(b, source, target) for b in record.extra_masks
        ),
    )
    redacted.put(redaction.redacted_key, rendered.jpeg, "image/jpeg")
    previews.put(redaction.preview_key, rendered.preview, "image/jpeg")
    records.finish(record.photo_id, redaction)
    logger.info(
        "photo %s redacted (revision %d): %d of %d face(s), %d text region(s) masked",
        record.photo_id,
        event.revision,
        sum(o.masked for o in faces),
        len(faces),
        sum(t.masked for t in texts),
    )
    return [messages.redacted(record, redaction)]


def revise_redaction(
    command: contracts.ReviseRedaction,
    *,
    originals: BlobStore,
    encoder: FaceEncoder,
    records: PhotoRecords,
    limits: domain.Limits,
) -> list[contracts.Message]:
    """An approver's edits: keep them, then ask consent again (FacesDetected with the
    named faces and this revision); the photo is re-rendered from the original when
    consent answers. A stale or foreign command changes nothing."""
    record = records.find(command.photo_id)
    if record is None or (record.post_id, record.school_id) != (
        command.post_id,
        command.school_id,
    ):
        logger.warning("revision for unknown photo %s ignored", command.photo_id)
        return []
    if record.refusal is not None or record.original_deleted:
        logger.warning("revision of photo %s cannot be made", command.photo_id)
        return []
    if command.revision < record.revision:
        logger.info("photo %s: revision %d is stale", record.photo_id, command.revision)
        return []
    if command.revision > record.revision:
        size = (record.width, record.height)
        target = domain.output_size(*size, limits.max_side)
        added = [domain.to_source(b, size, target) for b in command.add_masks]
        masks = tuple(dict.fromkeys((*record.extra_masks, *added)))
        named = dict(record.named)
        known = {f.index for f in record.faces}
        named.update({i: p for i, p in command.named.items() if i in known})
        records.revise(record.photo_id, command.revision, masks, sorted(named.items()))
        record = replace(
            record,
            revision=command.revision,
            extra_masks=masks,
            named=tuple(sorted(named.items())),
        )
    image = imaging.decode(originals.get(record.original_key), limits)
    rgb = imaging.pixels(image)
    del image
    logger.info("photo %s: revision %d asked for", record.photo_id, record.revision)
    # Text was decided on the first pass: its decisions are kept, its words not resent.
    return [_detected(record, rgb, encoder, [])]


def close_post(
    event: contracts.PostPublished | contracts.PostRejected,
    *,
    retention: Retention,
    now: Callable[[], datetime],
) -> list[contracts.Message]:
    """A published or rejected post starts its originals' retention clock."""
    reason = (
        "post_published"
        if isinstance(event, contracts.PostPublished)
        else "post_rejected"
    )
    retention.close_post(event.post_id, domain.Closure(reason, now()))
    return []


def delete_due_originals(
    unit: Callable[[], Unit],
    *,
    originals: BlobStore,
    now: datetime,
    retention_days: int,
    producer: str,
) -> int:
    """Delete every original past its retention; how many were deleted.

    Each deletion is its own use case: the original is deleted from the store first
    (outside any transaction), then, in one unit of work, marked deleted and announced
    (``OriginalDeleted`` with an id derived from the photo, so a retry after a crash
    between the two sends the same message once). Marking or announcing before the
    deletion could claim a deletion that never happened; deleting again is harmless.
    """
    with unit() as reading:
        due = reading.retention.due(now, retention_days)
    deleted = 0
    for record in due:
        if not domain.original_due(record, now, retention_days) or not record.closed:
            continue
        originals.delete(record.original_key)
        with unit() as work:
            work.retention.mark_deleted(record.photo_id)
            work.emit(
                messages.original_deleted(record, record.closed, retention_days),
                message_id=contracts.deterministic_id(
                    producer, f"original-deleted:{record.photo_id}"
                ),
            )
            work.commit()
        deleted += 1
        logger.info("original of photo %s deleted", record.photo_id)
    return deleted
