"""Consent's unit of work: its repositories on one transaction, and its outbox."""

from __future__ import annotations

import logging

from sqlalchemy import Connection

from services.consent.adapters.accounts import SqlTargetAccounts
from services.consent.adapters.biometrics import SqlBiometrics, SqlEnrolments
from services.consent.adapters.consents import SqlConsents, SqlNeverPublish
from services.consent.adapters.outbox import CHUNK, SqlOutboxLog
from services.consent.adapters.roll import SqlPupils, SqlSchools
from shared import contracts, db
from shared.outbox import PUBLISH_ERRORS
from shared.uow import SqlUnitOfWork

logger = logging.getLogger(__name__)


class ConsentUnit(SqlUnitOfWork):
    """What a use case changes (``shared.uow``): schools, pupils, consent, never-
    publish flags, biometric consent, enrolments and the account replica, with the
    messages it emits, in one transaction."""

    schools: SqlSchools
    pupils: SqlPupils
    consents: SqlConsents
    never_publish: SqlNeverPublish
    biometrics: SqlBiometrics
    enrolments: SqlEnrolments
    accounts: SqlTargetAccounts
    outbox: SqlOutboxLog

    def bind(self, conn: Connection) -> None:
        self.schools = SqlSchools(conn, self.now)
        self.pupils = SqlPupils(conn)
        self.consents = SqlConsents(conn, self.now)
        self.never_publish = SqlNeverPublish(conn, self.now)
        self.biometrics = SqlBiometrics(conn, self.now)
        self.enrolments = SqlEnrolments(conn, self.now)
        self.accounts = SqlTargetAccounts(conn, self.now)
        self.outbox = SqlOutboxLog(conn)

    def send(self, envelopes: list[contracts.Envelope]) -> None:
        """Send what was just committed, claimed a chunk at a time (an import
        announces one change per pupil: thousands); what the broker will not take
        stays in the outbox for the relay."""
        publisher = self.publisher
        assert publisher is not None
        box = db.SqlOutbox(self.engine, self.outbox_table, self.now)

        def publish(envelope: contracts.Envelope) -> bool:
            try:
                publisher.publish([envelope])
            except PUBLISH_ERRORS as exc:
                logger.warning(
                    "broker unavailable; %s %s stays in the outbox (%s)",
                    envelope.type,
                    envelope.id,
                    type(exc).__name__,
                )
                return False
            return True

        ids = [e.id for e in envelopes]
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start : start + CHUNK]
            _, failed = box.claim(publish, len(chunk), only=chunk)
            if failed:
                break
