"""The four platform sandboxes, started in-process on loopback free ports for the
embedded system (``safepost run``, the e2e tests) and the publishing benchmark.

``start(schools)`` serves the Graph sandbox (Facebook Pages and their Instagram
accounts), X, LinkedIn and a school-website webhook receiver, and gives each school a
Facebook Page with a linked Instagram account, an X account and a LinkedIn
organisation, with tokens issued as if an admin had connected them (``issued``).
``Sandboxes.env()`` is what publishing needs to talk to them (API bases, web URLs,
the sandbox apps' OAuth client settings, so the admin page's *Connect* works too).

Sandboxes keep everything in memory: a restart forgets their posts, and each start
uses new ports and issues new tokens (the demo seed re-points the accounts).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from flask import Response, request

from safepost.sandboxes import graph, linkedin, webhook, x
from safepost.sandboxes.common import Running, Sandbox
from services.publishing.platforms.base import Credentials

MEMORY_NOTE = (
    "This sandbox keeps its posts in memory only: stopping <code>safepost run</code> "
    "(or <code>make run</code>) forgets them, and each start uses new ports."
)


@dataclass(frozen=True)
class Issued:
    """One school's account on a sandbox: the platform's id of it, the API's base URL
    and the tokens the sandbox issued (what an OAuth connection would have stored)."""

    platform: str
    external_id: str
    api_base: str
    credentials: Credentials = field(repr=False)
    name: str = ""


@dataclass
class Sandboxes:
    """The running sandboxes and, per school and platform, what they issued."""

    graph: graph.GraphSandbox
    x: x.XSandbox
    linkedin: linkedin.LinkedInSandbox
    webhook: webhook.WebhookSandbox
    running: list[Running] = field(default_factory=list)
    issued: dict[str, dict[str, Issued]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """Settings that point publishing (adapters, OAuth, token refresh) at the
        sandboxes: ``Settings.platform_env`` keeps them."""
        g, xs, li = self.graph, self.x, self.linkedin
        return {
            "GRAPH_API_BASE": g.base_url,
            "FACEBOOK_DIALOG_BASE": g.base_url,
            "FACEBOOK_APP_ID": g.app_id,
            "FACEBOOK_APP_SECRET": g.app_secret,
            "X_API_BASE": xs.base_url,
            "X_AUTH_BASE": xs.base_url,
            "X_WEB_URL": xs.base_url,
            "X_CLIENT_ID": xs.client_id,
            "LINKEDIN_API_BASE": li.base_url,
            "LINKEDIN_AUTH_BASE": li.base_url,
            "LINKEDIN_WEB_URL": li.base_url,
            "LINKEDIN_CLIENT_ID": li.client_id,
            "LINKEDIN_CLIENT_SECRET": li.client_secret,
        }

    def pages(self) -> dict[str, str]:
        """Each sandbox's page listing its live posts, by what it stands for."""
        return {
            "Facebook and Instagram": f"{self.graph.base_url}/",
            "X": f"{self.x.base_url}/",
            "LinkedIn": f"{self.linkedin.base_url}/",
            "School website (webhook)": f"{self.webhook.base_url}/",
        }

    def by_platform(self) -> dict[str, Sandbox]:
        """The sandbox each platform's posts land on."""
        return {
            "facebook": self.graph,
            "instagram": self.graph,
            "x": self.x,
            "linkedin": self.linkedin,
            "webhook": self.webhook,
        }

    def stop(self) -> None:
        for server in self.running:
            server.stop()
        self.running.clear()


def start(
    schools: Mapping[str, str],
    *,
    latency: tuple[float, float] = (0.0, 0.0),
    host: str = "127.0.0.1",
) -> Sandboxes:
    """Serve the four sandboxes on ``host`` (free ports) and register each school's
    accounts on them; ``latency`` is each request's simulated platform delay range
    in seconds."""
    boxes = Sandboxes(
        graph=graph.GraphSandbox(
            app_id="safepost-sandbox-app",
            app_secret=secrets.token_urlsafe(24),
            latency=latency,
        ),
        x=x.XSandbox(latency),
        linkedin=linkedin.LinkedInSandbox(latency),
        webhook=webhook.WebhookSandbox(
            secret=secrets.token_urlsafe(32), latency=latency
        ),
    )
    return serve(boxes, schools, host)


def serve(
    boxes: Sandboxes, schools: Mapping[str, str], host: str = "127.0.0.1"
) -> Sandboxes:
    """Serve sandboxes made by the caller (e.g. the benchmark's, which inject faults
    at random) and register each school's accounts on them."""
    for sandbox in (boxes.graph, boxes.x, boxes.linkedin, boxes.webhook):
        _say_it_is_in_memory(sandbox)
        boxes.running.append(sandbox.serve(host))
    for slug, name in schools.items():
        boxes.issued[slug] = register(boxes, slug, name)
    return boxes


def register(boxes: Sandboxes, slug: str, name: str) -> dict[str, Issued]:
    """The school's Page (with its Instagram account), X account, LinkedIn
    organisation and website receiver, each with freshly issued tokens."""
    now = datetime.now(UTC)
    page_id, ig_id = demo_id("facebook", slug), demo_id("instagram", slug)
    page_token = secrets.token_urlsafe(32)
    boxes.graph.add_page(page_id, name, page_token, ig_id)
    page_credentials = Credentials(page_token, scopes=graph.SCOPES)
    user_id = demo_id("x", slug)
    boxes.x.add_user(user_id, slug)
    access, refresh = boxes.x.issue_token(user_id)
    x_credentials = Credentials(
        access,
        refresh,
        now + timedelta(seconds=boxes.x.token_lifetime),
        tuple(sorted(x.SCOPES)),
    )
    urn = boxes.linkedin.add_organization(demo_id("linkedin", slug), name)
    li_access, li_refresh = boxes.linkedin.issue_token()
    li_credentials = Credentials(
        li_access,
        li_refresh,
        now + timedelta(seconds=boxes.linkedin.token_lifetime),
        tuple(sorted(linkedin.SCOPES)),
    )
    hook = boxes.webhook
    return {
        "facebook": Issued(
            "facebook", page_id, boxes.graph.base_url, page_credentials, name
        ),
        "instagram": Issued(
            "instagram", ig_id, boxes.graph.base_url, page_credentials, name
        ),
        "x": Issued("x", user_id, boxes.x.base_url, x_credentials, f"@{slug}"),
        "linkedin": Issued(
            "linkedin", urn, boxes.linkedin.base_url, li_credentials, name
        ),
        "webhook": Issued(
            "webhook", hook.receiver_url, "", Credentials(hook.secret), name
        ),
    }


def demo_id(platform: str, slug: str) -> str:
    """A stable numeric platform id for a school's demo account (the same on every
    start, so restarting keeps the accounts' ids)."""
    digest = hashlib.sha256(f"{platform}:{slug}".encode()).hexdigest()
    return str(10**12 + int(digest[:15], 16) % 10**12)


def _say_it_is_in_memory(sandbox: Sandbox) -> None:
    """The sandbox's listing page says its posts live in memory only."""

    @sandbox.app.after_request
    def note(response: Response) -> Response:
        if request.path != "/" or response.mimetype != "text/html":
            return response
        body = response.get_data(as_text=True)
        marked = body.replace("</h1>", f"</h1><p><strong>{MEMORY_NOTE}</strong></p>", 1)
        response.set_data(marked)
        return response
