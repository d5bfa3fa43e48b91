"""Accounts and the trust's register of approved sites, in SQL (the AccountDirectory
and SiteRegister ports). They store and read; announcing a change (``account.changed``,
``site.changed``) is the use case's, through its unit of work."""

from __future__ import annotations

from typing import Any

from services.publishing import domain
from services.publishing.adapters.tables import accounts, approved_sites, insert_new
from shared.db import Repository, utcnow


class SqlAccountDirectory(Repository):
    """Accounts (never their tokens: ``SqlTokens``)."""

    def get(self, account_id: str) -> domain.Account | None:
        query = accounts.select().where(accounts.c.account_id == account_id)
        with self._begin() as conn:
            row = conn.execute(query).first()
        return _account(row._mapping) if row else None

    def for_school(self, school_id: str) -> list[domain.Account]:
        query = (
            accounts.select()
            .where(accounts.c.school_id == school_id)
            .order_by(accounts.c.account_id)
        )
        with self._begin() as conn:
            return [_account(r._mapping) for r in conn.execute(query)]

    def add(self, account: domain.Account) -> bool:
        """Add it unless its id is taken (maybe concurrently); True if added."""
        values = {
            "account_id": account.account_id,
            "created_at": utcnow(),
            **_account_values(account),
        }
        with self._begin() as conn:
            return insert_new(conn, accounts, values)

    def update(self, account: domain.Account) -> None:
        with self._begin() as conn:
            conn.execute(
                accounts.update()
                .where(accounts.c.account_id == account.account_id)
                .values(**_account_values(account))
            )

    def all(self) -> list[domain.Account]:
        with self._begin() as conn:
            rows = conn.execute(accounts.select().order_by(accounts.c.account_id))
            return [_account(r._mapping) for r in rows]


def _account_values(account: domain.Account) -> dict[str, Any]:
    """The columns of an account's settings (never its token)."""
    return {
        "school_id": account.school_id,
        "kind": account.kind,
        "name": account.name,
        "config": dict(account.config),
        "enabled": account.enabled,
        "external_id": account.external_id,
        "owner": account.owner,
        "footer": account.footer,
        "connection": account.connection,
        "status_reason": account.status_reason,
        "token_expires_at": account.token_expires_at,
        "api_base": account.api_base,
    }


def _account(row: Any) -> domain.Account:
    return domain.Account(
        account_id=row["account_id"],
        school_id=row["school_id"],
        kind=row["kind"],
        name=row["name"],
        config=dict(row["config"]),
        enabled=bool(row["enabled"]),
        external_id=row["external_id"] or "",
        owner=row["owner"] or "",
        footer=row["footer"] or "",
        connection=row["connection"] or domain.ACTIVE,
        status_reason=row["status_reason"] or "",
        token_expires_at=row["token_expires_at"],
        api_base=row["api_base"] or "",
    )


class SqlSiteRegister(Repository):
    """The trust's register of approved sites."""

    def get(self, platform: str) -> domain.Site | None:
        query = approved_sites.select().where(approved_sites.c.platform == platform)
        with self._begin() as conn:
            row = conn.execute(query).first()
        return _site(row._mapping) if row else None

    def all(self) -> list[domain.Site]:
        query = approved_sites.select().order_by(approved_sites.c.platform)
        with self._begin() as conn:
            return [_site(r._mapping) for r in conn.execute(query)]

    def put(self, site: domain.Site) -> None:
        """Insert or replace the platform's entry."""
        values = {
            "approved": site.approved,
            "answers": dict(site.answers),
            "approved_by": site.approved_by,
            "approved_at": site.approved_at,
            "withdrawn_by": site.withdrawn_by,
            "withdrawn_at": site.withdrawn_at,
            "note": site.note,
        }
        key = approved_sites.c.platform == site.platform
        with self._begin() as conn:
            if not conn.execute(
                approved_sites.update().where(key).values(**values)
            ).rowcount:
                conn.execute(
                    approved_sites.insert().values(platform=site.platform, **values)
                )


def _site(row: Any) -> domain.Site:
    return domain.Site(
        platform=row["platform"],
        approved=bool(row["approved"]),
        answers=dict(row["answers"] or {}),
        approved_by=row["approved_by"],
        approved_at=row["approved_at"],
        withdrawn_by=row["withdrawn_by"],
        withdrawn_at=row["withdrawn_at"],
        note=row["note"] or "",
    )
