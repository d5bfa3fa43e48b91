"""Ports intake needs: the ledger of posts with its outbox; the device register."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.intake import domain
from shared import contracts


@dataclass(frozen=True)
class StoredPhoto:
    photo_id: str
    receipt_id: str
    key: str
    photo: domain.Photo


@dataclass(frozen=True)
class NewPost:
    post_id: str
    draft: domain.Draft
    photos: tuple[StoredPhoto, ...]
    device_id: str | None = None


@dataclass(frozen=True)
class HeldPhoto:
    """A photo the server already holds for an author (what a resumed upload skips)."""

    post_id: str
    receipt_id: str
    sha256: str
    bytes: int
    stored_at: str
    filename: str


class PostLedger(Protocol):
    def record(
        self,
        post: NewPost,
        envelope: contracts.Envelope,
        *,
        events: Sequence[contracts.Envelope] = (),
        obligations: Sequence[domain.Obligation] = (),
    ) -> None:
        """Store the post, its photos, every outbox row and the deletion obligations
        the upload opens: one transaction."""

    def pending(self, limit: int = 100) -> list[contracts.Envelope]:
        """Outbox envelopes not yet confirmed by the broker, oldest first."""

    def mark_sent(self, envelope_ids: Sequence[str]) -> None:
        """The broker confirmed these envelopes; the relay will not send them again."""

    def claim(
        self,
        publish: Callable[[contracts.Envelope], bool],
        limit: int = 100,
        only: Sequence[str] | None = None,
    ) -> tuple[int, bool]:
        """Publish pending envelopes no other relay holds, oldest first, until one
        fails; mark those sent (``shared.outbox.Outbox.claim``)."""

    def held(self, author_id: str, sha256s: Collection[str]) -> list[HeldPhoto]:
        """Photos with these hashes this author uploaded already."""


EventFor = Callable[[domain.Device], contracts.Envelope]


class DeviceRegister(Protocol):
    """Devices, their enrolment codes and tokens (hashed). Each write that changes a
    device records its event in the outbox in the same transaction."""

    def add(self, device: domain.Device, event: contracts.Envelope) -> None: ...

    def get(self, device_id: str) -> domain.Device | None: ...

    def by_token(self, token_hash: str) -> domain.Device | None: ...

    def listing(self, schools: Collection[str] | None) -> list[domain.Device]:
        """Devices of these schools (None: every school), newest first."""

    def change(
        self, device_id: str, status: str, by: str, at: datetime, event: EventFor
    ) -> domain.Device:
        """Approve or revoke; raises if not allowed. A revoked device's token still
        identifies it, so its refusals name the reason; revoked is final."""

    def issue_code(
        self,
        device_id: str,
        code_hash: str,
        by: str,
        at: datetime,
        expires_at: datetime,
    ) -> None: ...

    def redeem(
        self, code_hash: str, token_hash: str, at: datetime, event: EventFor
    ) -> domain.Device:
        """Use a code once: the device's token becomes ``token_hash`` (the old one
        stops working). Raises EnrolmentError if unknown, used or expired."""

    def seen(self, device_id: str, at: datetime) -> None: ...

    def note(self, event: contracts.Envelope) -> None:
        """Record an event with nothing else to write (a refused attempt)."""


ObligationEvent = Callable[[domain.Obligation], contracts.Envelope]


class DeletionObligations(Protocol):
    def overdue_count(self, device_id: str, now: datetime) -> int: ...

    def obligations(
        self,
        *,
        device_ids: Collection[str] | None = None,
        owner: str | None = None,
        receipt_id: str | None = None,
        open_only: bool = True,
    ) -> list[domain.Obligation]: ...

    def close(
        self,
        receipt_id: str,
        deleted_at: datetime,
        at: datetime,
        method: str,
        by: str,
        event: ObligationEvent,
    ) -> domain.Obligation | None:
        """Close an open obligation and record its event; None if none was open."""

    def mark_overdue(self, now: datetime, event: ObligationEvent) -> int:
        """Flag every open obligation past its due time once, recording its event."""
