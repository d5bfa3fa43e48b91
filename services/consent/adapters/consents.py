"""Consent records (every version kept) and never-publish flags."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.consent.adapters.tables import (
    bump,
    consent_of,
    consent_records,
    flag_of,
    never_publish,
    pupils,
    schools,
    version_of,
)
from services.consent.domain import ConsentRecord, NeverPublish, Standing
from shared.db import Repository, utcnow

Wide = dict[tuple[str, str], ConsentRecord]  # (pupil, purpose) -> purpose-wide record


class SqlConsents(Repository):
    """Photo consent: a new version per answer, history never overwritten. On the
    engine (the read side) a school's standings are cached per roll version."""

    def __init__(self, bind: Engine | Connection, now: Callable[[], datetime] = utcnow):
        super().__init__(bind)
        self.now = now
        self._cache: dict[str, tuple[int, dict[str, Standing]]] = {}

    def add(self, school_id: str, record: ConsentRecord) -> ConsentRecord:
        """The next version of the record's scope; returned with its id, version and
        time."""
        platform = consent_records.c.platform
        same_scope = (
            platform.is_(None)
            if record.platform is None
            else platform == record.platform
        )
        at = self.now()
        with self._begin() as conn:
            version = (
                conn.execute(
                    sa.select(sa.func.max(consent_records.c.version)).where(
                        consent_records.c.school_slug == school_id,
                        consent_records.c.pupil_id == record.pupil_id,
                        consent_records.c.purpose == record.purpose,
                        same_scope,
                    )
                ).scalar()
                or 0
            ) + 1
            stored = replace(record, version=version, recorded_at=at)
            new_id = conn.execute(
                consent_records.insert()
                .values(**_row(school_id, stored))
                .returning(consent_records.c.id)
            ).scalar_one()
            bump(conn, school_id, roll=True)
        return replace(stored, record_id=new_id)

    def add_many(
        self, school_id: str, records: Sequence[ConsentRecord]
    ) -> list[ConsentRecord]:
        """Records whose versions are already numbered (an import), in one go;
        returned with their ids."""
        if not records:
            return []
        at = self.now()
        stored = [replace(r, recorded_at=at) for r in records]
        c = consent_records.c
        with self._begin() as conn:
            conn.execute(consent_records.insert(), [_row(school_id, r) for r in stored])
            ids = {
                (r.pupil_id, r.purpose, r.platform, r.version): r.id
                for r in conn.execute(
                    sa.select(c.id, c.pupil_id, c.purpose, c.platform, c.version).where(
                        c.school_slug == school_id, c.recorded_at == at
                    )
                )
            }
            bump(conn, school_id, roll=True)
        return [
            replace(r, record_id=ids[(r.pupil_id, r.purpose, r.platform, r.version)])
            for r in stored
        ]

    def standings(
        self, school_id: str, pupil_ids: Iterable[str]
    ) -> dict[str, Standing]:
        """Roll status, never-publish flag and the newest version of every scope.

        On the engine, from an in-memory copy of the school's standings reloaded
        whenever the school's ``roll_version`` has moved (every change bumps it in
        its transaction): one small query per photo, whatever the school's size. In
        a transaction, read afresh (and never cached: it may be rolled back)."""
        wanted = set(pupil_ids)
        if not wanted:
            return {}
        if isinstance(self.bind, Connection):
            return _standings(self.bind, school_id, sorted(wanted))
        with self._begin() as conn:
            version = version_of(conn, school_id, schools.c.roll_version)
            if version is None:
                return {}
            cached = self._cache.get(school_id)
            if cached is None or cached[0] != version:
                cached = (version, _standings(conn, school_id, None))
                self._cache[school_id] = cached
        return {p: cached[1][p] for p in wanted if p in cached[1]}

    def history(self, school_id: str, pupil_id: str) -> list[ConsentRecord]:
        query = (
            sa.select(consent_records)
            .where(
                consent_records.c.school_slug == school_id,
                consent_records.c.pupil_id == pupil_id,
            )
            .order_by(consent_records.c.recorded_at, consent_records.c.id)
        )
        with self._begin() as conn:
            return [consent_of(r) for r in conn.execute(query)]

    def current_wide(self, school_id: str) -> Wide:
        """The newest purpose-wide record of each pupil and purpose (import, export)."""
        out: Wide = {}
        with self._begin() as conn:
            for row in conn.execute(
                sa.select(consent_records)
                .where(
                    consent_records.c.school_slug == school_id,
                    consent_records.c.platform.is_(None),
                )
                .order_by(consent_records.c.version, consent_records.c.id)
            ):
                out[(row.pupil_id, row.purpose)] = consent_of(row)
        return out

    def expired_in_force(self, today: date) -> list[tuple[str, ConsentRecord]]:
        """(school, record) of every granted version in force whose expiry has
        passed, in every school."""
        r, n = consent_records.alias("r"), consent_records.alias("n")
        newer = (
            sa.select(n.c.id)
            .where(
                n.c.school_slug == r.c.school_slug,
                n.c.pupil_id == r.c.pupil_id,
                n.c.purpose == r.c.purpose,
                sa.func.coalesce(n.c.platform, "")
                == sa.func.coalesce(r.c.platform, ""),
                n.c.version > r.c.version,
            )
            .exists()
        )
        stmt = sa.select(r).where(
            r.c.status == "granted", r.c.expires_on < today, ~newer
        )
        with self._begin() as conn:
            return [(row.school_slug, consent_of(row)) for row in conn.execute(stmt)]


