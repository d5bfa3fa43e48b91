"""Redaction's message handlers: find faces, then mask every face not shown."""

from __future__ import annotations

import logging
from dataclasses import replace

from services.redaction import domain, imaging
from services.redaction.ports import FaceDetector, FaceEncoder, PhotoRecords
from shared import contracts
from shared.errors import ConflictError, NotFoundError
from shared.storage import BlobStore

logger = logging.getLogger(__name__)


class UnknownPhotoError(NotFoundError):
    code = "unknown_photo"


def detect_faces(
    event: contracts.PostSubmitted,
    *,
    originals: BlobStore,
    detector: FaceDetector,
    encoder: FaceEncoder,
    records: PhotoRecords,
    limits: domain.Limits,
) -> list[contracts.Message]:
    """Per photo: FacesDetected (boxes, scores, encodings) or PhotoRefused (bad file).

    Boxes are stored once; a redelivery re-encodes the stored boxes, so consent gets
    the same faces with the same indices.
    """
    return [
        _detect_photo(
            event,
            photo,
            originals=originals,
            detector=detector,
            encoder=encoder,
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
    records: PhotoRecords,
    limits: domain.Limits,
) -> contracts.Message:
    record = records.find(photo.photo_id)
    if record is not None and record.refusal is not None:
        return _refused(record, record.refusal)
    try:
        image = imaging.decode(originals.get(photo.original_key), limits)
    except domain.PhotoRefusedError as exc:
        logger.info("photo %s refused: %s", photo.photo_id, exc.reason)
        refusal = domain.Refusal(exc.reason, exc.detail)
        record = records.add(replace(_new_record(event, photo), refusal=refusal))
        return _refused(record, record.refusal or refusal)
    rgb = imaging.pixels(image)
    if record is None:
        found = detector.detect(rgb)
        faces = tuple(
            domain.Face(i, box, score) for i, (box, score) in enumerate(found)
        )
        record = records.add(
            replace(
                _new_record(event, photo),
                width=image.width,
                height=image.height,
                faces=faces,
            )
        )
    if record.refusal is not None:
        return _refused(record, record.refusal)
    encodings = encoder.encode(rgb, [face.box for face in record.faces])
    logger.info("photo %s: %d face(s)", photo.photo_id, len(record.faces))
    return contracts.FacesDetected(
        photo_id=record.photo_id,
        post_id=record.post_id,
        school_id=record.school_id,
        purpose=record.purpose,
        platforms=list(record.platforms),
        publish_on=record.publish_on,
        width=record.width,
        height=record.height,
        faces=[
            contracts.DetectedFace(
                index=f.index, box=f.box, score=f.score, encoding=enc
            )
            for f, enc in zip(record.faces, encodings, strict=True)
        ],
    )


def redact_photo(
    event: contracts.FacesDecided,
    *,
    originals: BlobStore,
    redacted: BlobStore,
    previews: BlobStore,
    records: PhotoRecords,
    limits: domain.Limits,
) -> list[contracts.Message]:
    """Mask every face whose decision is not ``show`` (no decision: masked), strip all
    metadata, store the redacted copy and the preview. Already done: same answer."""
    record = records.find(event.photo_id)
    if record is None:
        raise UnknownPhotoError(f"no detection stored for photo {event.photo_id}")
    if record.refusal is not None:
        return [_refused(record, record.refusal)]
    if record.redaction is not None:
        return [_redacted(record, record.redaction)]
    image = imaging.decode(originals.get(record.original_key), limits)
    if image.size != (record.width, record.height):
        raise ConflictError(f"photo {record.photo_id} decodes to a different size")
    decisions = [
        domain.Decision(d.index, d.show, d.reason, d.pupil_id) for d in event.decisions
    ]
    target = domain.output_size(image.width, image.height, limits.max_side)
    outcomes = domain.decide_masks(
        record.faces,
        decisions,
        source=image.size,
        target=target,
        growth=limits.mask_growth,
    )
    rendered = imaging.render(image, outcomes, limits)
    redaction = domain.Redaction(
        redacted_key=domain.redacted_key(record.post_id, record.photo_id),
        preview_key=domain.preview_key(record.post_id, record.photo_id),
        sha256=rendered.sha256,
        width=rendered.width,
        height=rendered.height,
        faces=tuple(outcomes),
    )
    redacted.put(redaction.redacted_key, rendered.jpeg, "image/jpeg")
    previews.put(redaction.preview_key, rendered.preview, "image/jpeg")
    records.finish(record.photo_id, redaction)
    logger.info(
        "photo %s redacted: %d of %d face(s) masked",
        record.photo_id,
        sum(o.masked for o in outcomes),
        len(outcomes),
    )
    return [_redacted(record, redaction)]


def _new_record(
    event: contracts.PostSubmitted, photo: contracts.PhotoRef
) -> domain.PhotoRecord:
    return domain.PhotoRecord(
        photo_id=photo.photo_id,
        post_id=event.post_id,
        school_id=event.school_id,
        original_key=photo.original_key,
        purpose=event.purpose,
        platforms=tuple(event.accounts),
        publish_on=event.publish_on,
    )


def _refused(
    record: domain.PhotoRecord, refusal: domain.Refusal
) -> contracts.PhotoRefused:
    return contracts.PhotoRefused(
        photo_id=record.photo_id,
        post_id=record.post_id,
        school_id=record.school_id,
        reason=refusal.reason,
        detail=refusal.detail,
    )


def _redacted(
    record: domain.PhotoRecord, redaction: domain.Redaction
) -> contracts.PhotoRedacted:
    return contracts.PhotoRedacted(
        photo_id=record.photo_id,
        post_id=record.post_id,
        school_id=record.school_id,
        redacted_key=redaction.redacted_key,
        preview_key=redaction.preview_key,
        sha256=redaction.sha256,
        width=redaction.width,
        height=redaction.height,
        faces=[
            contracts.FaceReport(
                index=o.index,
                box=o.box,
                masked=o.masked,
                reason=o.reason,
                pupil_id=o.pupil_id,
            )
            for o in redaction.faces
        ],
    )
