"""Changes to an account that every use case makes the same way: stored and announced
(``account.changed``) in the use case's unit of work, so consent's copy of the accounts
never misses one."""

from __future__ import annotations

import logging
from dataclasses import replace

from services.publishing import domain
from services.publishing.ports import Unit
from shared import contracts

logger = logging.getLogger(__name__)


def account_changed(account: domain.Account) -> contracts.AccountChanged:
    return contracts.AccountChanged(
        account_id=account.account_id,
        school_id=account.school_id,
        platform=account.kind,
        purpose=account.purpose,
        consent_platform=account.consent_platform,
        status=account.status,
    )


def add(unit: Unit, account: domain.Account) -> bool:
    """Add the account unless its id is taken, and announce it; True if added."""
    if not unit.accounts.add(account):
        return False
    unit.emit(account_changed(account))
    return True


def save(unit: Unit, account: domain.Account) -> None:
    """Store the account's new settings and announce them."""
    unit.accounts.update(account)
    unit.emit(account_changed(account))


def needs_reconnect(unit: Unit, account: domain.Account, why: str) -> None:
    """The account's token no longer works: its owner and the school's admins must
    connect it again (announced; the pages show it); its posts wait."""
    if account.connection == domain.NEEDS_RECONNECT:
        return
    save(
        unit,
        replace(
            account,
            connection=domain.NEEDS_RECONNECT,
            status_reason=why or "the platform refused the account's token",
        ),
    )
    logger.warning("account %s needs reconnecting", account.account_id)
