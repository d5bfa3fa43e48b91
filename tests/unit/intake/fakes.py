"""Fakes of intake's ports."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from services.intake import domain
from services.intake.ports import EventFor, HeldPhoto, NewPost, ObligationEvent
from shared import contracts, testing
from shared.testing import InMemoryBlobStore


class InMemoryPostLedger:
    def __init__(self) -> None:
        self.posts: dict[str, NewPost] = {}
        self.outbox: dict[str, contracts.Envelope] = {}
        self.sent: set[str] = set()
        self.obligations: dict[str, domain.Obligation] = {}
        self.fail_record = False

    def record(
        self,
        post: NewPost,
        envelope: contracts.Envelope,
        *,
        events: Sequence[contracts.Envelope] = (),
        obligations: Sequence[domain.Obligation] = (),
    ) -> None:
        if self.fail_record:
            raise OSError("database unavailable")
        if post.post_id in self.posts:
            raise ValueError("duplicate post")
        self.posts[post.post_id] = post
        for e in (envelope, *events):
            self.outbox[e.id] = e
        for o in obligations:
            self.obligations[o.receipt_id] = o

    def pending(self, limit: int = 100) -> list[contracts.Envelope]:
        return [e for i, e in self.outbox.items() if i not in self.sent][:limit]

    def mark_sent(self, envelope_ids: Sequence[str]) -> None:
        self.sent.update(envelope_ids)

    def claim(
        self,
        publish: Callable[[contracts.Envelope], bool],
        limit: int = 100,
        only: Sequence[str] | None = None,
    ) -> tuple[int, bool]:
        return testing.claim_rows(self.outbox, self.sent, publish, limit, only)

    def held(self, author_id: str, sha256s: Collection[str]) -> list[HeldPhoto]:
        found: dict[str, HeldPhoto] = {}
        for post in self.posts.values():
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
    """Devices, codes and obligations; writes its events into the ledger's outbox."""

    def __init__(self, ledger: InMemoryPostLedger) -> None:
        self.ledger = ledger
        self.devices: dict[str, domain.Device] = {}
        self.tokens: dict[str, str] = {}  # device id -> token hash
        self.codes: dict[str, dict[str, Any]] = {}  # code hash -> row

    def _emit(self, envelope: contracts.Envelope) -> None:
        self.ledger.outbox[envelope.id] = envelope

    def add(self, device: domain.Device, event: contracts.Envelope) -> None:
        self.devices[device.device_id] = device
        self._emit(event)

    def get(self, device_id: str) -> domain.Device | None:
        return self.devices.get(device_id)

    def by_token(self, token_hash: str) -> domain.Device | None:
        for device_id, hashed in self.tokens.items():
            if hashed == token_hash:
                return self.devices[device_id]
        return None

    def listing(self, schools: Collection[str] | None) -> list[domain.Device]:
        return [
            d
            for d in self.devices.values()
            if schools is None or d.school_id in schools
        ]

    def change(
        self, device_id: str, status: str, by: str, at: datetime, event: EventFor
    ) -> domain.Device:
        device = self.devices[device_id]
        domain.check_transition(device, status)
        if status == domain.APPROVED:
            changed = dataclasses.replace(
                device, status=status, approved_by=by, approved_at=at
            )
        else:
            changed = dataclasses.replace(
                device, status=status, revoked_by=by, revoked_at=at
            )
        envelope = event(changed)
        self.devices[device_id] = changed
        self._emit(envelope)
        return changed

    def issue_code(
        self,
        device_id: str,
        code_hash: str,
        by: str,
        at: datetime,
        expires_at: datetime,
    ) -> None:
        self.codes[code_hash] = {
            "device_id": device_id,
            "expires_at": expires_at,
            "used_at": None,
        }

    def redeem(
        self, code_hash: str, token_hash: str, at: datetime, event: EventFor
    ) -> domain.Device:
        row = self.codes.get(code_hash)
        problem = domain.enrolment_refusal(
            row["device_id"] if row else None,
            row["expires_at"] if row else None,
            row["used_at"] if row else None,
            at,
        )
        if problem is not None:
            raise problem
        assert row is not None
        device = dataclasses.replace(self.devices[row["device_id"]], enrolled_at=at)
        envelope = event(device)  # may raise: then nothing changes
        row["used_at"] = at
        self.devices[device.device_id] = device
        self.tokens[device.device_id] = token_hash
        self._emit(envelope)
        return device

    def seen(self, device_id: str, at: datetime) -> None:
        self.devices[device_id] = dataclasses.replace(
            self.devices[device_id], last_seen_at=at
        )

    def note(self, event: contracts.Envelope) -> None:
        self._emit(event)

    def overdue_count(self, device_id: str, now: datetime) -> int:
        return sum(
            1
            for o in self.ledger.obligations.values()
            if o.device_id == device_id and o.overdue(now)
        )

    def obligations(
        self,
        *,
        device_ids: Collection[str] | None = None,
        owner: str | None = None,
        receipt_id: str | None = None,
        open_only: bool = True,
    ) -> list[domain.Obligation]:
        return [
            o
            for o in self.ledger.obligations.values()
            if (device_ids is None or o.device_id in device_ids)
            and (owner is None or o.owner == owner)
            and (receipt_id is None or o.receipt_id == receipt_id)
            and (not open_only or o.closed_at is None)
        ]

    def close(
        self,
        receipt_id: str,
        deleted_at: datetime,
        at: datetime,
        method: str,
        by: str,
        event: ObligationEvent,
    ) -> domain.Obligation | None:
        o = self.ledger.obligations.get(receipt_id)
        if o is None or o.closed_at is not None:
            return None
        closed = dataclasses.replace(
            o, closed_at=at, deleted_at=deleted_at, method=method, confirmed_by=by
        )
        self.ledger.obligations[receipt_id] = closed
        self._emit(event(closed))
        return closed

    def mark_overdue(self, now: datetime, event: ObligationEvent) -> int:
        due = [
            o
            for o in self.ledger.obligations.values()
            if o.overdue(now) and o.overdue_at is None
        ]
        for o in due:
            self.ledger.obligations[o.receipt_id] = dataclasses.replace(
                o, overdue_at=now
            )
            self._emit(event(o))
        return len(due)


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
