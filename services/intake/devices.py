"""The device register's use cases: register, approve, revoke, enrol, check an upload,
confirm a deletion, flag overdue deletions. Every outcome is recorded in the outbox
with its state change (one transaction) and then published, so the audit trail gets
it even if the broker was down at the time."""

from __future__ import annotations

import logging
import secrets
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from services.intake import domain, outbox
from services.intake.ports import DeletionObligations, DeviceRegister, PostLedger
from shared import contracts
from shared import outbox as relay
from shared.bus import Publisher
from shared.errors import ForbiddenError, NotFoundError

logger = logging.getLogger(__name__)
SERVICE = "intake"
TOKEN_BYTES = 32
SWEEP_SECONDS = 20.0


class Register(DeviceRegister, DeletionObligations, Protocol):
    """The register and the obligations live in one database (one adapter)."""


class DevicePorts(Protocol):
    @property
    def ledger(self) -> PostLedger: ...

    @property
    def publisher(self) -> Publisher: ...

    @property
    def register(self) -> Register: ...

    @property
    def now(self) -> Callable[[], datetime]: ...

    @property
    def new_id(self) -> Callable[[], str]: ...

    @property
    def deletion_grace(self) -> timedelta: ...

    @property
    def block_overdue(self) -> bool: ...


def _seal(
    message: contracts.Message, actor: str, message_id: str | None = None
) -> contracts.Envelope:
    return contracts.seal(
        message,
        producer=SERVICE,
        actor=actor,
        message_id=message_id or str(uuid.uuid4()),
    )


