"""Publishing's SQL adapters on SQLite, and its migration matching its tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
import sqlalchemy as sa

from services.publishing import adapters, bootstrap, delivery, domain
from services.publishing.bootstrap import MIGRATIONS, SERVICE
from shared import contracts, db
from shared.testing import InMemoryBlobStore
from tests.support.bus import InMemoryBus
from tests.unit.publishing.builders import IMAGE

AT = datetime(2030, 1, 1, 9, tzinfo=UTC)


def an_engine(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'publishing.sqlite3'}")
    db.migrate(engine, MIGRATIONS)
    return engine


def test_the_migrated_schema_matches_the_tables(tmp_path):
    engine = an_engine(tmp_path)

    with engine.connect() as conn:
        assert db.schema_diffs(conn, adapters.metadata) == []


def test_accounts_are_added_once_and_listed_per_school(tmp_path):
    directory = adapters.SqlAccountDirectory(an_engine(tmp_path))
    account = domain.Account("web", "north", "folder", "Website", {"path": "/p"})

    added = (directory.add(account), directory.add(account))

    assert added == (True, False)
    assert directory.get("web") == account
    assert directory.for_school("north") == [account]
    assert directory.for_school("south") == []


def test_a_delivery_marker_moves_from_started_to_done(tmp_path):
    log = adapters.SqlDeliveryLog(an_engine(tmp_path))
    started = domain.Delivery("p1", "web", "north", domain.STARTED, AT, target="folder")
    done = domain.Delivery(
        "p1", "web", "north", domain.DONE, AT, target="folder", location="/p/p1"
    )

    log.record(started)
    log.record(done)

    assert log.get("p1", "web") == done
    assert log.recent(schools={"north"}) == [done]
    assert log.recent(schools={"south"}) == []
    assert log.recent(post_id="p2") == []


def test_one_worker_wins_the_claim_on_a_delivery(tmp_path):
    log = adapters.SqlDeliveryLog(an_engine(tmp_path))
    pending = domain.Delivery(
        "p1", "fb", "north", domain.PENDING, AT, next_attempt_at=AT
    )
    log.record(pending)
    sending = replace(pending, status=domain.SENDING, attempts=1, sending_since=AT)

    first = log.claim(pending, sending)
    second = log.claim(pending, replace(sending, attempts=9))

    assert (first, second) == (True, False)
    assert log.get("p1", "fb") == sending


def test_due_deliveries_and_sends_whose_worker_died_are_picked_up(tmp_path):
    log = adapters.SqlDeliveryLog(an_engine(tmp_path))
    later = AT + timedelta(hours=1)
    log.record(domain.Delivery("p1", "a", "n", domain.PENDING, AT, next_attempt_at=AT))
    log.record(
        domain.Delivery("p2", "a", "n", domain.WAITING, AT, next_attempt_at=later)
    )
    log.record(domain.Delivery("p3", "a", "n", domain.SENDING, AT, sending_since=AT))
    log.record(domain.Delivery("p4", "a", "n", domain.LIVE, AT, next_attempt_at=AT))

    soon = log.due(AT + timedelta(seconds=30), timedelta(minutes=2))
    after_lease = log.due(AT + timedelta(minutes=5), timedelta(minutes=2))

    assert [d.post_id for d in soon] == ["p1"]
    assert sorted(d.post_id for d in after_lease) == ["p1", "p3"]


def a_unit(engine, publisher=None, unit=None):
    """Publishing's real unit of work on ``engine`` (a factory, as ``Ports.unit``)."""
    return partial(
        unit or adapters.PublishingUnit,
        engine,
        adapters.outbox,
        producer=SERVICE,
        publisher=publisher,
    )


def emitted(engine):
    """Every envelope in publishing's outbox, sent or not."""
    with engine.connect() as conn:
        bodies = conn.execute(sa.select(adapters.outbox.c.body)).scalars().all()
    return [contracts.Envelope.model_validate_json(b) for b in bodies]


def test_a_settled_state_and_its_messages_are_written_together_once(tmp_path):
    engine = an_engine(tmp_path)
    live = domain.Delivery(
        "p1", "fb", "north", domain.LIVE, AT, target="facebook", url="https://f/1"
    )
    published = contracts.PostPublished(
        post_id="p1",
        school_id="north",
        account="fb",
        target="facebook",
        location="https://f/1",
    )

    for _ in range(2):  # the same transition again: no second message
        with a_unit(engine)() as unit:
            delivery.owe(unit, live, [published])
            unit.commit()

    assert adapters.SqlDeliveryLog(engine).get("p1", "fb") == live
    pending = db.outbox_pending(engine, adapters.outbox, 10)
    assert sorted(e.type for e in pending) == ["delivery.updated", "post.published"]


