"""Consent's copy of publishing's accounts (the account replica)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.consent.adapters.tables import target_accounts, upsert
from services.consent.domain import Scope, TargetAccount
from shared.db import Repository, utcnow


class SqlTargetAccounts(Repository):
    """What publishing said of each of its accounts (TargetAccounts port)."""

    def __init__(self, bind: Engine | Connection, now: Callable[[], datetime] = utcnow):
        super().__init__(bind)
        self.now = now

    def record(self, account: TargetAccount) -> None:
        values = {
            "school_slug": account.school_id,
            "platform": account.platform,
            "purpose": account.purpose,
            "consent_platform": account.consent_platform,
            "status": account.status,
            "updated_at": self.now(),
        }
        with self._begin() as conn:  # inserted concurrently: ours is as new
            upsert(conn, target_accounts, {"account_id": account.account_id}, values)

    def scopes(self, school_id: str, account_ids: Sequence[str]) -> dict[str, Scope]:
        if not account_ids:
            return {}
        query = sa.select(
            target_accounts.c.account_id,
            target_accounts.c.purpose,
            target_accounts.c.consent_platform,
        ).where(
            target_accounts.c.school_slug == school_id,
            target_accounts.c.account_id.in_(sorted(set(account_ids))),
        )
        with self._begin() as conn:
            return {
                r.account_id: (r.purpose, r.consent_platform)
                for r in conn.execute(query)
            }
