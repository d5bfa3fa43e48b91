"""The delivery loop against the local platform sandboxes over real HTTP, with the
service's real SQL adapters: one approved post live exactly once on Facebook,
Instagram, X, LinkedIn, a webhook and a folder; and the failures the issue names —
a lost answer, a worker killed between the platform's answer and the marker, a
rate limit, an expired token — never make a second live copy or a silent failure."""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server

from safepost.sandboxes.graph import GraphSandbox
from safepost.sandboxes.linkedin import LinkedInSandbox
from safepost.sandboxes.webhook import DEMO_SECRET, WebhookSandbox
from safepost.sandboxes.x import XSandbox
from services.publishing import adapters, bootstrap, delivery, domain
from services.publishing.app import create_app
from services.publishing.platforms.base import Credentials
from shared import contracts
from shared.config import Settings

SCHOOL = "north"
CAPTION = "Year 5 bridges!"
FOOTER = "North School, part of the Demo Trust."


def jpeg(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (seed, 90, 160)).save(out, "JPEG", quality=90)
    return out.getvalue()


@dataclass
class World:
    ports: bootstrap.Ports
    graph: GraphSandbox
    x: XSandbox
    linkedin: LinkedInSandbox
    webhook: WebhookSandbox
    root: Path

    def engine(self, **changes: Any) -> delivery.Engine:
        return replace(bootstrap.delivery_engine(self.ports), **changes)

    def emitted(self, type_: str) -> list[contracts.Envelope]:
        """What publishing emitted of this type: its outbox, sent or not."""
        table = adapters.outbox
        query = (
            sa.select(table.c.body)
            .where(table.c.type == type_)
            .order_by(table.c.created_at, table.c.envelope_id)
        )
        with self.ports.accounts.bind.connect() as conn:  # type: ignore[attr-defined]
            bodies = conn.execute(query).scalars().all()
        return [contracts.Envelope.model_validate_json(b) for b in bodies]

    def approve(
        self, post_id: str, accounts: tuple[str, ...], shown: tuple[str, ...] = ()
    ) -> None:
        """Approved, then cleared by consent (the final gate's answer)."""
        images = []
        for n in (1, 2):
            data = jpeg(n * 40)
            key = f"redacted/{post_id}/ph{n}.jpg"
            self.ports.redacted.put(key, data, "image/jpeg")
            images.append(
                contracts.ApprovedImage(
                    photo_id=f"ph{n}",
                    redacted_key=key,
                    sha256=hashlib.sha256(data).hexdigest(),
                    shown=[
                        contracts.ShownFace(pupil_id=p, consent_versions=["1:x/*:v1"])
                        for p in shown
                    ],
                )
            )
        event = contracts.PostApproved(
            post_id=post_id,
            school_id=SCHOOL,
            author_id="u-teacher",
            approved_by="u-approver",
            caption=CAPTION,
            accounts=list(accounts),
            images=images,
        )
        handlers = bootstrap.handler_map(self.ports)
        assert handlers[contracts.PostApproved](event) == []  # all via the outbox
        asked = [e.data["post_id"] for e in self.emitted("consent.verify_post")]
        assert post_id in asked
        handlers[contracts.PostConsentVerified](
            contracts.PostConsentVerified(
                post_id=post_id,
                school_id=SCHOOL,
                round=1,
                current=True,
                checked_on=time.strftime("%Y-%m-%d"),
            )
        )

    def drain(self, engine: delivery.Engine | None = None, seconds: float = 20) -> None:
        engine = engine or self.engine()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            delivery.run_due(engine)
            busy = [
                d
                for d in self.ports.deliveries.recent(limit=1000)
                if d.status not in (*domain.FINAL, domain.UNCONFIRMED)
            ]
            if not busy:
                return
            time.sleep(0.05)

    def state(self, post_id: str) -> dict[str, domain.Delivery]:
        return {d.account_id: d for d in self.ports.deliveries.recent(post_id=post_id)}


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[World]:
    graph, x, linkedin, webhook = (
        GraphSandbox(),
        XSandbox(),
        LinkedInSandbox(),
        WebhookSandbox(),
    )
    for sandbox in (graph, x, linkedin, webhook):
        sandbox.timeout_seconds = 2.0
    running = [s.serve() for s in (graph, x, linkedin, webhook)]
    env = {
        "SAFEPOST_DATA_DIR": str(tmp_path / "var"),
        "SAFEPOST_SECRET_KEY": "s" * 48,
        "GRAPH_API_BASE": graph.base_url,
        "X_API_BASE": x.base_url,
        "X_WEB_URL": x.base_url,
        "LINKEDIN_API_BASE": linkedin.base_url,
        "LINKEDIN_WEB_URL": linkedin.base_url,
        "PUBLISH_RETRY_SECONDS": "1,1",
        "PUBLISH_RECONCILE_SECONDS": "1,1",
        "PUBLISH_WAIT_SECONDS": "1",
        "PUBLISH_LEASE_SECONDS": "2",
    }
    settings = Settings.from_env("publishing", env)
    ports = bootstrap.real_ports(settings)
    # The publishing app serves the signed image links Instagram fetches.
    server = make_server("127.0.0.1", 0, lambda e, s: [], threaded=True)
    ports = replace(ports, public_url=f"http://127.0.0.1:{server.server_port}")
    server.app = DispatcherMiddleware(
        create_app(ports, settings), {"/publishing": create_app(ports, settings)}
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    graph.add_page("1001", "North School", "page-token-1001", ig_user_id="1789")
    x.add_user("42", "northschool")
    x_token, x_refresh = x.issue_token("42")
    org = linkedin.add_organization("555", "North School")
    li_token, li_refresh = linkedin.issue_token()
    accounts = [
        ("north-fb", "facebook", "1001", Credentials("page-token-1001")),
        ("north-ig", "instagram", "1789", Credentials("page-token-1001")),
        ("north-x", "x", "42", Credentials(x_token, x_refresh)),
        ("north-li", "linkedin", org, Credentials(li_token, li_refresh)),
        ("north-web", "webhook", webhook.receiver_url, Credentials(DEMO_SECRET)),
        ("north-folder", "folder", "", None),
    ]
    for account_id, kind, external, creds in accounts:
        ports.accounts.add(
            domain.Account(
                account_id,
                SCHOOL,
                kind,
                account_id,
                external_id=external,
                owner="approver.north",
                footer=FOOTER,
            )
        )
        if creds is not None:
            ports.tokens.put(account_id, creds, by="test")
    for platform in domain.KINDS:
        ports.sites.put(domain.Site(platform, True, {"ok": "yes"}, "trust-it"))
    try:
        yield World(ports, graph, x, linkedin, webhook, settings.publish_root)
    finally:
        server.shutdown()
        for r in running:
            r.stop()


ALL = ("north-fb", "north-ig", "north-x", "north-li", "north-web", "north-folder")


def test_one_post_goes_live_once_on_every_platform(world: World) -> None:
    world.approve("p1", ALL)
    world.drain()

    state = world.state("p1")
    assert {a: d.status for a, d in state.items()} == {a: "live" for a in ALL}
    text = f"{CAPTION}\n\n{FOOTER}"
    on_graph = sorted(p["platform"] for p in world.graph.live())
    assert on_graph == ["facebook", "instagram"]
    assert all(p["text"] == text for p in world.graph.live())
    assert len(world.x.live()) == 1 and len(world.linkedin.live()) == 1
    assert len(world.webhook.live()) == 1
    assert all(state[a].url.startswith("http") for a in ALL if a != "north-folder")
    folder = world.root / SCHOOL / "north-folder" / "p1"
    assert (folder / "caption.txt").read_text() == text
    # The approved redacted bytes went out (the sandbox kept what it received).
    fb_post = state["north-fb"].external_id
    assert len(world.graph.image_bytes(fb_post)) == 2


def test_a_lost_answer_on_a_create_is_found_not_posted_twice(world: World) -> None:
    world.graph.inject("drop_after", "POST /.*/feed")
    world.x.inject("drop_after", "POST /2/tweets")
    world.linkedin.inject("drop_after", "POST /rest/posts")

    world.approve("p2", ("north-fb", "north-x", "north-li"))
    world.drain()

    state = world.state("p2")
    assert {d.status for d in state.values()} == {"live"}
    assert len(world.x.live()) == 1 and len(world.linkedin.live()) == 1
    assert [p["platform"] for p in world.graph.live()] == ["facebook"]


def test_a_worker_killed_after_the_answer_leaves_exactly_one_copy(world: World) -> None:
    def die(_d: domain.Delivery) -> None:
        raise delivery.SimulatedCrashError

    world.approve("p3", ("north-x",))
    with pytest.raises(delivery.SimulatedCrashError):
        delivery.run_due(world.engine(crash_after_answer=die))
    assert world.state("p3")["north-x"].status == "sending"

    time.sleep(2.2)  # the lease runs out; another worker picks it up
    world.drain()

    assert world.state("p3")["north-x"].status == "live"
    assert len(world.x.live()) == 1


def test_transient_errors_and_a_rate_limit_are_retried_to_one_copy(
    world: World,
) -> None:
    world.x.inject("server_error", "POST /2/media/upload")  # nothing created yet
    world.linkedin.inject("rate_limited", "POST /rest/images")

    world.approve("p4", ("north-x", "north-li"))
    world.drain(seconds=5)

    x_state = world.state("p4")["north-x"]
    assert x_state.status == "live" and x_state.attempts == 2
    li = world.state("p4")["north-li"]
    # LinkedIn said when to come back; the delivery waits until then, not failed.
    assert (li.status, li.reason) == ("waiting", "rate_limited")
    assert len(world.x.live()) == 1 and world.linkedin.live() == []


def test_an_expired_token_waits_for_a_reconnect_and_never_fails_silently(
    world: World,
) -> None:
    world.x.inject("expired_token", "POST /2/media/upload")

    world.approve("p5", ("north-x",))
    world.drain(seconds=2)

    x_state = world.state("p5")["north-x"]
    assert (x_state.status, x_state.reason) == ("waiting", "needs_reconnect")
    account = world.ports.accounts.get("north-x")
    assert account.connection == "needs_reconnect" and account.status_reason
    assert any(
        e.data["status"] == "needs_reconnect" for e in world.emitted("account.changed")
    )
    token = world.x.issue_token("42")
    world.ports.tokens.put("north-x", Credentials(*token), by="approver.north")
    world.drain()
    assert world.state("p5")["north-x"].status == "live"
    assert len(world.x.live()) == 1


def test_a_withdrawal_takes_the_post_down_from_every_platform(world: World) -> None:
    social = ("north-fb", "north-ig", "north-x", "north-li", "north-web")
    world.approve("p6", social, shown=("UPN1",))
    world.drain()
    assert {d.status for d in world.state("p6").values()} == {"live"}
    assert len(world.graph.live()) == 2 and len(world.x.live()) == 1

    handlers = bootstrap.handler_map(world.ports)
    handlers[contracts.ConsentChanged](
        contracts.ConsentChanged(
            school_id=SCHOOL,
            pupil_id="UPN1",
            cause="restricted",
            scopes=[
                contracts.ConsentScope(purpose=p, state="no_consent")
                for p in ("social_media", "website")
            ],
            effective_on=time.strftime("%Y-%m-%d"),
            take_down=True,
        )
    )
    world.drain()

    requested = world.emitted("takedown.requested")
    assert [r.data["accounts"] for r in requested] == [sorted(social)]
    state = world.state("p6")
    assert {d.status for d in state.values()} == {"taken_down"}
    assert all(d.taken_down_at is not None for d in state.values())
    assert world.graph.live() == [] and world.x.live() == []
    assert world.linkedin.live() == [] and world.webhook.live() == []
    completed = world.emitted("takedown.completed")
    assert [e.data["copies"] for e in completed] == [5]


def test_a_platform_that_cannot_delete_leaves_a_task_for_a_person(world: World) -> None:
    world.approve("p7", ("north-x",), shown=("UPN2",))
    world.drain()
    world.x.inject("refuse", "DELETE /2/tweets/.*", times=5)

    bootstrap.handler_map(world.ports)[contracts.ConsentChanged](
        contracts.ConsentChanged(
            school_id=SCHOOL,
            pupil_id="UPN2",
            cause="recorded",
            scopes=[
                contracts.ConsentScope(
                    purpose="social_media", platform="x", state="withdrawn"
                )
            ],
            effective_on=time.strftime("%Y-%m-%d"),
            take_down=True,
        )
    )
    world.drain(seconds=3)

    assert world.state("p7")["north-x"].status == "manual_takedown_required"
    [task] = world.ports.takedowns.manual()
    assert (task.account_id, task.owner) == ("north-x", "approver.north")
    assert task.url.startswith(world.x.base_url)
