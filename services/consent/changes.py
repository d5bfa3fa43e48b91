"""The ``ConsentChanged`` events consent publishes. Pure: values in, messages out.

A never-publish flag is never named: setting one says ``restricted`` (as leaving the
school does) with every purpose ``no_consent``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime

from services.consent import domain
from shared import contracts

SERVICE = "consent"


def _scope(record: domain.ConsentRecord, today: date) -> contracts.ConsentScope:
    state = record.status
    if record.state_on(today) == domain.EXPIRED and record.status == "granted":
        state = "expired"
    return contracts.ConsentScope(
        purpose=record.purpose,
        platform=record.platform,
        state=state,
        expires_on=record.expires_on,
        version=record.ref,
    )


def consent_changed(
    school_id: str,
    pupil_id: str,
    records: Iterable[domain.ConsentRecord],
    today: date,
    cause: str = "recorded",
) -> contracts.ConsentChanged:
    """A new answer: a ``recorded`` answer that is not a yes (withdrawn, refused, not
    returned any more) takes live posts of those scopes down."""
    scopes = [_scope(r, today) for r in records]
    return contracts.ConsentChanged(
        school_id=school_id,
        pupil_id=pupil_id,
        cause=cause,
        scopes=scopes,
        effective_on=today,
        take_down=cause == "recorded" and any(s.state != "granted" for s in scopes),
        changed_at=datetime.now(UTC),
    )


def restricted(
    school_id: str, pupil_id: str, today: date, take_down: bool = True
) -> contracts.ConsentChanged:
    """The pupil may not be shown anywhere (left, or a reason consent never gives).
    ``take_down``: always for never-publish; for leaving, the trust's choice."""
    return contracts.ConsentChanged(
        school_id=school_id,
        pupil_id=pupil_id,
        cause="restricted",
        scopes=[
            contracts.ConsentScope(purpose=p, state="no_consent")
            for p in domain.PURPOSES
        ],
        effective_on=today,
        take_down=take_down,
        changed_at=datetime.now(UTC),
    )


def expired(
    school_id: str, record: domain.ConsentRecord, take_down: bool = False
) -> contracts.ConsentChanged:
    assert record.expires_on is not None
    return contracts.ConsentChanged(
        take_down=take_down,
        changed_at=datetime.now(UTC),
        school_id=school_id,
        pupil_id=record.pupil_id,
        cause="expired",
        scopes=[
            contracts.ConsentScope(
                purpose=record.purpose,
                platform=record.platform,
                state="expired",
                expires_on=record.expires_on,
                version=record.ref,
            )
        ],
        effective_on=date.fromordinal(record.expires_on.toordinal() + 1),
    )


def expired_id(record: domain.ConsentRecord) -> str:
    """The id of a record's expiry announcement: the same every time it is swept,
    so it is announced once."""
    return contracts.deterministic_id(SERVICE, "expired", str(record.record_id))
