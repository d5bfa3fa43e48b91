"""Publishing's SQL adapters on SQLite, and its migration matching its tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.publishing import adapters, domain
from services.publishing.bootstrap import MIGRATIONS
from shared import contracts, db

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


def test_a_settled_state_and_its_messages_are_written_together_once(tmp_path):
    engine = an_engine(tmp_path)
    log = adapters.SqlDeliveryLog(engine)
    directory = adapters.SqlAccountDirectory(engine)
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

    log.settle(live, [published])
    log.settle(live, [published])  # the same transition again: no second message

    assert log.get("p1", "fb") == live
    assert [e.type for e in directory.pending()] == ["post.published"]


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

    directory = adapters.SqlAccountDirectory(engine)
    [announced] = directory.pending()
    assert announced.type == "account.changed"
    assert (announced.data["account_id"], announced.data["purpose"]) == (
        "oak-news",
        "social_media",
    )
    site = adapters.SqlSiteRegister(engine).get("folder")
    assert site is not None and site.approved and site.approved_by == "migration"
    assert json.dumps(dict(site.answers)) == "{}"


def test_a_change_to_the_register_is_in_the_trail(tmp_path):
    engine = an_engine(tmp_path)
    sites = adapters.SqlSiteRegister(engine)

    sites.put(
        domain.Site("x", False, {}, withdrawn_by="trust-it", note="paid API"),
        contracts.SiteChanged(
            platform="x", approved=False, by="trust-it", note="paid API"
        ),
    )

    [change] = adapters.SqlAccountDirectory(engine).pending()
    assert change.type == "site.changed"
    assert (change.data["platform"], change.data["approved"]) == ("x", False)
