"""Wiring: the redaction ports, real or fake, bound into its handlers."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from services.redaction import adapters, domain, handlers
from services.redaction.ports import FaceDetector, FaceEncoder, PhotoRecords
from shared import contracts, db
from shared.bus import HandlerMap
from shared.config import Settings
from shared.storage import BlobStore, open_store

SERVICE = "redaction"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Ports:
    originals: BlobStore
    redacted: BlobStore
    previews: BlobStore
    records: PhotoRecords
    detector: FaceDetector
    encoder: FaceEncoder
    limits: domain.Limits = domain.Limits()
    ping: Callable[[], None] = lambda: None


def limits_from(settings: Settings, env: dict[str, str] | None = None) -> domain.Limits:
    """Limits from settings; REDACTION_MAX_PIXELS, REDACTION_MASK_STYLE override."""
    env = dict(os.environ) if env is None else env
    default = domain.Limits()
    return domain.Limits(
        max_bytes=settings.max_upload_bytes,
        max_pixels=int(env.get("REDACTION_MAX_PIXELS", default.max_pixels)),
        mask_style=env.get("REDACTION_MASK_STYLE", default.mask_style),
    )


def real_ports(settings: Settings) -> Ports:
    engine = db.make_engine(settings.database_url)
    db.migrate(engine, MIGRATIONS)
    return Ports(
        originals=open_store(settings, "originals"),
        redacted=open_store(settings, "redacted"),
        previews=open_store(settings, "previews"),
        records=adapters.SqlPhotoRecords(engine),
        detector=adapters.CenterFaceDetector(),
        encoder=adapters.FaceRecognitionEncoder(),
        limits=limits_from(settings),
        ping=partial(db.ping, engine),
    )


def handler_map(ports: Ports) -> HandlerMap:
    detect = partial(
        handlers.detect_faces,
        originals=ports.originals,
        detector=ports.detector,
        encoder=ports.encoder,
        records=ports.records,
        limits=ports.limits,
    )
    redact = partial(
        handlers.redact_photo,
        originals=ports.originals,
        redacted=ports.redacted,
        previews=ports.previews,
        records=ports.records,
        limits=ports.limits,
    )
    return {contracts.PostSubmitted: detect, contracts.FacesDecided: redact}


def ready_checks(ports: Ports) -> dict[str, Callable[[], None]]:
    return {"database": ports.ping}
