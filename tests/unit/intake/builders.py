"""Builders for intake tests: images, identities, an app on fakes."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from services.intake.app import create_app
from services.intake.bootstrap import Ports
from shared import auth
from shared.config import Settings
from shared.testing import InMemoryBlobStore
from tests.unit.intake.fakes import InMemoryPostLedger, SwitchableBus

SECRET = "intake-test-secret-0123456789-0123456789"


def a_jpeg(color: tuple[int, int, int] = (200, 30, 30), size: int = 16) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, "JPEG")
    return out.getvalue()


def a_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 90, 0)).save(out, "PNG")
    return out.getvalue()


def an_identity(*roles: tuple[str, str], user_id: str = "u-teacher") -> auth.Identity:
    return auth.Identity(
        user_id=user_id,
        username=user_id,
        display_name=user_id,
        roles=frozenset(roles or {("north", "teacher")}),
        session_id=f"s-{user_id}",
    )


def bearer(identity: auth.Identity) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.issue_token(SECRET, identity, kind='api')}"}


@dataclass
class Rig:
    app: Flask
    ports: Ports
    ledger: InMemoryPostLedger
    originals: Any
    bus: SwitchableBus
    ids: list[str] = field(default_factory=list)

    def client(self) -> FlaskClient:
        return self.app.test_client()


def a_rig(
    *, originals: Any = None, bus: SwitchableBus | None = None, limit: int = 1024 * 1024
) -> Rig:
    ledger = InMemoryPostLedger()
    store = originals if originals is not None else InMemoryBlobStore()
    bus = bus or SwitchableBus()
    counter = iter(range(1, 10_000))
    ports = Ports(
        ledger=ledger,
        originals=store,
        publisher=bus,
        new_id=lambda: f"post-{next(counter)}",
        max_upload_bytes=limit,
    )
    settings = Settings(
        service="intake",
        data_dir=Path("/tmp"),
        amqp_url="memory://",
        database_url="sqlite://",
        secret_key=SECRET,
    )
    return Rig(
        app=create_app(ports, settings),
        ports=ports,
        ledger=ledger,
        originals=store,
        bus=bus,
    )


def a_form(*files: tuple[bytes, str], **fields: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "school": "north",
        "caption": "Sports day",
        "accounts": "newsroom",
    }
    form.update(fields)
    form["photos"] = [(io.BytesIO(data), name) for data, name in files]
    return form
