"""Ports intake's use cases need: three small repositories, the unit of work that
holds them on one transaction with intake's outbox, and what else a use case uses
(``UseCasePorts``, which ``bootstrap.Ports`` satisfies)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from services.intake import domain
from shared.storage import BlobStore
from shared.uow import UnitOfWork


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


@dataclass(frozen=True)
class EnrolmentCode:
    """A one-time code (kept as its hash) a device exchanges for its token."""

    code_hash: str
    device_id: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None


class PostLedger(Protocol):
    """Posts and their photos."""

    def add(self, post: NewPost, at: datetime) -> None:
        """Store the post and its photos; a post id stored already fails."""

    def held(self, author_id: str, sha256s: Collection[str]) -> list[HeldPhoto]:
        """Photos with these hashes this author uploaded already."""


class DeviceRegister(Protocol):
    """Devices, their enrolment codes and tokens (kept hashed)."""

    def add(self, device: domain.Device) -> None: ...

    def get(self, device_id: str) -> domain.Device | None: ...

    def by_token(self, token_hash: str) -> domain.Device | None:
        """The device with this token (a revoked one too: its refusals name why)."""

    def listing(self, schools: Collection[str] | None) -> list[domain.Device]:
        """Devices of these schools (None: every school), newest first."""

    def set_status(self, device: domain.Device, was: str) -> bool:
        """Store ``device``'s status and who changed it when, if its stored status is
        still ``was``; False if it changed meanwhile."""

    def set_token(self, device_id: str, token_hash: str, at: datetime) -> None:
        """The device's token becomes ``token_hash`` (the old one stops working)."""

    def seen(self, device_id: str, at: datetime) -> None: ...

    def add_code(self, code: EnrolmentCode) -> None: ...

    def code(self, code_hash: str) -> EnrolmentCode | None: ...

    def use_code(self, code_hash: str, at: datetime) -> bool:
        """Mark the code used; False if it was used already (a concurrent exchange)."""


class Obligations(Protocol):
    """Deletion obligations: originals a personal device must delete by a time."""

    def open(self, obligations: Sequence[domain.Obligation]) -> None: ...

    def find(
        self,
        *,
        device_ids: Collection[str] | None = None,
        owner: str | None = None,
        receipt_id: str | None = None,
        open_only: bool = True,
    ) -> list[domain.Obligation]:
        """Obligations matching every criterion given, soonest due first."""

    def overdue_count(self, device_id: str, now: datetime) -> int: ...

    def close(self, closed: domain.Obligation) -> bool:
        """Store how ``closed`` was closed, if it is still open; False otherwise."""

    def due(self, now: datetime) -> list[domain.Obligation]:
        """Open obligations past their due time not flagged overdue yet."""

    def flag_overdue(self, receipt_id: str, at: datetime) -> bool:
        """Flag one overdue (once); False if it was flagged already."""


class Unit(UnitOfWork, Protocol):
    """Intake's unit of work: its repositories on one transaction, and its outbox."""

    @property
    def posts(self) -> PostLedger: ...

    @property
    def devices(self) -> DeviceRegister: ...

    @property
    def obligations(self) -> Obligations: ...

    @property
    def waiting(self) -> Sequence[str]:
        """After the unit: ids of what it emitted that the broker did not take (they
        wait in the outbox for the relay)."""


class UseCasePorts(Protocol):
    """What intake's use cases need (``bootstrap.Ports`` has it)."""

    @property
    def unit(self) -> Callable[[], Unit]: ...

    @property
    def originals(self) -> BlobStore: ...

    @property
    def now(self) -> Callable[[], datetime]: ...

    @property
    def new_id(self) -> Callable[[], str]: ...

    @property
    def max_upload_bytes(self) -> int: ...

    @property
    def deletion_grace(self) -> timedelta: ...

    @property
    def block_overdue(self) -> bool: ...
