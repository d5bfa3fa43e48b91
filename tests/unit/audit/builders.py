"""Builders for audit tests: envelopes of real contracts with sensible defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from shared import contracts

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def a_clock(start: datetime = T0):
    ticks = iter(range(10**6))
    return lambda: start + timedelta(seconds=next(ticks))


def faces_detected(
    photo_id: str = "photo-1", school_id: str = "oakfield", **kw: Any
) -> contracts.Envelope:
    message = contracts.FacesDetected(
        photo_id=photo_id,
        post_id=kw.pop("post_id", "post-1"),
        school_id=school_id,
        width=10,
        height=10,
        faces=[
            contracts.DetectedFace(index=0, box=(0, 0, 5, 5), encoding=[0.25] * 128),
            contracts.DetectedFace(index=1, box=(5, 5, 9, 9), encoding=None),
        ],
    )
    return contracts.seal(message, producer="redaction", **kw)


def faces_decided(
    photo_id: str = "photo-1", school_id: str = "oakfield", pupils=("ada",), **kw: Any
) -> contracts.Envelope:
    message = contracts.FacesDecided(
        photo_id=photo_id,
        post_id=kw.pop("post_id", "post-1"),
        school_id=school_id,
        decisions=[
            contracts.FaceDecision(index=i, show=True, pupil_id=p, reason="consented")
            for i, p in enumerate(pupils)
        ],
    )
    return contracts.seal(message, producer="consent", **kw)


def post_submitted(
    post_id: str = "post-1", school_id: str = "oakfield", **kw: Any
) -> contracts.Envelope:
    message = contracts.PostSubmitted(
        post_id=post_id,
        school_id=school_id,
        author_id=kw.pop("author_id", "teacher-1"),
        accounts=["newsroom"],
        device_id=kw.pop("device_id", None),
        photos=[
            contracts.PhotoRef(
                photo_id="photo-1",
                original_key="originals/k.jpg",
                sha256="a" * 64,
                bytes=10,
            )
        ],
    )
    return contracts.seal(message, producer="intake", **kw)


def unknown_type(**data: Any) -> contracts.Envelope:
    return contracts.Envelope(
        id="11111111-2222-3333-4444-555555555555",
        type="device.registered",
        version=3,
        producer="intake",
        occurred_at=T0,
        correlation_id="c-1",
        data={"school_id": "oakfield", "device_id": "ipad-7", **data},
    )