class SqlNeverPublish(Repository):
    """Never-publish flags, a new version per change (admins only; never revealed
    outside this service)."""

    def __init__(self, bind: Engine | Connection, now: Callable[[], datetime] = utcnow):
        super().__init__(bind)
        self.now = now

    def current(self, school_id: str, pupil_id: str) -> NeverPublish | None:
        with self._begin() as conn:
            return _flags(conn, school_id, [pupil_id]).get(pupil_id)

    def add(
        self, school_id: str, pupil_id: str, flag: NeverPublish, by: str
    ) -> NeverPublish:
        """The flag's next version; returned with its version, author and time."""
        at = self.now()
        with self._begin() as conn:
            current = _flags(conn, school_id, [pupil_id]).get(pupil_id)
            version = (current.version if current else 0) + 1
            conn.execute(
                never_publish.insert().values(
                    school_slug=school_id,
                    pupil_id=pupil_id,
                    active=flag.active,
                    category=flag.category,
                    note=flag.note,
                    recorded_by=by,
                    recorded_at=at,
                    version=version,
                )
            )
            bump(conn, school_id, roll=True)
        return replace(flag, version=version, recorded_by=by, recorded_at=at)

    def history(self, school_id: str, pupil_id: str) -> list[NeverPublish]:
        stmt = (
            sa.select(never_publish)
            .where(
                never_publish.c.school_slug == school_id,
                never_publish.c.pupil_id == pupil_id,
            )
            .order_by(never_publish.c.version)
        )
        with self._begin() as conn:
            return [flag_of(r) for r in conn.execute(stmt)]


def _row(school_id: str, record: ConsentRecord) -> dict[str, object]:
    return {
        "school_slug": school_id,
        "pupil_id": record.pupil_id,
        "purpose": record.purpose,
        "platform": record.platform,
        "status": record.status,
        "given_by": record.given_by,
        "relationship": record.relationship,
        "method": record.method,
        "evidence_ref": record.evidence_ref,
        "expires_on": record.expires_on,
        "recorded_by": record.recorded_by,
        "recorded_at": record.recorded_at,
        "version": record.version,
    }


def _flags(
    conn: Connection, school_id: str, pupil_ids: Sequence[str] | None
) -> dict[str, NeverPublish]:
    if pupil_ids is not None and not pupil_ids:
        return {}
    query = sa.select(never_publish).where(never_publish.c.school_slug == school_id)
    if pupil_ids is not None:
        query = query.where(never_publish.c.pupil_id.in_(list(pupil_ids)))
    return {
        r.pupil_id: flag_of(r)
        for r in conn.execute(query.order_by(never_publish.c.version))
    }


def _standings(
    conn: Connection, school_id: str, wanted: Sequence[str] | None
) -> dict[str, Standing]:
    """Standings of these pupils (None: every pupil of the school)."""
    query = sa.select(pupils.c.pupil_id, pupils.c.on_roll).where(
        pupils.c.school_slug == school_id
    )
    if wanted is not None:
        query = query.where(pupils.c.pupil_id.in_(list(wanted)))
    on_roll = {r.pupil_id: bool(r.on_roll) for r in conn.execute(query)}
    consents: dict[str, dict[tuple[str, str | None], ConsentRecord]] = defaultdict(dict)
    consent_query = sa.select(consent_records).where(
        consent_records.c.school_slug == school_id
    )
    if wanted is not None:
        consent_query = consent_query.where(
            consent_records.c.pupil_id.in_(list(on_roll))
        )
    for row in conn.execute(
        consent_query.order_by(consent_records.c.version, consent_records.c.id)
    ):
        if row.pupil_id not in on_roll:
            continue
        record = consent_of(row)  # later versions replace earlier ones
        consents[row.pupil_id][(record.purpose, record.platform)] = record
    flags = _flags(conn, school_id, None if wanted is None else list(on_roll))
    return {
        pupil_id: Standing(
            pupil_id,
            on_roll=present,
            never_publish=bool(
                (flag := flags.get(pupil_id)) is not None and flag.active
            ),
            consents=dict(consents.get(pupil_id, {})),
        )
        for pupil_id, present in on_roll.items()
    }
