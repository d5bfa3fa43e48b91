"""Wiring: the Ports of the consent service, the real adapters and the handler map."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

from services.consent import adapters, handlers
from services.consent.ports import (
    ConsentRegister,
    FaceGallery,
    PupilNames,
    TargetAccounts,
)
from shared import contracts, db
from shared.bus import HandlerMap, Publisher
from shared.config import Settings

SERVICE = "consent"
MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Ports:
    gallery: FaceGallery
    register: ConsentRegister
    names: PupilNames
    accounts: TargetAccounts  # consent's copy of publishing's accounts
    # The SQL store: schools, pupils, consent versions, never-publish, biometric
    # consent, enrolment, import/export, outbox (used by the views, CLI and sweeps).
    store: Any
    enroller: Any = None  # reference photo -> encoding (FaceRecognitionEnroller)
    publisher: Publisher | None = None  # for the outbox relay
    today: Callable[[], date] = date.today
    ping: Callable[[], None] = lambda: None


def real_ports(settings: Settings) -> Ports:
    from shared.bus import KombuPublisher

    engine = db.make_engine(settings.database_url)
    db.migrate(engine, MIGRATIONS)
    store = adapters.SqlConsentStore(
        engine,
        take_down_on_leaving=settings.take_down_on_leaving,
        take_down_on_expiry=settings.take_down_on_expiry,
    )
    return Ports(
        gallery=adapters.SqlFaceGallery(engine),
        register=store,
        names=store,
        accounts=adapters.SqlTargetAccounts(engine),
        store=store,
        enroller=adapters.FaceRecognitionEnroller(),
        publisher=KombuPublisher(settings.amqp_url),
        ping=partial(db.ping, engine),
    )


def handler_map(ports: Ports) -> HandlerMap:
    decide = partial(
        handlers.decide_faces,
        gallery=ports.gallery,
        register=ports.register,
        names=ports.names,
        accounts=ports.accounts,
        today=ports.today,
    )
    verify = partial(
        handlers.verify_post,
        register=ports.register,
        accounts=ports.accounts,
        today=ports.today,
    )
    return {
        contracts.FacesDetected: decide,
        contracts.AccountChanged: partial(
            handlers.account_changed, accounts=ports.accounts
        ),
        contracts.VerifyPostConsent: verify,
    }


def ready_checks(ports: Ports) -> dict[str, Callable[[], None]]:
    return {"database": ports.ping}
