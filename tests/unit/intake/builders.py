"""Builders for intake tests: images, identities, an app on fakes."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy.engine import Engine

from services.intake import adapters, handlers
from services.intake.app import create_app
from services.intake.bootstrap import MIGRATIONS, SERVICE, Ports
from shared import auth, contracts, db, outbox
from shared.config import Settings
from shared.testing import InMemoryBlobStore
from tests.support.bus import InMemoryBus
from tests.unit.intake.fakes import (
    Clock,
    InMemoryDeviceRegister,
    InMemoryObligations,
    InMemoryPostLedger,
    InMemoryUnit,
    Store,
)

SECRET = "intake-test-secret-0123456789-0123456789"
T0 = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)


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
    originals: Any
    bus: InMemoryBus
    clock: Clock
    store: Store | None = None  # on fakes: their data
    engine: Engine | None = None  # on SQL
    ids: list[str] = field(default_factory=list)
    default_device: tuple[str, str] | None = None

    @property
    def outbox(self) -> outbox.Outbox:
        if self.store is not None:
            return self.store
        assert self.engine is not None
        return db.SqlOutbox(self.engine, adapters.outbox, self.clock)

    def pending(self) -> list[contracts.Envelope]:
        """What waits in intake's outbox, oldest first."""
        if self.store is not None:
            return self.store.pending()
        assert self.engine is not None
        return db.outbox_pending(self.engine, adapters.outbox, 1000)

    def relay(self) -> int:
        """One pass of the outbox relay."""
        return outbox.relay(self.outbox, self.bus)

    def token(self) -> str:
        """The token of the teacher's approved personal device (made once)."""
        if self.default_device is None:
            self.default_device = self.device()
        return self.default_device[1]

    def upload(
        self,
        form: dict[str, Any],
        identity: auth.Identity | None = None,
        token: str | None = "default",
    ) -> Any:
        headers = bearer(identity or an_identity(("north", "teacher")))
        if token == "default":
            token = self.token()
        if token is not None:
            headers["X-Device-Token"] = token
        return self.client().post(
            "/api/posts",
            data=form,
            headers=headers,
            content_type="multipart/form-data",
        )

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def device(
        self,
        owner: str = "u-teacher",
        *,
        kind: str = "personal",
        school: str = "north",
        status: str = "approved",
    ) -> tuple[str, str]:
        """A registered device (approved unless told) and its token."""
        device = handlers.register(
            self.ports, school=school, owner=owner, kind=kind, name="", by="u-it"
        )
        code, _ = handlers.enrolment_code(self.ports, device.device_id, "u-it")
        _, token = handlers.enrol(self.ports, code, via="api")
        if status in ("approved", "revoked"):
            handlers.approve(self.ports, device.device_id, "u-coo")
        if status == "revoked":
            handlers.revoke(self.ports, device.device_id, "u-it", "lost")
        return device.device_id, token


def a_rig(
    *,
    originals: Any = None,
    bus: InMemoryBus | None = None,
    limit: int = 1024 * 1024,
    block_overdue: bool = True,
    sql: Path | None = None,
) -> Rig:
    """An app on fakes, or (``sql``: a folder) on the real SQL adapters on SQLite."""
    clock = Clock(T0)
    store = originals if originals is not None else InMemoryBlobStore()
    bus = bus or InMemoryBus()
    counter = iter(range(1, 10_000))
    data: Store | None = None
    engine: Engine | None = None
    if sql is None:
        data = Store()
        fakes = data
        repositories: dict[str, Any] = {
            "unit": lambda: InMemoryUnit(fakes, bus),
            "ledger": InMemoryPostLedger(data),
            "register": InMemoryDeviceRegister(data),
            "obligations": InMemoryObligations(data),
        }
    else:
        engine = db.make_engine(f"sqlite:///{sql / 'intake.sqlite3'}")
        db.migrate(engine, MIGRATIONS)
        repositories = {
            "unit": partial(
                adapters.IntakeUnit,
                engine,
                adapters.outbox,
                producer=SERVICE,
                publisher=bus,
                now=clock,
            ),
            "ledger": adapters.SqlPostLedger(engine),
            "register": adapters.SqlDeviceRegister(engine),
            "obligations": adapters.SqlObligations(engine),
        }
    ports = Ports(
        **repositories,
        originals=store,
        publisher=bus,
        new_id=lambda: f"post-{next(counter)}",
        max_upload_bytes=limit,
        now=clock,
        block_overdue=block_overdue,
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
        originals=store,
        bus=bus,
        clock=clock,
        store=data,
        engine=engine,
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
