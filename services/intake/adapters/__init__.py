"""Intake's SQL adapters: its tables, the post ledger, the device register, the
deletion obligations, and the unit of work that holds them on one transaction with
intake's outbox."""

from __future__ import annotations

from sqlalchemy import Connection

from services.intake.adapters.devices import SqlDeviceRegister
from services.intake.adapters.ledger import SqlPostLedger
from services.intake.adapters.obligations import SqlObligations
from services.intake.adapters.tables import metadata, outbox
from shared import contracts, db
from shared import outbox as relay
from shared.uow import SqlUnitOfWork

__all__ = [
    "IntakeUnit",
    "SqlDeviceRegister",
    "SqlObligations",
    "SqlPostLedger",
    "metadata",
    "outbox",
]


class IntakeUnit(SqlUnitOfWork):
    """Intake's unit of work (``shared.uow``): posts, devices and obligations on one
    transaction, and the messages its use cases emit in intake's outbox. After the
    unit, ``waiting`` names what the broker did not take (the relay sends it)."""

    posts: SqlPostLedger
    devices: SqlDeviceRegister
    obligations: SqlObligations
    waiting: list[str]

    def bind(self, conn: Connection) -> None:
        self.posts = SqlPostLedger(conn)
        self.devices = SqlDeviceRegister(conn)
        self.obligations = SqlObligations(conn)
        self.waiting = []

    def emit(
        self,
        message: contracts.Message,
        *,
        actor: str | None = None,
        message_id: str | None = None,
    ) -> contracts.Envelope:
        envelope = super().emit(message, actor=actor, message_id=message_id)
        self.waiting.append(envelope.id)
        return envelope

    def rollback(self) -> None:
        super().rollback()
        self.waiting = []

    def send(self, envelopes: list[contracts.Envelope]) -> None:
        """As ``SqlUnitOfWork.send`` (in order, stopping at the first the broker will
        not take), noting which were sent."""
        assert self.publisher is not None
        box = db.SqlOutbox(self.engine, self.outbox_table, self.now)
        for envelope in envelopes:
            if not relay.send(box, self.publisher, envelope):
                break
            self.waiting.remove(envelope.id)
