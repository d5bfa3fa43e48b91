"""Intake's read side: what its pages and API answers show, from the read-side
repositories (each query its own transaction; writes go through ``handlers``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.intake import domain
from services.intake.ports import DeviceRegister, Obligations
from shared.errors import NotFoundError


@dataclass(frozen=True)
class DeviceLine:
    """A device on IT's listing, with its deletions still expected."""

    device: domain.Device
    open_deletions: int
    overdue_deletions: int


def device(register: DeviceRegister, device_id: str) -> domain.Device:
    found = register.get(device_id)
    if found is None:
        raise NotFoundError(f"no device {device_id}")
    return found


def identify(register: DeviceRegister, token: str | None) -> domain.Device | None:
    """The device whose token this is (None: no token, or not a device's)."""
    if not token:
        return None
    return register.by_token(domain.hash_secret(token.strip()))


def device_listing(
    register: DeviceRegister,
    obligations: Obligations,
    schools: set[str] | None,
    now: datetime,
) -> list[DeviceLine]:
    """The devices of these schools (None: all), newest first, with their open and
    overdue deletions."""
    found = register.listing(schools)
    counts: dict[str, list[int]] = {}
    for o in obligations.find(device_ids=[d.device_id for d in found]):
        c = counts.setdefault(o.device_id, [0, 0])
        c[0] += 1
        c[1] += int(o.overdue(now))
    return [DeviceLine(d, *counts.get(d.device_id, [0, 0])) for d in found]
