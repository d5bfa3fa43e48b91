"""shared.db on SQLite (the embedded mode): UTC timestamps, pragmas, migrations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.db import make_engine, migrate, ping, schema_diffs
from tests.unit.shared.scratch_migrations import events, metadata, scratch_migrations

PARIS_SUMMER = timezone(timedelta(hours=2))


@pytest.fixture()
def engine(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path / 'db' / 'scratch.sqlite3'}")
    migrate(engine, scratch_migrations(tmp_path))
    return engine


def test_an_aware_datetime_comes_back_as_the_same_instant_in_utc(
    engine: Engine,
) -> None:
    written = datetime(2024, 6, 1, 14, 30, 5, 123456, tzinfo=PARIS_SUMMER)

    with engine.begin() as conn:
        conn.execute(events.insert().values(id=1, at=written))
    with engine.connect() as conn:
        read = conn.execute(sa.select(events.c.at)).scalar_one()
        raw = conn.execute(sa.text("SELECT at FROM events")).scalar_one()

    assert read == written
    assert read.tzinfo == UTC
    assert str(raw).startswith("2024-06-01 12:30:05")


def test_a_naive_datetime_is_refused(engine: Engine) -> None:
    with (
        pytest.raises(sa.exc.StatementError, match="naive datetime"),
        engine.begin() as conn,
    ):
        conn.execute(events.insert().values(id=1, at=datetime(2024, 6, 1, 12)))

    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 0
        )


def test_sqlite_runs_with_wal_and_foreign_keys(engine: Engine) -> None:
    with engine.connect() as conn:
        journal = conn.execute(sa.text("PRAGMA journal_mode")).scalar()
        foreign_keys = conn.execute(sa.text("PRAGMA foreign_keys")).scalar()

    assert (journal, foreign_keys) == ("wal", 1)


def test_foreign_keys_are_enforced(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fk.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
        conn.execute(sa.text("CREATE TABLE child (p INTEGER REFERENCES parent(id))"))

    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO child VALUES (42)"))


def test_migrating_twice_is_a_no_op(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'twice.sqlite3'}")
    folder = scratch_migrations(tmp_path)

    migrate(engine, folder)
    migrate(engine, folder)

    with engine.connect() as conn:
        assert schema_diffs(conn, metadata) == []
        version = conn.execute(sa.text("SELECT * FROM alembic_version_scratch")).all()
    assert version == [("0001",)]


def test_two_services_sharing_a_database_keep_their_own_revisions(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'shared.sqlite3'}")

    migrate(engine, scratch_migrations(tmp_path, "intake", table="uploads"))
    migrate(engine, scratch_migrations(tmp_path, "audit", table="trail"))

    assert {"uploads", "trail"} <= set(sa.inspect(engine).get_table_names())


def test_schema_diffs_reports_a_table_the_migrations_lack(engine: Engine) -> None:
    wider = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(wider)
    sa.Table("extra", wider, sa.Column("id", sa.Integer, primary_key=True))

    with engine.connect() as conn:
        diffs = schema_diffs(conn, wider)

    assert [d[0] for d in diffs] == ["add_table"]


def test_an_in_memory_url_makes_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    ping(make_engine("sqlite://"))
    ping(make_engine("sqlite:///:memory:"))

    assert list(tmp_path.iterdir()) == []


def test_relays_racing_over_a_sqlite_outbox_send_each_envelope_once(
    tmp_path: Path,
) -> None:
    from tests.unit.shared.outbox_race import race

    seen = race(make_engine(f"sqlite:///{tmp_path / 'race.sqlite3'}"))

    assert len(seen) == len(set(seen)) == 60
