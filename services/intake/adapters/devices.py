"""The device register in SQL: devices, their tokens (hashed), enrolment codes."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.intake import domain
from services.intake.adapters.tables import devices, enrolment_codes
from services.intake.ports import EnrolmentCode
from shared.db import Repository

# The token's hash never leaves the table except to find a device by it.
DEVICE_COLUMNS = [c for c in devices.columns if c.name != "token_hash"]


class SqlDeviceRegister(Repository):
    def add(self, device: domain.Device) -> None:
        with self._begin() as conn:
            conn.execute(
                devices.insert().values(
                    device_id=device.device_id,
                    school_id=device.school_id,
                    name=device.name,
                    owner=device.owner,
                    kind=device.kind,
                    status=device.status,
                    registered_by=device.registered_by,
                    registered_at=device.registered_at,
                )
            )

    def get(self, device_id: str) -> domain.Device | None:
        return self._one(devices.c.device_id == device_id)

    def by_token(self, token_hash: str) -> domain.Device | None:
        return self._one(devices.c.token_hash == token_hash)

    def _one(self, where: Any) -> domain.Device | None:
        with self._begin() as conn:
            row = conn.execute(sa.select(*DEVICE_COLUMNS).where(where)).first()
        return _device(row) if row is not None else None

    def listing(self, schools: Collection[str] | None) -> list[domain.Device]:
        query = sa.select(*DEVICE_COLUMNS).order_by(
            devices.c.registered_at.desc(), devices.c.device_id
        )
        if schools is not None:
            query = query.where(devices.c.school_id.in_(list(schools)))
        with self._begin() as conn:
            return [_device(r) for r in conn.execute(query).all()]

    def set_status(self, device: domain.Device, was: str) -> bool:
        with self._begin() as conn:
            done = conn.execute(
                devices.update()
                .where(devices.c.device_id == device.device_id)
                .where(devices.c.status == was)
                .values(
                    status=device.status,
                    approved_by=device.approved_by,
                    approved_at=device.approved_at,
                    revoked_by=device.revoked_by,
                    revoked_at=device.revoked_at,
                )
            )
        return done.rowcount == 1

    def set_token(self, device_id: str, token_hash: str, at: datetime) -> None:
        with self._begin() as conn:
            conn.execute(
                devices.update()
                .where(devices.c.device_id == device_id)
                .values(token_hash=token_hash, enrolled_at=at)
            )

    def seen(self, device_id: str, at: datetime) -> None:
        with self._begin() as conn:
            conn.execute(
                devices.update()
                .where(devices.c.device_id == device_id)
                .values(last_seen_at=at)
            )

    def add_code(self, code: EnrolmentCode) -> None:
        with self._begin() as conn:
            conn.execute(
                enrolment_codes.insert().values(
                    code_hash=code.code_hash,
                    device_id=code.device_id,
                    created_by=code.created_by,
                    created_at=code.created_at,
                    expires_at=code.expires_at,
                    used_at=code.used_at,
                )
            )

    def code(self, code_hash: str) -> EnrolmentCode | None:
        query = sa.select(enrolment_codes).where(
            enrolment_codes.c.code_hash == code_hash
        )
        with self._begin() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return EnrolmentCode(
            code_hash=row.code_hash,
            device_id=row.device_id,
            created_by=row.created_by,
            created_at=row.created_at,
            expires_at=row.expires_at,
            used_at=row.used_at,
        )

    def use_code(self, code_hash: str, at: datetime) -> bool:
        with self._begin() as conn:
            used = conn.execute(
                enrolment_codes.update()
                .where(enrolment_codes.c.code_hash == code_hash)
                .where(enrolment_codes.c.used_at.is_(None))
                .values(used_at=at)
            )
        return used.rowcount == 1


def _device(row: Any) -> domain.Device:
    return domain.Device(
        device_id=row.device_id,
        school_id=row.school_id,
        name=row.name,
        owner=row.owner,
        kind=row.kind,
        status=row.status,
        registered_by=row.registered_by,
        registered_at=row.registered_at,
        approved_by=row.approved_by,
        approved_at=row.approved_at,
        revoked_by=row.revoked_by,
        revoked_at=row.revoked_at,
        last_seen_at=row.last_seen_at,
        enrolled_at=row.enrolled_at,
    )
