"""shared.db on PostgreSQL: UTC timestamps and migrations (twice, and concurrently)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.db import make_engine, migrate, ping, schema_diffs
from tests.unit.shared.scratch_migrations import events, metadata, scratch_migrations

NEW_YORK_WINTER = timezone(timedelta(hours=-5))


@pytest.fixture()
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


def test_an_aware_datetime_comes_back_as_the_same_instant_in_utc(
    engine: Engine, tmp_path: Path
) -> None:
    migrate(engine, scratch_migrations(tmp_path))
    written = datetime(2024, 1, 15, 7, 0, 0, 250000, tzinfo=NEW_YORK_WINTER)

    with engine.begin() as conn:
        conn.execute(sa.text("SET TIME ZONE 'Asia/Tokyo'"))
        conn.execute(events.insert().values(id=1, at=written))
    with engine.connect() as conn:
        conn.execute(sa.text("SET TIME ZONE 'America/Los_Angeles'"))
        read = conn.execute(sa.select(events.c.at)).scalar_one()

    assert read == written
    assert read.tzinfo == UTC
    assert read.hour == 12


def test_a_naive_datetime_is_refused(engine: Engine, tmp_path: Path) -> None:
    migrate(engine, scratch_migrations(tmp_path))

    with (
        pytest.raises(sa.exc.StatementError, match="naive datetime"),
        engine.begin() as conn,
    ):
        conn.execute(events.insert().values(id=1, at=datetime(2024, 1, 15, 12)))

    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 0
        )


def test_migrating_twice_is_a_no_op(engine: Engine, tmp_path: Path) -> None:
    folder = scratch_migrations(tmp_path)

    migrate(engine, folder)
    migrate(engine, folder)

    with engine.connect() as conn:
        assert schema_diffs(conn, metadata) == []


def test_two_processes_migrating_at_once_take_turns(
    engine: Engine, tmp_path: Path
) -> None:
    folder = scratch_migrations(tmp_path)
    # separate engines: like an api and a worker container starting together
    engines = [make_engine(str(engine.url)) for _ in range(2)]

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(migrate, e, folder) for e in engines]
        for run in runs:
            run.result(timeout=60)

    for e in engines:
        e.dispose()
    with engine.connect() as conn:
        assert schema_diffs(conn, metadata) == []
        assert conn.execute(sa.text("SELECT * FROM alembic_version_scratch")).all() == [
            ("0001",)
        ]


def test_two_services_sharing_a_database_keep_their_own_revisions(
    engine: Engine, tmp_path: Path
) -> None:
    migrate(engine, scratch_migrations(tmp_path, "intake", table="uploads"))
    migrate(engine, scratch_migrations(tmp_path, "audit", table="trail"))

    assert {"uploads", "trail"} <= set(sa.inspect(engine).get_table_names())


def test_ping_fails_when_the_database_is_unreachable() -> None:
    engine = make_engine("postgresql://postgres@127.0.0.1:1/nowhere")

    with pytest.raises(sa.exc.OperationalError):
        ping(engine)


def test_relays_racing_over_a_postgresql_outbox_send_each_envelope_once(
    engine: Engine,
) -> None:
    from tests.unit.shared.outbox_race import race

    seen = race(engine)

    assert len(seen) == len(set(seen)) == 60


def test_a_unit_of_work_on_postgresql_keeps_one_outbox_row_per_message(
    engine: Engine,
) -> None:
    from tests.unit.shared import test_uow

    test_uow.metadata.create_all(engine)
    test_uow.test_handling_the_same_message_twice_emits_the_same_envelopes_once(engine)
    test_uow.test_a_use_case_that_fails_leaves_no_change_and_no_message(engine)
