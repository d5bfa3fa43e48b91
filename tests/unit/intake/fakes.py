"""Intake's repositories and unit of work in memory.

``Store`` is the database: the repositories of the read side and those of each unit
read and write the same dicts. A unit that leaves without committing puts the store
back as it found it (so the fakes are transactional too), and what it emitted waits in
the store's outbox, sent after the commit as the real unit sends it.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from services.intake import domain
from services.intake.ports import EnrolmentCode, HeldPhoto, NewPost
from shared import bus, contracts, outbox, testing
from shared.testing import InMemoryBlobStore


class Store:
    def __init__(self) -> None:
        self.posts: dict[str, NewPost] = {}
        self.devices: dict[str, domain.Device] = {}
        self.tokens: dict[str, str] = {}  # device id -> token hash
        self.codes: dict[str, EnrolmentCode] = {}  # code hash -> code
        self.obligations: dict[str, domain.Obligation] = {}
        self.outbox: dict[str, contracts.Envelope] = {}
        self.sent: set[str] = set()
        self.fail_posts = False  # the database refuses posts

    def snapshot(self) -> dict[str, Any]:
        return {
            k: copy.copy(v) for k, v in vars(self).items() if isinstance(v, dict | set)
        }

    def restore(self, snapshot: dict[str, Any]) -> None:
        for name, value in snapshot.items():
            kept = getattr(self, name)
            kept.clear()
            kept.update(value)

    # the outbox, as ``shared.outbox.Outbox``
    def claim(
        self,
        publish: Callable[[contracts.Envelope], bool],
        limit: int = 100,
        only: Sequence[str] | None = None,
    ) -> tuple[int, bool]:
        return testing.claim_rows(self.outbox, self.sent, publish, limit, only)

    def pending(self) -> list[contracts.Envelope]:
        return [e for i, e in self.outbox.items() if i not in self.sent]


class InMemoryPostLedger:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, post: NewPost, at: datetime) -> None:
        if self.store.fail_posts:
            raise OSError("database unavailable")
        if post.post_id in self.store.posts:
            raise ValueError("duplicate post")
        self.store.posts[post.post_id] = post

    def held(self, author_id: str, sha256s: Collection[str]) -> list[HeldPhoto]:
        found: dict[str, HeldPhoto] = {}
        for post in self.store.posts.values():
            if post.draft.author_id != author_id:
                continue
            for p in post.photos:
                if p.photo.sha256 in sha256s:
                    found.setdefault(
                        p.photo.sha256,
                        HeldPhoto(
                            post.post_id,
                            p.receipt_id,
                            p.photo.sha256,
                            p.photo.size,
                            p.key,
                            p.photo.filename,
                        ),
                    )
        return list(found.values())


class InMemoryDeviceRegister:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, device: domain.Device) -> None:
        self.store.devices[device.device_id] = device

    def get(self, device_id: str) -> domain.Device | None:
        return self.store.devices.get(device_id)

    def by_token(self, token_hash: str) -> domain.Device | None:
        for device_id, hashed in self.store.tokens.items():
            if hashed == token_hash:
                return self.store.devices[device_id]
        return None

    def listing(self, schools: Collection[str] | None) -> list[domain.Device]:
        return [
            d
            for d in self.store.devices.values()
            if schools is None or d.school_id in schools
        ]

    def set_status(self, device: domain.Device, was: str) -> bool:
        stored = self.store.devices[device.device_id]
        if stored.status != was:
            return False
        self.store.devices[device.device_id] = dataclasses.replace(
            stored,
            status=device.status,
            approved_by=device.approved_by,
            approved_at=device.approved_at,
            revoked_by=device.revoked_by,
            revoked_at=device.revoked_at,
        )
        return True

    def set_token(self, device_id: str, token_hash: str, at: datetime) -> None:
        self.store.tokens[device_id] = token_hash
        self.store.devices[device_id] = dataclasses.replace(
            self.store.devices[device_id], enrolled_at=at
        )

    def seen(self, device_id: str, at: datetime) -> None:
        self.store.devices[device_id] = dataclasses.replace(
            self.store.devices[device_id], last_seen_at=at
        )

    def add_code(self, code: EnrolmentCode) -> None:
        self.store.codes[code.code_hash] = code

    def code(self, code_hash: str) -> EnrolmentCode | None:
        return self.store.codes.get(code_hash)

    def use_code(self, code_hash: str, at: datetime) -> bool:
        code = self.store.codes[code_hash]
        if code.used_at is not None:
            return False
        self.store.codes[code_hash] = dataclasses.replace(code, used_at=at)
        return True


class InMemoryObligations:
    def __init__(self, store: Store) -> None:
        self.store = store

    def open(self, obligations: Sequence[domain.Obligation]) -> None:
        for o in obligations:
            self.store.obligations[o.receipt_id] = o

    def find(
        self,
        *,
        device_ids: Collection[str] | None = None,
        owner: str | None = None,
        receipt_id: str | None = None,
        open_only: bool = True,
    ) -> list[domain.Obligation]:
        return sorted(
            (
                o
                for o in self.store.obligations.values()
                if (device_ids is None or o.device_id in device_ids)
                and (owner is None or o.owner == owner)
                and (receipt_id is None or o.receipt_id == receipt_id)
                and (not open_only or o.closed_at is None)
            ),
            key=lambda o: (o.due_at, o.receipt_id),
        )

    def overdue_count(self, device_id: str, now: datetime) -> int:
        return sum(
            1
            for o in self.store.obligations.values()
            if o.device_id == device_id and o.overdue(now)
        )

    def close(self, closed: domain.Obligation) -> bool:
        if self.store.obligations[closed.receipt_id].closed_at is not None:
            return False
        self.store.obligations[closed.receipt_id] = closed
        return True

    def due(self, now: datetime) -> list[domain.Obligation]:
        return [o for o in self.find() if o.overdue(now) and o.overdue_at is None]

    def flag_overdue(self, receipt_id: str, at: datetime) -> bool:
        o = self.store.obligations[receipt_id]
        if o.overdue_at is not None:
            return False
        self.store.obligations[receipt_id] = dataclasses.replace(o, overdue_at=at)
        return True


class InMemoryUnit:
    """Intake's unit of work on a ``Store`` (as ``adapters.IntakeUnit`` on SQL)."""

    def __init__(self, store: Store, publisher: bus.Publisher | None) -> None:
        self.store = store
        self.publisher = publisher
        self.posts = InMemoryPostLedger(store)
        self.devices = InMemoryDeviceRegister(store)
        self.obligations = InMemoryObligations(store)
        self.emitted: list[contracts.Envelope] = []
        self.waiting: list[str] = []
        self._before: dict[str, Any] | None = None

    def __enter__(self) -> Self:
        self._before = self.store.snapshot()
        self.emitted, self.waiting = [], []
        return self

    def emit(
        self,
        message: contracts.Message,
        *,
        actor: str | None = None,
        message_id: str | None = None,
    ) -> contracts.Envelope:
        envelope = contracts.seal(
            message,
            producer="intake",
            cause=bus.incoming(),
            index=len(self.emitted),
            actor=actor,
            message_id=message_id,
        )
        self.emitted.append(envelope)
        self.waiting.append(envelope.id)
        return envelope

    def commit(self) -> None:
        for envelope in self.emitted:
            self.store.outbox.setdefault(envelope.id, envelope)
        self._before = None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._before is not None:  # not committed: as if nothing happened
            self.store.restore(self._before)
            self.emitted, self.waiting, self._before = [], [], None
            return
        if self.publisher is None:
            return
        for envelope in self.emitted:
            if not outbox.send(self.store, self.publisher, envelope):
                break
            self.waiting.remove(envelope.id)


class FailingBlobStore(InMemoryBlobStore):
    """Stores ``good`` blobs, then the disk fails."""

    def __init__(self, good: int = 1) -> None:
        super().__init__()
        self.good = good

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        **kwargs: Any,
    ) -> None:
        if len(self.blobs) >= self.good:
            raise OSError("disk full")
        super().put(key, data, content_type)


class Clock:
    """A settable clock."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


Now = Callable[[], datetime]
