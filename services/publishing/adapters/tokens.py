"""Accounts' tokens and pending OAuth authorisations, sealed with the token vault (the
Tokens and OAuthStates ports)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.publishing import domain
from services.publishing.adapters.tables import accounts, oauth_states
from services.publishing.platforms.base import Credentials
from services.publishing.ports import OAuthState
from services.publishing.vault import TokenVault
from shared.db import Repository, utcnow


class SqlTokens(Repository):
    """Accounts' tokens, encrypted at rest with the token vault.

    The ciphertext is bound to the account id (the vault's context), so a token copied
    onto another account's row does not open there."""

    def __init__(self, bind: Engine | Connection, vault: TokenVault):
        super().__init__(bind)
        self.vault = vault

    def get(self, account_id: str) -> Credentials | None:
        query = sa.select(accounts.c.token).where(accounts.c.account_id == account_id)
        with self._begin() as conn:
            sealed = conn.execute(query).scalar()
        return self.vault.open(sealed, context=account_id) if sealed else None

    def put(
        self, account_id: str, credentials: Credentials, *, by: str | None = None
    ) -> None:
        sealed = self.vault.seal(credentials, context=account_id)
        with self._begin() as conn:
            conn.execute(
                accounts.update()
                .where(accounts.c.account_id == account_id)
                .values(
                    token=sealed,
                    token_expires_at=credentials.expires_at,
                    connection=domain.ACTIVE,
                    status_reason="",
                    connected_by=by,
                    connected_at=utcnow(),
                )
            )

    def claim_refresh(self, account_id: str, now: datetime, seconds: int) -> bool:
        """A per-account lock for a token refresh (X's refresh tokens are single-use:
        two refreshes at once would lose the whole token family)."""
        until = now + timedelta(seconds=seconds)
        c = accounts.c
        with self._begin() as conn:
            return bool(
                conn.execute(
                    accounts.update()
                    .where(
                        c.account_id == account_id,
                        sa.or_(c.refreshing_until.is_(None), c.refreshing_until < now),
                    )
                    .values(refreshing_until=until)
                ).rowcount
            )

    def release_refresh(self, account_id: str) -> None:
        with self._begin() as conn:
            conn.execute(
                accounts.update()
                .where(accounts.c.account_id == account_id)
                .values(refreshing_until=None)
            )


class SqlOAuthStates(Repository):
    """Pending OAuth authorisations. X's PKCE code verifier is sealed with the token
    vault, bound to its state, like the tokens themselves."""

    def __init__(self, bind: Engine | Connection, vault: TokenVault):
        super().__init__(bind)
        self.vault = vault

    def put(self, pending: OAuthState) -> None:
        verifier = pending.code_verifier
        sealed = (
            self.vault.seal(Credentials(verifier), context=f"oauth:{pending.state}")
            if verifier
            else None
        )
        with self._begin() as conn:
            conn.execute(
                oauth_states.insert().values(
                    state=pending.state,
                    account_id=pending.account_id,
                    user=pending.user,
                    code_verifier=sealed,
                    created_at=pending.created_at,
                )
            )

    def take(self, state: str) -> OAuthState | None:
        key = oauth_states.c.state == state
        with self._begin() as conn:
            row = conn.execute(oauth_states.select().where(key)).first()
            # The delete decides who took it: a state is used once, by one caller.
            if (
                row is None
                or not conn.execute(oauth_states.delete().where(key)).rowcount
            ):
                return None
        sealed = row.code_verifier
        verifier = (
            self.vault.open(sealed, context=f"oauth:{state}").access_token
            if sealed
            else None
        )
        return OAuthState(
            state=row.state,
            account_id=row.account_id,
            user=row.user,
            created_at=row.created_at,
            code_verifier=verifier,
        )

    def purge(self, before: datetime) -> int:
        with self._begin() as conn:
            return int(
                conn.execute(
                    oauth_states.delete().where(oauth_states.c.created_at < before)
                ).rowcount
            )
