"""Intake's blueprint and what its views share: the device token, JSON shapes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, request

from services.intake import domain
from services.intake.bootstrap import Ports
from shared import web

bp = Blueprint(
    "intake", __name__, template_folder=str(Path(__file__).parent.parent / "templates")
)

DEVICE_HEADER = "X-Device-Token"
DEVICE_COOKIE = "safepost_device"
DEVICE_COOKIE_SECONDS = 400 * 24 * 3600  # the browser's limit; revocation ends it
IT = ("it_auditor", "admin")
APPROVERS = ("approver", "admin", "it_auditor")


def ports() -> Ports:
    found: Ports = web.ports()
    return found


def device_token() -> str | None:
    return request.headers.get(DEVICE_HEADER) or request.cookies.get(DEVICE_COOKIE)


def device_json(d: domain.Device, **extra: Any) -> dict[str, Any]:
    return {
        "device_id": d.device_id,
        "school": d.school_id,
        "name": d.name,
        "owner": d.owner,
        "kind": d.kind,
        "status": d.status,
        "registered_by": d.registered_by,
        "registered_at": iso(d.registered_at),
        "approved_by": d.approved_by,
        "approved_at": iso(d.approved_at),
        "revoked_by": d.revoked_by,
        "revoked_at": iso(d.revoked_at),
        "enrolled_at": iso(d.enrolled_at),
        "last_seen_at": iso(d.last_seen_at),
        **extra,
    }


def obligation_json(o: domain.Obligation, now: datetime) -> dict[str, Any]:
    return {
        "receipt_id": o.receipt_id,
        "post_id": o.post_id,
        "school": o.school_id,
        "device_id": o.device_id,
        "owner": o.owner,
        "file": o.filename,
        "sha256": o.sha256,
        "due_at": iso(o.due_at),
        "overdue": o.overdue(now),
        "closed_at": iso(o.closed_at),
        "method": o.method,
    }


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
