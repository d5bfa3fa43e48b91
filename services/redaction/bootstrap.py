"""Wiring: the redaction ports, real or fake, bound into its handlers."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

from services.redaction import adapters, domain, handlers
from services.redaction.ports import (
    FaceDetector,
    FaceEncoder,
    PhotoRecords,
    Retention,
    TextReader,
)
from shared import contracts, db
from shared.bus import HandlerMap, KombuPublisher, Publisher
from shared.config import Settings
from shared.errors import ConfigError
from shared.storage import BlobStore, open_store

SERVICE = "redaction"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Ports:
    originals: BlobStore
    redacted: BlobStore
    previews: BlobStore
    records: PhotoRecords
    retention: Retention
    detector: FaceDetector
    encoder: FaceEncoder
    reader: TextReader = adapters.NoTextReader()
    limits: domain.Limits = domain.Limits()
    ping: Callable[[], None] = lambda: None
    publisher: Publisher | None = None  # the originals sweep announces deletions
    now: Callable[[], datetime] = db.utcnow
    retention_days: int = domain.RETENTION_DAYS
    sweep_seconds: float = 3600.0


def limits_from(
    settings: Settings, env: Mapping[str, str] | None = None
) -> domain.Limits:
    """Limits from settings; REDACTION_MAX_PIXELS, REDACTION_MASK_STYLE override."""
    env = os.environ if env is None else env
    default = domain.Limits()
    style = env.get("REDACTION_MASK_STYLE", default.mask_style)
    if style not in ("solid", "mosaic"):
        raise ConfigError("REDACTION_MASK_STYLE must be solid or mosaic")
    return domain.Limits(
        max_bytes=settings.max_upload_bytes,
        max_pixels=_int(env, "REDACTION_MAX_PIXELS", default.max_pixels),
        mask_style=style,
    )


def _int(env: Mapping[str, str], name: str, default: int, least: int = 1) -> int:
    try:
        value = int(env.get(name, default))
    except ValueError:
        raise ConfigError(f"{name} must be a whole number") from None
    if value < least:
        raise ConfigError(f"{name} must be at least {least}")
    return value


def real_ports(settings: Settings, env: Mapping[str, str] | None = None) -> Ports:
    """ORIGINALS_RETENTION_DAYS (default 30), REDACTION_THREADS (onnxruntime threads
    per worker process; default 0 = every core) and REDACTION_SWEEP_SECONDS."""
    env = os.environ if env is None else env
    engine = db.make_engine(settings.database_url)
    db.migrate(engine, MIGRATIONS)
    records = adapters.SqlPhotoRecords(engine)
    return Ports(
        originals=open_store(settings, "originals"),
        redacted=open_store(settings, "redacted"),
        previews=open_store(settings, "previews"),
        records=records,
        retention=records,
        detector=adapters.CenterFaceDetector(
            threads=_int(env, "REDACTION_THREADS", 0, least=0)
        ),
        encoder=adapters.FaceRecognitionEncoder(),
        reader=adapters.TesseractTextReader(),
        limits=limits_from(settings, env),
        ping=partial(db.ping, engine),
        publisher=KombuPublisher(settings.amqp_url),
        retention_days=_int(
            env, "ORIGINALS_RETENTION_DAYS", domain.RETENTION_DAYS, least=0
        ),
        sweep_seconds=float(_int(env, "REDACTION_SWEEP_SECONDS", 3600)),
    )


def handler_map(ports: Ports) -> HandlerMap:
    detect = partial(
        handlers.detect_faces,
        originals=ports.originals,
        detector=ports.detector,
        encoder=ports.encoder,
        reader=ports.reader,
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
    revise = partial(
        handlers.revise_redaction,
        originals=ports.originals,
        encoder=ports.encoder,
        records=ports.records,
        limits=ports.limits,
    )
    close = partial(handlers.close_post, retention=ports.retention, now=ports.now)
    return {
        contracts.PostSubmitted: detect,
        contracts.FacesDecided: redact,
        contracts.ReviseRedaction: revise,
        contracts.PostPublished: close,
        contracts.PostRejected: close,
    }


def sweep_originals(ports: Ports) -> int:
    """Delete the originals past retention, announcing each deletion; how many."""
    publisher = ports.publisher

    def publish(key: str, message: contracts.Message) -> None:
        if publisher is None:
            raise RuntimeError("the originals sweep needs a publisher")
        envelope = contracts.seal(
            message,
            producer=SERVICE,
            message_id=contracts.deterministic_id(SERVICE, key),
        )
        publisher.publish([envelope])

    return handlers.delete_due_originals(
        originals=ports.originals,
        retention=ports.retention,
        now=ports.now(),
        retention_days=ports.retention_days,
        publish=publish,
    )


def ready_checks(ports: Ports) -> dict[str, Callable[[], None]]:
    return {"database": ports.ping}
