"""Builders for approval tests: messages with defaults, a rig of fakes, identities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from services.approval.app import create_app
from services.approval.bootstrap import Ports, handler_map
from shared import auth, contracts
from shared.config import Settings
from shared.testing import InMemoryBlobStore
from tests.support.bus import InMemoryBus
from tests.support.uow import FakeUnit
from tests.unit.approval.fakes import InMemoryPhotoReports, InMemoryPostBook

SECRET = "approval-test-secret-0123456789-0123456789"
AUTHOR = "u-teacher"


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.at += timedelta(seconds=1)
        return self.at


@dataclass
class Rig:
    ports: Ports
    book: InMemoryPostBook
    reports: InMemoryPhotoReports
    previews: InMemoryBlobStore
    bus: InMemoryBus
    app: Flask

    def handle(self, message: contracts.Message) -> list[contracts.Message]:
        """Run the message's use case; the messages it emitted (taken off the bus,
        which then holds only what the API sent)."""
        before = len(self.bus.published)
        assert handler_map(self.ports)[type(message)](message) == []
        emitted = self.bus.published[before:]
        del self.bus.published[before:]
        return [contracts.parse(e) for e in emitted]

    def client(self) -> FlaskClient:
        return self.app.test_client()


def a_rig() -> Rig:
    book, reports = InMemoryPostBook(), InMemoryPhotoReports()
    previews, bus = InMemoryBlobStore(), InMemoryBus()
    ports = Ports(
        book=book,
        reports=reports,
        previews=previews,
        publisher=bus,
        unit=lambda: FakeUnit(bus, "approval", posts=book, reports=reports),
        now=Clock(),
    )
    settings = Settings(
        service="approval",
        data_dir=Path("/tmp"),
        amqp_url="memory://",
        database_url="sqlite://",
        secret_key=SECRET,
    )
    return Rig(ports, book, reports, previews, bus, create_app(ports, settings))


def submitted(
    post_id: str = "p1",
    *,
    school: str = "north",
    author: str = AUTHOR,
    photos: tuple[str, ...] = ("ph1",),
    accounts: tuple[str, ...] = ("newsroom",),
) -> contracts.PostSubmitted:
    return contracts.PostSubmitted(
        post_id=post_id,
        school_id=school,
        author_id=author,
        caption="Sports day",
        accounts=list(accounts),
        photos=[
            contracts.PhotoRef(
                photo_id=p,
                original_key=f"originals/{post_id}/{p}.jpg",
                sha256="a" * 64,
                bytes=10,
            )
            for p in photos
        ],
    )


def redacted(
    photo_id: str = "ph1",
    post_id: str = "p1",
    school: str = "north",
    masked: bool = True,
) -> contracts.PhotoRedacted:
    return contracts.PhotoRedacted(
        photo_id=photo_id,
        post_id=post_id,
        school_id=school,
        redacted_key=f"redacted/{post_id}/{photo_id}.jpg",
        preview_key=f"previews/{post_id}/{photo_id}.jpg",
        sha256="b" * 64,
        width=100,
        height=80,
        faces=[
            contracts.FaceReport(
                index=0,
                box=(1, 2, 30, 40),
                masked=masked,
                reason="unknown" if masked else None,
            )
        ],
    )


def refused(photo_id: str = "ph1", post_id: str = "p1") -> contracts.PhotoRefused:
    return contracts.PhotoRefused(
        photo_id=photo_id, post_id=post_id, school_id="north", reason="corrupt"
    )


def decision(
    post_id: str = "p1",
    approver: str = "u-approver",
    approve: bool = True,
    reason: str = "",
) -> contracts.RecordDecision:
    return contracts.RecordDecision(
        post_id=post_id, approver_id=approver, approve=approve, reason=reason
    )


def awaiting(
    rig: Rig, post_id: str = "p1", *, checked: bool = True, **kwargs: Any
) -> None:
    """A post whose photos are all redacted: awaiting approval (and, if
    ``checked``, publishing answered that it fits every account)."""
    school = kwargs.get("school", "north")
    rig.handle(submitted(post_id, **kwargs))
    for photo in kwargs.get("photos", ("ph1",)):
        rig.handle(redacted(photo, post_id, school))
    if checked:
        accounts = kwargs.get("accounts", ("newsroom",))
        rig.handle(fit_checked(post_id, *(a_fit(a) for a in accounts), school=school))


def an_identity(*roles: tuple[str, str], user_id: str = "u-approver") -> auth.Identity:
    return auth.Identity(
        user_id=user_id,
        username=user_id,
        display_name=user_id,
        roles=frozenset(roles),
        session_id=f"s-{user_id}",
    )


def bearer(identity: auth.Identity) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.issue_token(SECRET, identity, kind='api')}"}


APPROVER = an_identity(("north", "approver"))
TEACHER = an_identity(("north", "teacher"), user_id=AUTHOR)


def a_fit(
    account_id: str = "newsroom",
    *problems: str,
    platform: str = "folder",
    name: str = "",
    note: str = "",
) -> contracts.AccountFit:
    """Publishing's answer for one account: it fits unless there are problems."""
    return contracts.AccountFit(
        account_id=account_id,
        platform=platform,
        name=name or f"{account_id.title()} {platform}",
        fits=not problems,
        problems=list(problems),
        note=note,
    )


def fit_checked(
    post_id: str = "p1", *fits: contracts.AccountFit, school: str = "north"
) -> contracts.PostFitChecked:
    return contracts.PostFitChecked(
        post_id=post_id, school_id=school, accounts=list(fits or (a_fit(),))
    )


def delivery(
    state: str = "live",
    *,
    post_id: str = "p1",
    account: str = "newsroom",
    platform: str = "facebook",
    minute: int = 0,
    school: str = "north",
    **kwargs: Any,
) -> contracts.DeliveryUpdated:
    """Publishing's news of the post on one account, ``minute`` minutes past 10."""
    return contracts.DeliveryUpdated(
        post_id=post_id,
        school_id=school,
        account_id=account,
        platform=platform,
        state=state,
        at=datetime(2030, 1, 1, 10, minute, tzinfo=UTC),
        **kwargs,
    )


def seen(rig: Rig, post_id: str = "p1") -> dict[str, dict[str, Any]]:
    """What the post page shows of each photo, as an approval must name it."""
    return {
        photo_id: {"revision": r.revision, "sha256": r.sha256 or ""}
        for photo_id, r in rig.reports.for_post(post_id).items()
    }


def sent(rig: Rig) -> list[contracts.Message]:
    return [contracts.parse(e) for e in rig.bus.published]
