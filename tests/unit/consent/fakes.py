"""Small working fakes of consent's ports, and real SQLite-backed ports for tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.consent import adapters, bootstrap, domain
from services.consent.bootstrap import MIGRATIONS, Ports
from services.consent.names import NameIndex
from shared import contracts, db, outbox
from tests.support.bus import InMemoryBus

MONDAY = date(2025, 3, 3)


class InMemoryFaceGallery:
    """Nearest pupil by an encoding's first value: ``known`` maps it to a Nearest."""

    def __init__(self, known: Mapping[float, domain.Nearest] | None = None):
        self.known = dict(known or {})
        self.asked: list[dict[int, Sequence[float]]] = []

    def nearest(
        self, school_id: str, encodings: Mapping[int, Sequence[float]]
    ) -> dict[int, domain.Nearest]:
        self.asked.append(dict(encodings))
        return {
            i: self.known.get(e[0], domain.Nearest(None)) for i, e in encodings.items()
        }


class InMemoryRegister:
    def __init__(self, *standings: domain.Standing, surnames: Iterable[str] = ()):
        self.by_pupil = {s.pupil_id: s for s in standings}
        self.surnames = list(surnames)

    def standings(
        self, school_id: str, pupil_ids: Iterable[str]
    ) -> dict[str, domain.Standing]:
        return {p: self.by_pupil[p] for p in pupil_ids if p in self.by_pupil}

    def name_index(self, school_slug: str) -> NameIndex:
        return NameIndex.of(
            domain.Pupil(school_slug, str(i), "X", s)
            for i, s in enumerate(self.surnames)
        )


class FakeEnroller:
    """'Encodes' a reference photo: its bytes name the encoding (b"face:<value>"),
    b"none" has no face and b"two" two faces."""

    def encode(self, photo: bytes, name: str = "photo") -> list[float]:
        if photo == b"none":
            raise adapters.EnrolmentError(f"{name}: no face found")
        if photo == b"two":
            raise adapters.EnrolmentError(f"{name}: 2 faces found")
        value = float(photo.decode().split(":")[1])
        return [value] * 128


def sql_ports(
    tmp_path: Path,
    today: date = MONDAY,
    policy: domain.TakeDown = bootstrap.KEEP_LIVE_POSTS,
    bus: InMemoryBus | None = None,
) -> Ports:
    """The real SQL ports on SQLite; what use cases emit goes to ``bus``."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'consent.sqlite3'}")
    db.migrate(engine, MIGRATIONS)
    return bootstrap.sql_ports(
        engine,
        bus or InMemoryBus(),
        enroller=FakeEnroller(),
        policy=policy,
        today=lambda: today,
    )


def engine_of(ports: Ports) -> Engine:
    views = ports.views
    assert isinstance(views, adapters.SqlConsentViews)
    return views.engine


def announced(ports: Ports) -> list[contracts.ConsentChanged]:
    """Every ConsentChanged consent's outbox holds (sent or not), oldest first."""
    table = adapters.outbox
    with engine_of(ports).connect() as conn:
        bodies = conn.execute(
            sa.select(table.c.body).order_by(table.c.created_at, table.c.envelope_id)
        ).scalars()
        envelopes = [contracts.Envelope.model_validate_json(b) for b in bodies]
    return [
        m
        for m in map(contracts.parse, envelopes)
        if isinstance(m, contracts.ConsentChanged)
    ]


def pending(ports: Ports) -> list[contracts.Envelope]:
    """What waits in the outbox for the relay."""
    return db.outbox_pending(engine_of(ports), adapters.outbox, 1000)


def relay(ports: Ports) -> int:
    """Run consent's outbox relay once: the number of envelopes it sent."""
    assert ports.publisher is not None
    box = db.SqlOutbox(engine_of(ports), adapters.outbox, db.utcnow)
    return outbox.relay(box, ports.publisher)


class InMemoryTargetAccounts:
    """Consent's copy of publishing's accounts. By default it knows one account per
    social platform, named after it (``facebook`` -> social_media/facebook), and
    ``newsroom`` (social_media, no platform of its own), all of school oakfield."""

    def __init__(self, accounts=None):
        from services.consent.domain import TargetAccount

        self.accounts = {}
        defaults = [
            TargetAccount(p, "oakfield", p, "social_media", p, "active")
            for p in ("facebook", "instagram", "x", "linkedin")
        ] + [
            TargetAccount(
                "newsroom", "oakfield", "folder", "social_media", None, "active"
            ),
            TargetAccount("website", "oakfield", "webhook", "website", None, "active"),
        ]
        for account in defaults if accounts is None else accounts:
            self.record(account)

    def record(self, account):
        self.accounts[account.account_id] = account

    def scopes(self, school_id, account_ids):
        return {
            a: self.accounts[a].scope
            for a in account_ids
            if a in self.accounts and self.accounts[a].school_id == school_id
        }
