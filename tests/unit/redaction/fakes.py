"""Fakes and builders for the redaction tests."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from PIL import Image

from services.redaction import adapters, domain
from services.redaction.bootstrap import Ports, handler_map
from shared import contracts
from shared.testing import InMemoryBlobStore
from tests.support.bus import InMemoryBus
from tests.support.uow import FakeUnit


class FakeDetector:
    """Finds the given boxes in any image; remembers the shapes it was shown."""

    def __init__(self, *boxes: domain.Box):
        self.boxes = list(boxes)
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, rgb: np.ndarray) -> list[tuple[domain.Box, float]]:
        self.shapes.append(rgb.shape)
        return [(box, 0.9) for box in self.boxes]


class FakeEncoder:
    def encode(
        self, rgb: np.ndarray, boxes: Sequence[domain.Box]
    ) -> list[list[float] | None]:
        return [[float(i)] * 128 for i, _ in enumerate(boxes)]


class FakeReader:
    """Reads the given text regions in any image (None: OCR unavailable)."""

    def __init__(self, *regions: tuple[domain.Box, str], available: bool = True):
        self.regions = list(regions)
        self.available = available

    def read(self, rgb: np.ndarray) -> list[tuple[domain.Box, str]] | None:
        return list(self.regions) if self.available else None


# The in-memory records are a real implementation (the CLI's one-shot mode).
InMemoryPhotoRecords = adapters.MemoryPhotoRecords

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def fake_ports(
    detector: FakeDetector | None = None,
    reader: FakeReader | None = None,
    **limits: int | str,
) -> Ports:
    records, bus = InMemoryPhotoRecords(), InMemoryBus()
    return Ports(
        originals=InMemoryBlobStore(),
        redacted=InMemoryBlobStore(),
        previews=InMemoryBlobStore(),
        records=records,
        detector=detector or FakeDetector(),
        encoder=FakeEncoder(),
        unit=lambda: FakeUnit(bus, "redaction", records=records, retention=records),
        reader=reader or FakeReader(),
        limits=domain.Limits(**limits),  # type: ignore[arg-type]
        publisher=bus,
        now=lambda: NOW,
    )


def handle(message: contracts.Message, ports: Ports) -> list[contracts.Message]:
    """Run the message's use case in its unit of work; the messages it emitted
    (taken off the bus, which then holds only what the sweep sent)."""
    bus = ports.publisher
    assert isinstance(bus, InMemoryBus)
    before = len(bus.published)
    assert handler_map(ports)[type(message)](message) == []
    emitted = bus.published[before:]
    del bus.published[before:]
    return [contracts.parse(e) for e in emitted]


def a_picture(width: int = 320, height: int = 240) -> Image.Image:
    """A smooth colour gradient (so masked regions clearly change)."""
    x = np.linspace(0, 255, width, dtype=np.float32)[np.newaxis, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, np.newaxis]
    rgb = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def jpeg_bytes(image: Image.Image | None = None, **save: object) -> bytes:
    buffer = io.BytesIO()
    (image or a_picture()).save(buffer, "JPEG", quality=95, **save)
    return buffer.getvalue()


def a_post(
    ports: Ports, *files: bytes, post_id: str = "post-1", school_id: str = "hill"
) -> contracts.PostSubmitted:
    """A submitted post whose originals are in the ports' originals store."""
    photos = []
    for i, data in enumerate(files or (jpeg_bytes(),)):
        digest = hashlib.sha256(data).hexdigest()
        key = f"originals/{post_id}/{digest}.jpg"
        ports.originals.put(key, data)
        photos.append(
            contracts.PhotoRef(
                photo_id=f"{post_id}-photo-{i}",
                original_key=key,
                sha256=digest,
                bytes=max(1, len(data)),
            )
        )
    return contracts.PostSubmitted(
        post_id=post_id,
        school_id=school_id,
        author_id="teacher-1",
        accounts=["hill-facebook"],
        photos=photos,
    )


def decided(
    photo_id: str, *decisions: contracts.FaceDecision, post_id: str = "post-1"
) -> contracts.FacesDecided:
    return contracts.FacesDecided(
        photo_id=photo_id, post_id=post_id, school_id="hill", decisions=list(decisions)
    )


def show(index: int, pupil: str = "ada") -> contracts.FaceDecision:
    return contracts.FaceDecision(
        index=index, show=True, pupil_id=pupil, reason="consented"
    )


def hide(index: int, reason: str = "no_consent") -> contracts.FaceDecision:
    return contracts.FaceDecision(index=index, show=False, reason=reason)


def changed_fraction(before: Image.Image, after: Image.Image, box: domain.Box) -> float:
    """Share of a box's pixels whose colour moved by more than JPEG noise."""
    left, top, right, bottom = box
    a = np.asarray(before.convert("RGB"), dtype=np.int16)[top:bottom, left:right]
    b = np.asarray(after.convert("RGB"), dtype=np.int16)[top:bottom, left:right]
    moved = np.abs(a - b).max(axis=2) > 24
    return float(moved.mean())
