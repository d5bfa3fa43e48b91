"""Wiring: the Ports of the consent service, the real adapters and the handler map."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path

from services.consent import adapters, handlers
from services.consent.ports import (
    ConsentRegister,
    FaceGallery,
    PupilRoll,
    SchoolDirectory,
)
from shared import contracts, db
from shared.bus import HandlerMap
from shared.config import Settings

SERVICE = "consent"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Ports:
    gallery: FaceGallery
    register: ConsentRegister
    schools: SchoolDirectory
    pupils: PupilRoll
    today: Callable[[], date] = date.today
    ping: Callable[[], None] = lambda: None


def real_ports(settings: Settings) -> Ports:
    engine = db.make_engine(settings.database_url)
    db.migrate(engine, MIGRATIONS)
    store = adapters.SqlConsentStore(engine)
    return Ports(
        gallery=adapters.NoMatchGallery(),
        register=store,
        schools=store,
        pupils=store,
        ping=partial(db.ping, engine),
    )


def handler_map(ports: Ports) -> HandlerMap:
    decide = partial(
        handlers.decide_faces,
        gallery=ports.gallery,
        register=ports.register,
        today=ports.today,
    )
    return {contracts.FacesDetected: decide}


def ready_checks(ports: Ports) -> dict[str, Callable[[], None]]:
    return {"database": ports.ping}