def test_a_site_register_entry_is_kept_and_replaced(tmp_path):
    sites = adapters.SqlSiteRegister(an_engine(tmp_path))
    site = domain.Site("x", True, {"who_sees": "public"}, "trust-it", AT)

    sites.put(site)
    sites.put(replace(site, approved=False, withdrawn_by="trust-it", withdrawn_at=AT))

    assert sites.get("x").approved is False
    assert [s.platform for s in sites.all()] == ["x"]
    assert sites.get("facebook") is None


def test_tokens_are_stored_encrypted_and_bound_to_their_account(tmp_path):
    import sqlalchemy as sa

    from services.publishing.platforms.base import Credentials
    from services.publishing.vault import TokenVault, generate_key

    engine = an_engine(tmp_path)
    directory = adapters.SqlAccountDirectory(engine)
    for name in ("fb", "fb2"):
        directory.add(domain.Account(name, "north", "facebook", name))
    tokens = adapters.SqlTokens(engine, TokenVault(generate_key()))

    tokens.put("fb", Credentials("EAAB-secret-page-token", expires_at=AT))

    with engine.connect() as conn:
        raw = conn.execute(
            sa.select(
                adapters.accounts.c.token, adapters.accounts.c.token_expires_at
            ).where(adapters.accounts.c.account_id == "fb")
        ).one()
        assert "EAAB" not in raw.token and raw.token_expires_at == AT
        conn.execute(
            adapters.accounts.update()
            .where(adapters.accounts.c.account_id == "fb2")
            .values(token=raw.token)
        )
        conn.commit()
    assert tokens.get("fb").access_token == "EAAB-secret-page-token"
    import pytest

    from services.publishing.vault import VaultError

    with pytest.raises(VaultError):
        tokens.get("fb2")  # copied onto another account's row: does not open
    assert tokens.claim_refresh("fb", AT, 60) is True
    assert tokens.claim_refresh("fb", AT, 60) is False
    tokens.release_refresh("fb")
    assert tokens.claim_refresh("fb", AT, 60) is True


def test_upgrading_an_installation_announces_its_accounts_and_keeps_them_publishing(
    tmp_path,
):
    """Accounts made before consent decided per account are announced to consent,
    and the platforms they use are in the register, so nothing that worked stops."""
    import json

    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config

    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["version_table"] = db.version_table(MIGRATIONS)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(
            sa.text(
                "INSERT INTO accounts (account_id, school_id, kind, name, config, "
                "enabled, created_at) VALUES ('oak-news', 'oak', 'folder', 'News', "
                "'{}', 1, '2025-01-01 00:00:00')"
            )
        )

    db.migrate(engine, MIGRATIONS)

    [announced] = db.outbox_pending(engine, adapters.outbox, 10)
    assert announced.type == "account.changed"
    assert (announced.data["account_id"], announced.data["purpose"]) == (
        "oak-news",
        "social_media",
    )
    site = adapters.SqlSiteRegister(engine).get("folder")
    assert site is not None and site.approved and site.approved_by == "migration"
    assert json.dumps(dict(site.answers)) == "{}"


def test_a_change_to_the_register_is_in_the_trail(tmp_path):
    from services.publishing import sites
    from tests.unit.publishing.test_accounts_admin import ANSWERS, a_sql_rig

    rig = a_sql_rig(tmp_path, approve=())

    sites.approve(rig.ports, "x", ANSWERS, by="trust-it")
    sites.withdraw(rig.ports, "x", "trust-it", "paid API")

    changes = [e for e in emitted(rig.engine) if e.type == "site.changed"]
    assert [(e.data["platform"], e.data["approved"]) for e in changes] == [
        ("x", True),
        ("x", False),
    ]
    assert changes[1].data["note"] == "paid API"


def an_approval(store, *accounts):
    """An approved post of one redacted image (kept in ``store``) to ``accounts``."""
    import hashlib

    store.put("redacted/p1/ph1.jpg", IMAGE)
    return contracts.PostApproved(
        post_id="p1",
        school_id="north",
        author_id="u-teacher",
        approved_by="u-approver",
        caption="Sports day!",
        accounts=list(accounts),
        images=[
            contracts.ApprovedImage(
                photo_id="ph1",
                redacted_key="redacted/p1/ph1.jpg",
                sha256=hashlib.sha256(IMAGE).hexdigest(),
            )
        ],
    )


def answered(post_id="p1", current=True):
    return contracts.PostConsentVerified(
        post_id=post_id,
        school_id="north",
        round=1,
        current=current,
        checked_on=AT.date(),
    )


