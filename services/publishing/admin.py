"""Administration of publishing accounts (the CLI, the demo seed and the HTTP API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.publishing import domain
from services.publishing.bootstrap import Ports
from shared.errors import ConflictError, InvalidInputError


def add_account(
    ports: Ports,
    school: str,
    account_id: str,
    kind: str,
    name: str,
    config: Mapping[str, Any] | None = None,
    enabled: bool = True,
) -> bool:
    """Add a publishing account; True if added, False if it was there already.

    An account id is unique across schools: the same id for another school is a 409.
    """
    if not domain.SCHOOL.match(school):
        raise InvalidInputError(f"not a school slug: {school}")
    if not domain.ACCOUNT_ID.match(account_id):
        raise InvalidInputError(f"not an account id: {account_id}")
    if kind not in domain.KINDS:
        raise InvalidInputError(
            f"unsupported account kind {kind}; one of " + ", ".join(domain.KINDS),
            code="unsupported_kind",
        )
    account = domain.Account(
        account_id=account_id,
        school_id=school,
        kind=kind,
        name=name.strip() or account_id,
        config=dict(config or {}),
        enabled=enabled,
    )
    if ports.accounts.add(account):
        return True
    existing = ports.accounts.get(account_id)
    if existing is not None and existing.school_id != school:
        raise ConflictError(
            f"account {account_id} belongs to another school", code="account_taken"
        )
    return False
