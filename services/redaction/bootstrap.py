"""Wiring: the redaction ports, real or fake, and each use case in a unit of work."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from services.redaction import adapters, domain, handlers
from services.redaction.ports import (
    FaceDetector,
    FaceEncoder,
    PhotoRecords,
    TextReader,
    Unit,
)
from shared import contracts, db, uow
from shared.bus import HandlerMap, KombuPublisher, Publisher
from shared.config import Settings
from shared.errors import ConfigError
from shared.storage import BlobStore, open_store
from shared.uow import transaction

SERVICE = "redaction"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Ports:
    originals: BlobStore
    redacted: BlobStore
    previews: BlobStore
    records: PhotoRecords  # the read side (the API); writes go through ``unit``
    detector: FaceDetector
    encoder: FaceEncoder
    unit: Callable[[], Unit]  # a fresh unit of work per use case
    reader: TextReader = adapters.NoTextReader()
    limits: domain.Limits = domain.Limits()
    ping: Callable[[], None] = lambda: None
    publisher: Publisher | None = None  # what the unit sends on after each commit
    now: Callable[[], datetime] = db.utcnow
    retention_days: int = domain.RETENTION_DAYS
    sweep_seconds: float = 3600.0
    relay: Callable[[threading.Event], None] | None = None  # sends what waits


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
    publisher = KombuPublisher(settings.amqp_url)
    return Ports(
        originals=open_store(settings, "originals"),
        redacted=open_store(settings, "redacted"),
        previews=open_store(settings, "previews"),
        records=adapters.SqlPhotoRecords(engine),
        detector=adapters.CenterFaceDetector(
            threads=_int(env, "REDACTION_THREADS", 0, least=0)
        ),
        encoder=adapters.FaceRecognitionEncoder(),
        unit=partial(
            adapters.RedactionUnit,
            engine,
            adapters.outbox,
            producer=SERVICE,
            publisher=publisher,
        ),
        reader=adapters.TesseractTextReader(),
        limits=limits_from(settings, env),
        ping=partial(db.ping, engine),
        publisher=publisher,
        relay=uow.relay_task(engine, adapters.outbox, publisher),
        retention_days=_int(
            env, "ORIGINALS_RETENTION_DAYS", domain.RETENTION_DAYS, least=0
        ),
        sweep_seconds=float(_int(env, "REDACTION_SWEEP_SECONDS", 3600)),
    )


def handler_map(ports: Ports) -> HandlerMap:
    """Each message type's use case, run in its own unit of work: its record changes
    and the messages it returns commit together (and are sent after). The blobs a use
    case writes are written before that commit (``handlers``' docstring says why)."""
    originals, limits = ports.originals, ports.limits

    def run(use_case: Callable[[Unit, Any], Sequence[contracts.Message]]) -> Any:
        return transaction(ports.unit, use_case)

    close = run(
        lambda u, m: handlers.close_post(m, retention=u.retention, now=ports.now)
    )
    return {
        contracts.PostSubmitted: run(
            lambda u, m: handlers.detect_faces(
                m,
                originals=originals,
                detector=ports.detector,
                encoder=ports.encoder,
                reader=ports.reader,
                records=u.records,
                limits=limits,
            )
        ),
        contracts.FacesDecided: run(
            lambda u, m: handlers.redact_photo(
                m,
                originals=originals,
                redacted=ports.redacted,
                previews=ports.previews,
                records=u.records,
                limits=limits,
            )
        ),
        contracts.ReviseRedaction: run(
            lambda u, m: handlers.revise_redaction(
                m,
                originals=originals,
                encoder=ports.encoder,
                records=u.records,
                limits=limits,
            )
        ),
        contracts.PostPublished: close,
        contracts.PostRejected: close,
    }


def sweep_originals(ports: Ports) -> int:
    """Delete the originals past retention, each deletion announced through the
    outbox in the unit that marks it; how many."""
    return handlers.delete_due_originals(
        ports.unit,
        originals=ports.originals,
        now=ports.now(),
        retention_days=ports.retention_days,
        producer=SERVICE,
    )


def ready_checks(ports: Ports) -> dict[str, Callable[[], None]]:
    return {"database": ports.ping}