def test_a_use_case_that_fails_half_way_keeps_none_of_its_writes(tmp_path):
    """consent.post_verified clears the round, then schedules a delivery per account:
    if the second cannot be written, the round is not cleared, the first delivery is
    not kept, and nothing is emitted; the redelivered answer then does it all."""
    engine = an_engine(tmp_path)
    bus = InMemoryBus()
    ports = bootstrap.Ports(
        accounts=adapters.SqlAccountDirectory(engine),
        deliveries=adapters.SqlDeliveryLog(engine),
        redacted=InMemoryBlobStore(),
        platforms={},
        approvals=adapters.SqlApprovals(engine),
        unit=a_unit(engine, bus),
        takedowns=adapters.SqlTakedowns(engine),
    )
    approved = an_approval(ports.redacted, "a1", "a2")
    bootstrap.handler_map(ports)[contracts.PostApproved](approved)
    assert bus.types() == ["consent.verify_post"]

    class Failing(adapters.PublishingUnit):
        def bind(self, conn):  # the second account's delivery cannot be written
            super().bind(conn)
            record = self.deliveries.record

            def second_fails(d):
                if d.account_id == "a2":
                    raise OSError("the database went away")
                record(d)

            self.deliveries.record = second_fails  # type: ignore[method-assign]

    failing = replace(ports, unit=a_unit(engine, bus, Failing))
    with pytest.raises(OSError):
        bootstrap.handler_map(failing)[contracts.PostConsentVerified](answered())

    assert adapters.SqlApprovals(engine).get("p1", 1).state == domain.VERIFYING
    assert adapters.SqlDeliveryLog(engine).for_post("p1") == []
    assert bus.types() == ["consent.verify_post"]
    assert [e.type for e in emitted(engine)] == ["consent.verify_post"]

    bootstrap.handler_map(ports)[contracts.PostConsentVerified](answered())

    assert adapters.SqlApprovals(engine).get("p1", 1).state == domain.CLEARED
    kept = adapters.SqlDeliveryLog(engine).for_post("p1")
    assert sorted((d.account_id, d.status) for d in kept) == [
        ("a1", domain.PENDING),
        ("a2", domain.PENDING),
    ]
    assert bus.types() == ["consent.verify_post", *["delivery.updated"] * 2]


def test_a_failed_settle_in_the_delivery_loop_leaves_the_claim_as_it_was(tmp_path):
    """A token refused by the platform: the account is marked and announced and the
    delivery waits, in one unit of work. If the delivery cannot be written, the
    account is not marked and nothing is announced: the claim stays ``sending``,
    which the lease turns into a look for the post (never a blind resend)."""
    from services.publishing.platforms.base import AuthError
    from tests.unit.publishing.fakes import RecordingAdapter

    engine = an_engine(tmp_path)
    bus = InMemoryBus()
    directory = adapters.SqlAccountDirectory(engine)
    account = domain.Account("fb", "north", "folder", "Page", owner="o")
    directory.add(account)

    class Failing(adapters.PublishingUnit):
        def bind(self, conn):
            super().bind(conn)
            record = self.deliveries.record

            def waiting_fails(d):
                if d.status == domain.WAITING:
                    raise OSError("the database went away")
                record(d)

            self.deliveries.record = waiting_fails  # type: ignore[method-assign]

    adapter = RecordingAdapter("folder", errors=[AuthError("expired", code="190")])
    log, approvals = adapters.SqlDeliveryLog(engine), adapters.SqlApprovals(engine)
    loop = delivery.Engine(
        unit=a_unit(engine, bus, Failing),
        accounts=directory,
        deliveries=log,
        approvals=approvals,
        redacted=InMemoryBlobStore(),
        platforms={"folder": adapter},
        destination=lambda a, c: None,  # type: ignore[arg-type,return-value]
    )
    event = an_approval(loop.redacted, "fb")
    approvals.open(event)
    approvals.settle("p1", 1, domain.CLEARED, "north")
    cleared_at = approvals.get("p1", 1).updated_at  # consent's check is fresh
    log.record(
        domain.Delivery(
            "p1", "fb", "north", domain.PENDING, cleared_at, next_attempt_at=cleared_at
        )
    )
    loop = replace(loop, now=lambda: cleared_at)

    assert delivery.run_due(loop) == 1  # the failure is logged; the loop goes on

    assert adapter.calls == 1
    assert directory.get("fb").connection == domain.ACTIVE
    kept = log.get("p1", "fb")
    assert (kept.status, kept.attempts) == (domain.SENDING, 1)
    assert bus.types() == ["delivery.updated"]  # the claim's, committed before
    assert [e.data["state"] for e in emitted(engine)] == ["sending"]
