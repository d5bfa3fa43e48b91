"""Redaction's messages from its records: the contracts its use cases emit, and the
record a submitted photo starts as. Pure translation, no decisions."""

from __future__ import annotations

from collections.abc import Sequence

from services.redaction import domain
from shared import contracts


def detected(
    record: domain.PhotoRecord,
    encodings: Sequence[list[float] | None],
    texts: Sequence[tuple[domain.Box, str]],
) -> contracts.FacesDetected:
    """What consent is asked about a stored photo: its faces with their encodings
    (in order), and the text re-read in its stored regions."""
    # The stored regions decide the indices; text is sent only where it was re-read
    # in the same place (a region without its words is masked: no decision).
    words = dict(texts)
    return contracts.FacesDetected(
        photo_id=record.photo_id,
        post_id=record.post_id,
        school_id=record.school_id,
        purpose=record.purpose,
        accounts=list(record.platforms),
        publish_on=record.publish_on,
        width=record.width,
        height=record.height,
        faces=[
            contracts.DetectedFace(
                index=f.index, box=f.box, score=f.score, encoding=enc
            )
            for f, enc in zip(record.faces, encodings, strict=True)
        ],
        texts=[
            contracts.DetectedText(index=i, box=box, text=words[box])
            for i, box in enumerate(record.texts)
            if box in words
        ],
        named=dict(record.named),
        revision=record.revision,
    )


def new_record(
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


def refused(
    record: domain.PhotoRecord, refusal: domain.Refusal
) -> contracts.PhotoRefused:
    return contracts.PhotoRefused(
        photo_id=record.photo_id,
        post_id=record.post_id,
        school_id=record.school_id,
        reason=refusal.reason,
        detail=refusal.detail,
    )


def redacted(
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
                consent_versions=list(o.consent_versions),
            )
            for o in redaction.faces
        ],
        texts=[
            contracts.TextReport(
                index=t.index, box=t.box, masked=t.masked, reason=t.reason
            )
            for t in redaction.texts
        ],
        ocr=redaction.ocr,
        revision=redaction.revision,
        added_masks=list(redaction.added_masks),
    )


def original_deleted(
    record: domain.PhotoRecord, closed: domain.Closure, retention_days: int
) -> contracts.OriginalDeleted:
    return contracts.OriginalDeleted(
        photo_id=record.photo_id,
        post_id=record.post_id,
        school_id=record.school_id,
        original_key=record.original_key,
        reason=closed.reason,
        closed_on=closed.at.date(),
        retention_days=retention_days,
    )
