"""The device register's use cases: register, approve, revoke, issue an enrolment
code, enrol (exchange the code for a token)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from services.intake import domain
from services.intake.ports import EnrolmentCode, UseCasePorts
from shared import contracts
from shared.errors import NotFoundError

TOKEN_BYTES = 32


def register(
    ports: UseCasePorts, *, school: str, owner: str, kind: str, name: str, by: str
) -> domain.Device:
    """Register a staff member's device, pending approval."""
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
    with ports.unit() as unit:
        unit.devices.add(device)
        unit.emit(
            contracts.DeviceRegistered(
                device_id=device.device_id,
                school_id=school,
                owner=owner,
                kind=kind,
                name=name,
            ),
            actor=by,
            message_id=contracts.deterministic_id(
                "device.registered", device.device_id
            ),
        )
        unit.commit()
    return device


def approve(ports: UseCasePorts, device_id: str, by: str) -> domain.Device:
    def approved(d: domain.Device) -> contracts.Message:
        return contracts.DeviceApproved(
            device_id=d.device_id,
            school_id=d.school_id,
            owner=d.owner,
            kind=d.kind,
            approved_by=by,
        )

    return _change(ports, device_id, domain.APPROVED, by, approved)


def revoke(ports: UseCasePorts, device_id: str, by: str, reason: str) -> domain.Device:
    """Revoke a device (final); its next request is refused."""

    def revoked(d: domain.Device) -> contracts.Message:
        return contracts.DeviceRevoked(
            device_id=d.device_id,
            school_id=d.school_id,
            owner=d.owner,
            revoked_by=by,
            reason=reason[:500],
        )

    return _change(ports, device_id, domain.REVOKED, by, revoked)


def _change(
    ports: UseCasePorts,
    device_id: str,
    status: str,
    by: str,
    message: Callable[[domain.Device], contracts.Message],
) -> domain.Device:
    with ports.unit() as unit:
        device = unit.devices.get(device_id)
        if device is None:
            raise domain.DeviceStateError(
                f"no device {device_id}", code="not_found", status=404
            )
        changed = domain.transition(device, status, by, ports.now())
        if not unit.devices.set_status(changed, was=device.status):
            raise domain.DeviceStateError("the device changed meanwhile; look again")
        event = message(changed)
        unit.emit(
            event,
            actor=by,
            message_id=contracts.deterministic_id(event.TYPE, device_id),
        )
        unit.commit()
    return changed


def new_token() -> str:
    """A device token: 32 random bytes, URL-safe; shown once, kept only as a hash."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def new_code() -> str:
    return "".join(
        secrets.choice(domain.CODE_ALPHABET) for _ in range(domain.CODE_LENGTH)
    )


def enrolment_code(
    ports: UseCasePorts, device_id: str, by: str
) -> tuple[str, datetime]:
    """A one-time code for the device (shown once, kept hashed); expires in 15
    minutes."""
    raw = new_code()
    at = ports.now()
    expires = at + timedelta(minutes=domain.ENROL_MINUTES)
    with ports.unit() as unit:
        device = unit.devices.get(device_id)
        if device is None:
            raise NotFoundError(f"no device {device_id}")
        if device.status == domain.REVOKED:
            raise domain.DeviceStateError("a revoked device cannot be enrolled")
        unit.devices.add_code(
            EnrolmentCode(domain.hash_secret(raw), device_id, by, at, expires)
        )
        unit.commit()
    return domain.format_code(raw), expires


def enrol(
    ports: UseCasePorts, code: str, via: str, owner: str | None = None
) -> tuple[domain.Device, str]:
    """Exchange a code, once, for a new device token (returned once, stored hashed;
    the old token stops working).

    With ``owner`` (a browser enrolling for the signed-in teacher) a code of someone
    else's device is refused, and the code stays unused.
    """
    raw = domain.normalise_code(code)
    if len(raw) != domain.CODE_LENGTH:
        raise domain.EnrolmentError("that enrolment code is not valid")
    code_hash = domain.hash_secret(raw)
    token = new_token()
    at = ports.now()
    with ports.unit() as unit:
        found = unit.devices.code(code_hash)
        device = unit.devices.get(found.device_id) if found is not None else None
        problem = domain.enrolment_refusal(
            device.device_id if device is not None else None,
            found.expires_at if found is not None else None,
            found.used_at if found is not None else None,
            at,
        )
        if problem is not None:
            raise problem
        assert device is not None
        _check_enrolment(device, owner)
        if not unit.devices.use_code(code_hash, at):  # a concurrent exchange won
            raise domain.EnrolmentError(
                "that enrolment code has been used already", code="enrolment_code_used"
            )
        unit.devices.set_token(device.device_id, domain.hash_secret(token), at)
        unit.emit(
            contracts.DeviceEnrolled(
                device_id=device.device_id,
                school_id=device.school_id,
                owner=device.owner,
                via=via,
            ),
            actor=device.owner,
            message_id=contracts.deterministic_id("device.enrolled", code_hash),
        )
        unit.commit()
    return replace(device, enrolled_at=at), token


def _check_enrolment(device: domain.Device, owner: str | None) -> None:
    if device.status == domain.REVOKED:
        raise domain.EnrolmentError(
            "that device has been revoked", code="device_revoked"
        )
    if owner is not None and device.owner != owner:
        raise domain.DeviceRefusedError(
            "that code is for another member of staff's device",
            code="device_not_yours",
        )
