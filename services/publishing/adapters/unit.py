"""Publishing's unit of work: its repositories on one connection and transaction, and
its outbox (``shared.uow``): what a use case changes and the messages it emits commit
together, then the messages are sent (the relay sends what the broker would not take).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Engine

from services.publishing.adapters.directory import SqlAccountDirectory, SqlSiteRegister
from services.publishing.adapters.rounds import SqlApprovals, SqlDeliveryLog
from services.publishing.adapters.takedown_log import SqlTakedowns
from services.publishing.adapters.tokens import SqlOAuthStates, SqlTokens
from services.publishing.vault import TokenVault
from shared import db
from shared.bus import Publisher
from shared.uow import SqlUnitOfWork


class PublishingUnit(SqlUnitOfWork):
    """Accounts, approval rounds, deliveries, takedowns, the register of approved
    sites, tokens and pending authorisations (those two only with a token vault)."""

    accounts: SqlAccountDirectory
    approvals: SqlApprovals
    deliveries: SqlDeliveryLog
    takedowns: SqlTakedowns
    sites: SqlSiteRegister
    tokens: SqlTokens | None
    oauth_states: SqlOAuthStates | None

    def __init__(
        self,
        engine: Engine,
        outbox_table: Table,
        *,
        producer: str,
        publisher: Publisher | None,
        vault: TokenVault | None = None,
        now: Callable[[], datetime] = db.utcnow,
    ):
        super().__init__(
            engine, outbox_table, producer=producer, publisher=publisher, now=now
        )
        self.vault = vault

    def bind(self, conn: Connection) -> None:
        self.accounts = SqlAccountDirectory(conn)
        self.approvals = SqlApprovals(conn)
        self.deliveries = SqlDeliveryLog(conn)
        self.takedowns = SqlTakedowns(conn)
        self.sites = SqlSiteRegister(conn)
        vault = self.vault
        self.tokens = SqlTokens(conn, vault) if vault else None
        self.oauth_states = SqlOAuthStates(conn, vault) if vault else None