def new_token() -> str:
    """A device token: 32 random bytes, URL-safe; shown once, kept only as a hash."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_code() -> str:
    return "".join(
        secrets.choice(domain.CODE_ALPHABET) for _ in range(domain.CODE_LENGTH)
    )


def register(
    ports: DevicePorts, *, school: str, owner: str, kind: str, name: str, by: str
) -> domain.Device:
    owner = owner.strip().lower()
    name = name.strip() or f"{owner}'s {kind} device"
    domain.check_new_device(school, owner, kind, name)
    device = domain.Device(
        device_id=ports.new_id(),
        school_id=school,
        name=name,
        owner=owner,
        kind=kind,
        status=domain.PENDING,
        registered_by=by,
        registered_at=ports.now(),
    )
    event = _seal(
        contracts.DeviceRegistered(
            device_id=device.device_id,
            school_id=school,
            owner=owner,
            kind=kind,
            name=name,
        ),
        by,
        contracts.deterministic_id("device.registered", device.device_id),
    )
    ports.register.add(device, event)
    outbox.send(ports, event)
    return device


def get(ports: DevicePorts, device_id: str) -> domain.Device:
    device = ports.register.get(device_id)
    if device is None:
        raise NotFoundError(f"no device {device_id}")
    return device


def approve(ports: DevicePorts, device_id: str, by: str) -> domain.Device:
    def event(d: domain.Device) -> contracts.Envelope:
        return _seal(
            contracts.DeviceApproved(
                device_id=d.device_id,
                school_id=d.school_id,
                owner=d.owner,
                kind=d.kind,
                approved_by=by,
            ),
            by,
            contracts.deterministic_id("device.approved", d.device_id),
        )

    return _change(ports, device_id, domain.APPROVED, by, event)


def revoke(ports: DevicePorts, device_id: str, by: str, reason: str) -> domain.Device:
    def event(d: domain.Device) -> contracts.Envelope:
        return _seal(
            contracts.DeviceRevoked(
                device_id=d.device_id,
                school_id=d.school_id,
                owner=d.owner,
                revoked_by=by,
                reason=reason[:500],
            ),
            by,
            contracts.deterministic_id("device.revoked", d.device_id),
        )

    return _change(ports, device_id, domain.REVOKED, by, event)


def _change(
    ports: DevicePorts,
    device_id: str,
    status: str,
    by: str,
    event: Callable[[domain.Device], contracts.Envelope],
) -> domain.Device:
    sent: list[contracts.Envelope] = []

    def recorded(d: domain.Device) -> contracts.Envelope:
        sent.append(event(d))
        return sent[-1]

    device = ports.register.change(device_id, status, by, ports.now(), recorded)
    for envelope in sent:
        outbox.send(ports, envelope)
    return device


def enrolment_code(ports: DevicePorts, device_id: str, by: str) -> tuple[str, datetime]:
    """A one-time code for the device (shown once); expires in 15 minutes."""
    device = get(ports, device_id)
    if device.status == domain.REVOKED:
        raise domain.DeviceStateError("a revoked device cannot be enrolled")
    raw = new_code()
    at = ports.now()
    expires = at + timedelta(minutes=domain.ENROL_MINUTES)
    ports.register.issue_code(device_id, domain.hash_secret(raw), by, at, expires)
    return domain.format_code(raw), expires


def enrol(
    ports: DevicePorts, code: str, via: str, owner: str | None = None
) -> tuple[domain.Device, str]:
    """Exchange a code for a new device token (returned once, stored hashed).

    With ``owner`` (a browser enrolling for the signed-in teacher) a code of someone
    else's device is refused inside the exchange's transaction, so it stays unused.
    """
    raw = domain.normalise_code(code)
    if len(raw) != domain.CODE_LENGTH:
        raise domain.EnrolmentError("that enrolment code is not valid")
    code_hash = domain.hash_secret(raw)
    token = new_token()
    sent: list[contracts.Envelope] = []

    def event(d: domain.Device) -> contracts.Envelope:
        if owner is not None and d.owner != owner:
            raise domain.DeviceRefusedError(
                "that code is for another member of staff's device",
                code="device_not_yours",
            )
        sent.append(
            _seal(
                contracts.DeviceEnrolled(
                    device_id=d.device_id, school_id=d.school_id, owner=d.owner, via=via
                ),
                d.owner,
                contracts.deterministic_id("device.enrolled", code_hash),
            )
        )
        return sent[-1]

    device = ports.register.redeem(
        code_hash, domain.hash_secret(token), ports.now(), event
    )
    for envelope in sent:
        outbox.send(ports, envelope)
    return device, token


def identify(ports: DevicePorts, token: str | None) -> domain.Device | None:
    if not token:
        return None
    return ports.register.by_token(domain.hash_secret(token.strip()))


def authorise_upload(
    ports: DevicePorts,
    token: str | None,
    *,
    user_id: str,
    username: str,
    school: str | None,
) -> domain.Device:
    """The caller's approved device for this school, or a 403 with the reason (the
    refused attempt is audited first)."""
    device = identify(ports, token)
    overdue = (
        ports.register.overdue_count(device.device_id, ports.now())
        if device is not None and device.status == domain.APPROVED
        else 0
    )
    problem: ForbiddenError | None
    if not token:
        problem = domain.DeviceRefusedError(
            "uploads need an enrolled device: send its token in X-Device-Token "
            "or enrol this browser",
            code="device_required",
        )
    else:
        problem = domain.refusal(
            device, username, school, overdue, block_overdue=ports.block_overdue
        )
    if problem is None:
        assert device is not None
        ports.register.seen(device.device_id, ports.now())
        return device
    refuse(
        ports, problem, user_id=user_id, username=username, school=school, device=device
    )
    raise problem


def refuse(
    ports: DevicePorts,
    problem: ForbiddenError,
    *,
    user_id: str,
    username: str,
    school: str | None,
    device: domain.Device | None,
) -> None:
    """Audit a refused attempt (outbox first, so it is never lost)."""
    event = _seal(
        contracts.UploadRefused(
            reason=problem.code,
            user_id=user_id,
            username=username,
            school_id=school or (device.school_id if device else None),
            device_id=device.device_id if device else None,
        ),
        user_id,
    )
    logger.warning(
        "upload refused: %s",
        problem.code,
        extra={"device_id": device.device_id if device else None, "user": user_id},
    )
    try:
        ports.register.note(event)
    except Exception:  # noqa: BLE001 - the refusal stands even if it cannot be noted
        logger.exception("could not record a refused upload")
        return
    outbox.send(ports, event)


def confirm_deletion(
    ports: DevicePorts,
    receipt_id: str,
    *,
    deleted_at: datetime | None,
    method: str,
    username: str,
    actor: str,
    as_it: bool = False,
) -> domain.Obligation:
    """Close the obligation behind a receipt. The device's owner confirms (or IT
    resolves it, ``as_it``); a receipt with no open obligation is a 404 (or already
    closed: answered as it was, so a retried confirmation is harmless)."""
    found = ports.register.obligations(
        owner=None if as_it else username, receipt_id=receipt_id, open_only=False
    )
    if not found:
        raise NotFoundError("no deletion is expected for that receipt")
    obligation = found[0]
    if obligation.closed_at is not None:
        return obligation
    at = ports.now()
    sent: list[contracts.Envelope] = []

    def event(o: domain.Obligation) -> contracts.Envelope:
        sent.append(
            _seal(
                contracts.DeletionConfirmed(
                    receipt_id=o.receipt_id,
                    post_id=o.post_id,
                    school_id=o.school_id,
                    device_id=o.device_id,
                    deleted_at=o.deleted_at or at,
                    method=o.method or method,
                    confirmed_by=actor,
                    late=(o.deleted_at or at) > o.due_at,
                ),
                actor,
                contracts.deterministic_id("deletion.confirmed", o.receipt_id),
            )
        )
        return sent[-1]

    when = min(deleted_at, at) if deleted_at is not None else at
    closed = ports.register.close(receipt_id, when, at, method[:40], actor, event)
    for envelope in sent:
        outbox.send(ports, envelope)
    return closed or obligation


def sweep_overdue(ports: DevicePorts) -> int:
    """Flag obligations past their due time (once each) and publish DeletionOverdue."""
    sent: list[contracts.Envelope] = []

    def event(o: domain.Obligation) -> contracts.Envelope:
        sent.append(
            _seal(
                contracts.DeletionOverdue(
                    receipt_id=o.receipt_id,
                    post_id=o.post_id,
                    school_id=o.school_id,
                    device_id=o.device_id,
                    owner=o.owner,
                    due_at=o.due_at,
                ),
                "intake",
                contracts.deterministic_id("deletion.overdue", o.receipt_id),
            )
        )
        return sent[-1]

    ports.register.mark_overdue(ports.now(), event)
    for envelope in sent:
        if not outbox.send(ports, envelope):
            break
    if sent:
        logger.warning("%d deletion(s) overdue", len(sent))
    return len(sent)


def sweep_forever(
    ports: DevicePorts, stop: threading.Event, interval: float = SWEEP_SECONDS
) -> None:
    """Background task: the overdue sweep every ``interval`` seconds until stopped."""
    relay.every(interval, lambda: sweep_overdue(ports), stop, "overdue sweep")
