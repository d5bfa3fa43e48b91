"""Wiring: the Ports of the consent service, the real adapters and the handler map."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from services.consent import adapters, handlers
from services.consent.domain import TakeDown
from services.consent.ports import (
    ConsentRegister,
    ConsentViews,
    Enroller,
    FaceGallery,
    PupilNames,
    TargetAccounts,
    Unit,
)
from shared import contracts, db, uow
from shared.bus import HandlerMap, KombuPublisher, Publisher
from shared.config import Settings
from shared.uow import transaction

SERVICE = "consent"
MIGRATIONS = Path(__file__).parent / "migrations"
RELAY_SECONDS = 3.0
KEEP_LIVE_POSTS = TakeDown()  # the default: leaving or expiry takes nothing down


@dataclass(frozen=True)
class Ports:
    # The read side (on the engine; standings, names and the gallery cached per
    # school and reloaded on a change). Every write goes through ``unit``.
    gallery: FaceGallery
    register: ConsentRegister
    names: PupilNames
    accounts: TargetAccounts  # consent's copy of publishing's accounts
    views: ConsentViews  # what the pages, the API and the CLI show
    # A fresh unit of work per use case. ``unit`` sends what a bus message's use case
    # emits right after the commit; ``relayed_unit`` (the admin's writes, the CLI,
    # the expiry sweep) leaves it to the relay, as consent always has (within
    # RELAY_SECONDS; the final gate catches what approval has not yet heard).
    unit: Callable[[], Unit]
    relayed_unit: Callable[[], Unit]
    enroller: Enroller | None = None  # reference photo -> encoding
    publisher: Publisher | None = None
    policy: TakeDown = KEEP_LIVE_POSTS  # live posts of leavers and expiries
    today: Callable[[], date] = date.today
    ping: Callable[[], None] = lambda: None
    # Sends what no use case could send at once (the broker was away).
    relay: Callable[[threading.Event], None] | None = None


def sql_ports(
    engine: Engine,
    publisher: Publisher | None,
    *,
    enroller: Enroller | None = None,
    policy: TakeDown = KEEP_LIVE_POSTS,
    today: Callable[[], date] = date.today,
) -> Ports:
    """Ports on a migrated database (the service, its tests and benchmarks)."""
    register = adapters.SqlConsents(engine)
    names = adapters.SqlPupils(engine)
    unit = partial(adapters.ConsentUnit, engine, adapters.outbox, producer=SERVICE)
    return Ports(
        gallery=adapters.SqlFaceGallery(engine),
        register=register,
        names=names,
        accounts=adapters.SqlTargetAccounts(engine),
        views=adapters.SqlConsentViews(engine, register, names),
        unit=partial(unit, publisher=publisher),
        relayed_unit=partial(unit, publisher=None),
        enroller=enroller,
        publisher=publisher,
        policy=policy,
        today=today,
        ping=partial(db.ping, engine),
        relay=(
            uow.relay_task(engine, adapters.outbox, publisher, RELAY_SECONDS)
            if publisher is not None
            else None
        ),
    )


def real_ports(settings: Settings) -> Ports:
    engine = db.make_engine(settings.database_url)
    db.migrate(engine, MIGRATIONS)
    return sql_ports(
        engine,
        KombuPublisher(settings.amqp_url),
        enroller=adapters.FaceRecognitionEnroller(),
        policy=TakeDown(
            on_leaving=settings.take_down_on_leaving,
            on_expiry=settings.take_down_on_expiry,
        ),
    )


def handler_map(ports: Ports) -> HandlerMap:
    """Each message type's use case in its own unit of work: what it changes and the
    messages it returns commit together (and are sent after). Decisions read the
    cached read side (gallery, standings, names); the accounts come from the unit."""
    gallery, register, names, today = (
        ports.gallery,
        ports.register,
        ports.names,
        ports.today,
    )

    def run(use_case: Callable[[Unit, Any], Sequence[contracts.Message]]) -> Any:
        return transaction(ports.unit, use_case)

    return {
        contracts.FacesDetected: run(
            lambda u, m: handlers.decide_faces(
                m,
                gallery=gallery,
                register=register,
                names=names,
                accounts=u.accounts,
                today=today,
            )
        ),
        contracts.AccountChanged: run(
            lambda u, m: handlers.account_changed(m, accounts=u.accounts)
        ),
        contracts.VerifyPostConsent: run(
            lambda u, m: handlers.verify_post(
                m, register=register, accounts=u.accounts, today=today
            )
        ),
    }


def ready_checks(ports: Ports) -> dict[str, Callable[[], None]]:
    return {"database": ports.ping}
