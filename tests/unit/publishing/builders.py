"""Builders for publishing tests."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from PIL import Image

from services.publishing import bootstrap, delivery
from services.publishing.app import create_app
from services.publishing.bootstrap import Ports, handler_map
from services.publishing.domain import Account
from services.publishing.platforms.folder import FolderAdapter
from shared import auth, contracts
from shared.config import Settings
from shared.testing import InMemoryBlobStore
from tests.support.bus import InMemoryBus
from tests.unit.publishing.fakes import (
    InMemoryAccountDirectory,
    InMemoryApprovals,
    InMemoryDeliveryLog,
    OutboxUnit,
)

SECRET = "publishing-test-secret-0123456789-0123456789"


def _jpeg(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (20, 40, 80)).save(out, "JPEG")
    return out.getvalue()


IMAGE = _jpeg()  # a redacted image as redaction stores it


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


def an_account(
    account_id: str = "newsroom", school: str = "north", **kwargs: Any
) -> Account:
    return Account(
        account_id=account_id,
        school_id=school,
        kind=kwargs.pop("kind", "folder"),
        name=f"{account_id} folder",
        **kwargs,
    )


@dataclass
class Rig:
    ports: Ports
    accounts: InMemoryAccountDirectory
    deliveries: InMemoryDeliveryLog
    redacted: InMemoryBlobStore
    root: Path
    app: Flask
    bus: InMemoryBus

    def handle(self, message: contracts.Message) -> list[contracts.Message]:
        """Run the message's use case in its unit of work; what it emitted (the
        worker itself is left nothing to publish)."""
        start = len(self.bus.published)
        assert handler_map(self.ports)[type(message)](message) == []
        return self.messages[start:]

    @property
    def messages(self) -> list[contracts.Message]:
        """Everything publishing emitted through its units of work, in order."""
        return [contracts.parse(e) for e in self.bus.published]

    def unit(self) -> OutboxUnit:
        """A unit of work over the rig's in-memory repositories (as they are now)."""
        p = self.ports
        return OutboxUnit(
            self.bus,
            "publishing",
            accounts=p.accounts,
            deliveries=p.deliveries,
            approvals=p.approvals,
            takedowns=p.takedowns,
            sites=p.sites,
            tokens=p.tokens,
            oauth_states=p.oauth_states,
        )

    def publish(self, event: contracts.PostApproved) -> list[contracts.Message]:
        """The approved post through the final gate with consent answering
        "current", then one turn of the delivery loop: what publishing then says
        (published / failed; the pages' delivery.updated left out)."""
        out = self.handle(event)
        if not (len(out) == 1 and isinstance(out[0], contracts.VerifyPostConsent)):
            return out  # nothing to verify (all live already, or a stale round)
        self.handle(cleared(event))
        return self.run()

    def run(self) -> list[contracts.Message]:
        """One turn of the delivery loop; the messages it owes (no updates)."""
        start = len(self.bus.published)
        delivery.run_due(bootstrap.delivery_engine(self.ports))
        return said(self.messages[start:])


def said(messages: list[contracts.Message]) -> list[contracts.Message]:
    """The messages besides the pages' ``delivery.updated``."""
    return [m for m in messages if not isinstance(m, contracts.DeliveryUpdated)]


def cleared(
    event: contracts.PostApproved, current: bool = True, stale: tuple[str, ...] = ()
) -> contracts.PostConsentVerified:
    """Consent's answer to the final gate for this approval round."""
    return contracts.PostConsentVerified(
        post_id=event.post_id,
        school_id=event.school_id,
        round=event.round,
        current=current,
        stale=[contracts.StalePupil(pupil_id=p, reason="withdrawn") for p in stale],
        checked_on=date(2030, 1, 1),
    )


def a_rig(
    tmp_path: Path,
    *accounts: Account,
    targets: Any = None,
    platforms: Any = None,
    **port_options: Any,
) -> Rig:
    directory = InMemoryAccountDirectory(*(accounts or (an_account(),)))
    log, redacted = InMemoryDeliveryLog(), InMemoryBlobStore()
    root = tmp_path / "published"
    clock = port_options.pop("now", None) or Clock()
    bus = InMemoryBus()
    rig: list[Rig] = []  # the unit of work reads the rig's ports as they are then
    ports = Ports(
        accounts=directory,
        deliveries=log,
        redacted=redacted,
        platforms=platforms or targets or {"folder": FolderAdapter(root)},
        approvals=InMemoryApprovals(clock),
        unit=lambda: rig[0].unit(),
        publish_root=root,
        now=clock,
        **port_options,
    )
    settings = Settings(
        service="publishing",
        data_dir=tmp_path,
        amqp_url="memory://",
        database_url="sqlite://",
        secret_key=SECRET,
        publish_root=root,
    )
    rig.append(
        Rig(ports, directory, log, redacted, root, create_app(ports, settings), bus)
    )
    return rig[0]


def approved(
    rig: Rig,
    post_id: str = "p1",
    *,
    accounts: tuple[str, ...] = ("newsroom",),
    school: str = "north",
    images: tuple[bytes, ...] = (IMAGE,),
) -> contracts.PostApproved:
    """A PostApproved whose redacted images are in the rig's redacted store."""
    refs = []
    for n, data in enumerate(images, start=1):
        key = f"redacted/{post_id}/ph{n}.jpg"
        rig.redacted.put(key, data)
        refs.append(
            contracts.ApprovedImage(
                photo_id=f"ph{n}",
                redacted_key=key,
                sha256=hashlib.sha256(data).hexdigest(),
            )
        )
    return contracts.PostApproved(
        post_id=post_id,
        school_id=school,
        author_id="u-teacher",
        approved_by="u-approver",
        caption="Sports day!",
        accounts=list(accounts),
        images=refs,
    )


def an_identity(*roles: tuple[str, str], user_id: str = "u1") -> auth.Identity:
    return auth.Identity(
        user_id=user_id,
        username=user_id,
        display_name=user_id,
        roles=frozenset(roles),
        session_id=f"s-{user_id}",
    )


def bearer(identity: auth.Identity) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.issue_token(SECRET, identity, kind='api')}"}


def an_image(width: int = 1200, height: int = 1000, kind: str = "JPEG") -> bytes:
    """A real image of that size and format (what the fit check reads)."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (40, 90, 160)).save(out, format=kind)
    return out.getvalue()


def check_fit(
    post_id: str = "p1",
    *,
    accounts: tuple[str, ...] = ("newsroom",),
    school: str = "north",
    caption: str = "Sports day!",
    keys: tuple[str, ...] = ("redacted/p1/ph1.jpg",),
) -> contracts.CheckFit:
    """Approval's question: does the post fit each of these accounts?"""
    return contracts.CheckFit(
        post_id=post_id,
        school_id=school,
        caption=caption,
        accounts=list(accounts),
        images=[
            contracts.FitImage(photo_id=f"ph{n}", redacted_key=key)
            for n, key in enumerate(keys, start=1)
        ],
    )
