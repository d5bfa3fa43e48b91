"""Small working fakes of consent's ports, and real SQLite-backed ports for tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path

from services.consent import adapters, domain
from services.consent.bootstrap import MIGRATIONS, Ports
from shared import db
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

    def name_index(self, school_slug: str) -> domain.NameIndex:
        return domain.NameIndex.of(
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


def sql_ports(tmp_path: Path, today: date = MONDAY) -> Ports:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'consent.sqlite3'}")
    db.migrate(engine, MIGRATIONS)
    store = adapters.SqlConsentStore(engine)
    return Ports(
        gallery=adapters.SqlFaceGallery(engine),
        register=store,
        names=store,
        accounts=adapters.SqlTargetAccounts(engine),
        store=store,
        enroller=FakeEnroller(),
        publisher=InMemoryBus(),
        today=lambda: today,
    )


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
