from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from services.consent import adapters, admin
from services.consent.bootstrap import MIGRATIONS, Ports
from services.consent.domain import Pupil, School
from shared import db
from shared.errors import ConflictError, InvalidInputError, NotFoundError


@pytest.fixture()
def engine(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'consent.sqlite3'}")
    db.migrate(engine, MIGRATIONS)
    return engine


@pytest.fixture()
def store(engine):
    return adapters.SqlConsentStore(engine)


@pytest.fixture()
def ports(store):
    return Ports(
        gallery=adapters.NoMatchGallery(), register=store, schools=store, pupils=store
    )


def test_the_migrated_schema_matches_the_adapters_tables(engine):
    with engine.connect() as conn:
        assert db.schema_diffs(conn, adapters.metadata) == []


def test_adding_a_school_is_idempotent(ports):
    first = admin.add_school(ports, "oakfield", "Oakfield Primary")
    second = admin.add_school(ports, "oakfield", "Oakfield Primary")

    assert (first, second) == (True, False)
    assert [s.slug for s in admin.list_schools(ports)] == ["oakfield"]


def test_a_bad_slug_is_refused_by_the_admin_function(ports):
    with pytest.raises(InvalidInputError):
        admin.add_school(ports, "Bad Slug", "X")


def test_pupils_are_unique_per_school(store):
    store.add_school(adapters_school("oakfield"))
    store.add_school(adapters_school("riverside"))
    store.add_pupil(Pupil("oakfield", "A1", "Ada", "Lovelace"))
    store.add_pupil(Pupil("riverside", "A1", "Alan", "Turing"))

    with pytest.raises(ConflictError):
        store.add_pupil(Pupil("oakfield", "A1", "Ada", "Again"))
    assert [p.surname for p in store.pupils("oakfield")] == ["Lovelace"]


def test_a_pupil_of_an_unknown_school_is_not_found(store):
    with pytest.raises(NotFoundError):
        store.add_pupil(Pupil("nowhere", "A1", "Ada", "Lovelace"))


def test_the_register_uses_the_newest_purpose_wide_version(engine, store):
    store.add_school(adapters_school("oakfield"))
    for version, status in ((1, "granted"), (2, "withdrawn")):
        with engine.begin() as conn:
            conn.execute(
                adapters.consent_records.insert().values(
                    school_slug="oakfield",
                    pupil_id="A1",
                    purpose="social_media",
                    status=status,
                    recorded_by="admin",
                    version=version,
                    recorded_at=datetime(2025, 1, version, tzinfo=UTC),
                    expires_on=date(2026, 7, 31),
                )
            )

    found = store.find("oakfield", ["A1", "B2"], "social_media")

    assert list(found) == ["A1"]
    assert found["A1"].granted is False
    assert [r["version"] for r in store.history("oakfield", "A1")] == [1, 2]


def test_an_unknown_status_is_refused_by_the_database(engine, store):
    store.add_school(adapters_school("oakfield"))

    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            adapters.consent_records.insert().values(
                school_slug="oakfield",
                pupil_id="A1",
                purpose="social_media",
                status="maybe",
                recorded_by="admin",
                version=1,
                recorded_at=datetime(2025, 1, 1, tzinfo=UTC),
            )
        )


def test_the_gallery_knows_nobody_yet():
    assert adapters.NoMatchGallery().identify("oakfield", {0: [0.1], 3: [0.2]}) == {
        0: None,
        3: None,
    }


def adapters_school(slug):
    return School(slug, slug.title())
