"""Connecting accounts by OAuth, end to end over real HTTP against the sandboxes
(Graph for Facebook and Instagram, X with PKCE, LinkedIn), and the background token
refresh. Tokens are checked to be stored only encrypted and never logged."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from safepost.sandboxes.graph import GraphSandbox
from safepost.sandboxes.linkedin import (
    DEMO_CLIENT_ID as LINKEDIN_CLIENT,
)
from safepost.sandboxes.linkedin import (
    DEMO_CLIENT_SECRET as LINKEDIN_SECRET,
)
from safepost.sandboxes.linkedin import (
    LinkedInSandbox,
)
from safepost.sandboxes.x import DEMO_CLIENT_ID as X_CLIENT
from safepost.sandboxes.x import XSandbox
from services.publishing import adapters, connect, domain, refresh, sites
from services.publishing.bootstrap import real_ports
from services.publishing.platforms import x
from services.publishing.platforms.base import AuthError, Credentials
from tests.unit.publishing.builders import an_identity
from tests.unit.publishing.test_accounts_admin import (
    NORTH_ADMIN,
    PUBLIC_URL,
    SOUTH_ADMIN,
    SqlRig,
    a_sql_rig,
    an_account_of,
)

PAGE_ID, PAGE_TOKEN = "101", "EAAPageTokenOfNorthPrimary0123456789"
IG_USER = "17841400000000001"
X_USER = "1500000000000000001"
ORG = "urn:li:organization:2414183"
CALLBACK = "/publishing/oauth/callback"
OTHER_NORTH_ADMIN = an_identity(("north", "admin"), user_id="deputy.north")


class Clock:
    """A clock the test moves (the sandboxes keep real time)."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture(scope="module")
def graph() -> Iterator[GraphSandbox]:
    box = GraphSandbox()
    box.add_page(PAGE_ID, "North Primary", PAGE_TOKEN, ig_user_id=IG_USER)
    running = box.serve()
    yield box
    running.stop()


@pytest.fixture(scope="module")
def xbox() -> Iterator[XSandbox]:
    box = XSandbox()
    box.add_user(X_USER, "north_primary")
    running = box.serve()
    yield box
    running.stop()


@pytest.fixture(scope="module")
def linkedin() -> Iterator[LinkedInSandbox]:
    box = LinkedInSandbox()
    box.add_organization("2414183", "North Primary")
    running = box.serve()
    yield box
    running.stop()


@pytest.fixture(autouse=True)
def clean(graph: GraphSandbox, xbox: XSandbox, linkedin: LinkedInSandbox) -> None:
    """Served once for the file (stopping a server takes half a second); each test
    starts with no posts, codes, faults or counted requests."""
    for box in (graph, xbox, linkedin):
        httpx.post(f"{box.base_url}/_sandbox/reset", timeout=5)


def env_for(**boxes: Any) -> dict[str, str]:
    env: dict[str, str] = {}
    if "graph" in boxes:
        url = boxes["graph"].base_url
        env |= {
            "FACEBOOK_APP_ID": boxes["graph"].app_id,
            "FACEBOOK_APP_SECRET": boxes["graph"].app_secret,
            "GRAPH_API_BASE": url,
            "FACEBOOK_DIALOG_BASE": url,
        }
    if "xbox" in boxes:
        url = boxes["xbox"].base_url
        env |= {"X_CLIENT_ID": X_CLIENT, "X_API_BASE": url, "X_AUTH_BASE": url}
    if "linkedin" in boxes:
        url = boxes["linkedin"].base_url
        env |= {
            "LINKEDIN_CLIENT_ID": LINKEDIN_CLIENT,
            "LINKEDIN_CLIENT_SECRET": LINKEDIN_SECRET,
            "LINKEDIN_API_BASE": url,
            "LINKEDIN_AUTH_BASE": url,
        }
    return env


def authorise(url: str) -> str:
    """The platform's consent screen (the sandboxes approve at once): the callback
    path and query it sends the browser back to."""
    answer = httpx.get(url, follow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}" == PUBLIC_URL
    assert back.path == CALLBACK
    return f"/oauth/callback?{back.query}"


def connect_with_the_page(rig: SqlRig, account_id: str, who=NORTH_ADMIN) -> Any:
    """Press Connect on the accounts page, approve on the platform, come back."""
    browser = rig.browser(who)
    pressed = browser.post(f"/accounts/{account_id}/connect")
    assert pressed.status_code == 303, pressed.get_data(as_text=True)
    return browser.get(authorise(pressed.headers["Location"]))


def token_requests(box: Any, path: str) -> int:
    with box.state.lock:
        return sum(
            1 for method, p in box.state.requests if (method, p) == ("POST", path)
        )


# -- Facebook ----------------------------------------------------------------------


def test_a_facebook_page_is_connected_with_its_verified_page_token(
    tmp_path, graph, caplog
):
    caplog.set_level(logging.DEBUG)
    rig = a_sql_rig(tmp_path, env=env_for(graph=graph))
    an_account_of(rig, "north-fb", "facebook", external_id=PAGE_ID)

    back = connect_with_the_page(rig, "north-fb")

    assert back.status_code == 303
    assert back.headers["Location"].endswith(
        "/accounts?school=north&done=connected&account=north-fb"
    )
    account = rig.account("north-fb")
    assert (account.status, account.external_id) == ("active", PAGE_ID)
    assert account.token_expires_at is None  # a Page token from a long-lived one
    stored = rig.ports.tokens.get("north-fb")
    assert stored.access_token == PAGE_TOKEN
    assert "pages_manage_posts" in stored.scopes
    raw = rig.raw_token("north-fb")
    assert raw and PAGE_TOKEN not in raw and "EAA" not in raw
    assert rig.announced("north-fb") == ["needs_reconnect", "active"]
    assert any(p == "/v26.0/debug_token" for _, p in graph.state.requests)
    ours = [r for r in caplog.records if r.name != "werkzeug"]  # not the sandbox's
    assert not [r for r in ours if "EAA" in r.getMessage()]
    assert not [r for r in ours if graph.app_secret in r.getMessage()]


def test_the_only_page_is_taken_when_the_account_names_none(tmp_path, graph):
    rig = a_sql_rig(tmp_path, env=env_for(graph=graph))
    an_account_of(rig, "north-fb", "facebook", external_id="")

    connect_with_the_page(rig, "north-fb")

    assert rig.account("north-fb").external_id == PAGE_ID


def test_several_pages_and_none_named_is_refused_listing_them(tmp_path):
    graph = GraphSandbox()
    graph.add_page(PAGE_ID, "North Primary", PAGE_TOKEN)
    graph.add_page("202", "North Primary PTA", "EAAPageTokenOfThePTA0123456789")
    running = graph.serve()
    rig = a_sql_rig(tmp_path, env=env_for(graph=graph))
    an_account_of(rig, "north-fb", "facebook", external_id="")

    try:
        back = connect_with_the_page(rig, "north-fb")
    finally:
        running.stop()

    html = back.get_data(as_text=True)
    assert back.status_code == 409
    assert "North Primary (id 101), North Primary PTA (id 202)" in html
    assert rig.ports.tokens.get("north-fb") is None
    assert rig.account("north-fb").status_reason == "not connected yet"


def test_a_page_the_person_does_not_manage_is_refused(tmp_path, graph):
    rig = a_sql_rig(tmp_path, env=env_for(graph=graph))
    an_account_of(rig, "north-fb", "facebook", external_id="999")

    back = connect_with_the_page(rig, "north-fb")

    assert back.status_code == 409
    assert "does not manage the Facebook Page 999" in back.get_data(as_text=True)
    assert rig.ports.tokens.get("north-fb") is None


# -- Instagram ---------------------------------------------------------------------


def test_instagram_is_connected_through_facebook_login_with_the_pages_token(
    tmp_path, graph
):
    rig = a_sql_rig(tmp_path, env=env_for(graph=graph))
    an_account_of(rig, "north-ig", "instagram", external_id="")

    start = rig.api(NORTH_ADMIN).post("/api/accounts/north-ig/connect")
    back = rig.browser(NORTH_ADMIN).get(authorise(start.get_json()["redirect"]))

    assert back.status_code == 303
    query = parse_qs(urlsplit(start.get_json()["redirect"]).query)
    assert "instagram_manage_contents" in query["scope"][0]
    account = rig.account("north-ig")
    assert (account.status, account.external_id) == ("active", IG_USER)
    assert rig.ports.tokens.get("north-ig").access_token == PAGE_TOKEN


# -- X -----------------------------------------------------------------------------


def test_x_is_connected_with_pkce_and_keeps_a_refresh_token(tmp_path, xbox, caplog):
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    rig = a_sql_rig(tmp_path, env=env_for(xbox=xbox), now=clock)
    an_account_of(rig, "north-x", "x")

    start = rig.api(NORTH_ADMIN).post("/api/accounts/north-x/connect")
    url = start.get_json()["redirect"]
    with rig.engine.connect() as conn:
        kept = conn.execute(adapters.oauth_states.select()).one()
    back = rig.browser(NORTH_ADMIN).get(authorise(url))

    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert "offline.access" in query["scope"][0]
    assert kept.code_verifier.startswith("gAAAAA")  # sealed (Fernet), not the text
    assert query["code_challenge"][0] not in kept.code_verifier
    assert back.status_code == 303
    stored = rig.ports.tokens.get("north-x")
    assert stored.refresh_token and stored.expires_at == clock.at + timedelta(hours=2)
    assert rig.account("north-x").token_expires_at == stored.expires_at
    assert stored.access_token not in rig.raw_token("north-x")
    logged = " ".join(r.getMessage() for r in caplog.records if r.name != "werkzeug")
    assert stored.access_token not in logged and stored.refresh_token not in logged


# -- LinkedIn ----------------------------------------------------------------------


def test_linkedin_is_connected_with_its_refresh_token_when_granted(tmp_path, linkedin):
    rig = a_sql_rig(tmp_path, env=env_for(linkedin=linkedin))
    an_account_of(rig, "north-li", "linkedin", external_id=ORG)

    back = connect_with_the_page(rig, "north-li")

    assert back.status_code == 303
    stored = rig.ports.tokens.get("north-li")
    assert stored.refresh_token
    assert "w_organization_social" in stored.scopes
    left = stored.expires_at - datetime.now(UTC)
    assert timedelta(days=59) < left <= timedelta(days=60)
    assert rig.account("north-li").external_id == ORG


def test_linkedin_without_refresh_tokens_is_connected_without_one(tmp_path):
    box = LinkedInSandbox(refresh_tokens=False)
    running = box.serve()
    try:
        rig = a_sql_rig(tmp_path, env=env_for(linkedin=box))
        an_account_of(rig, "north-li", "linkedin", external_id=ORG)

        connect_with_the_page(rig, "north-li")

        stored = rig.ports.tokens.get("north-li")
        assert stored.access_token and stored.refresh_token is None
    finally:
        running.stop()


# -- the state ---------------------------------------------------------------------


def test_a_state_is_used_once(tmp_path, graph):
    rig = a_sql_rig(tmp_path, env=env_for(graph=graph))
    an_account_of(rig, "north-fb", "facebook", external_id=PAGE_ID)
    browser = rig.browser(NORTH_ADMIN)
    callback = authorise(browser.post("/accounts/north-fb/connect").headers["Location"])

    first = browser.get(callback)
    replayed = browser.get(callback)

    assert first.status_code == 303
    assert replayed.status_code == 409
    assert "already used" in replayed.get_data(as_text=True)


def test_a_state_more_than_ten_minutes_old_is_refused(tmp_path, graph):
    clock = Clock()
    rig = a_sql_rig(tmp_path, env=env_for(graph=graph), now=clock)
    an_account_of(rig, "north-fb", "facebook", external_id=PAGE_ID)
    browser = rig.browser(NORTH_ADMIN)
    callback = authorise(browser.post("/accounts/north-fb/connect").headers["Location"])
    clock.at += timedelta(minutes=11)

    late = browser.get(callback)

    assert late.status_code == 409
    assert "more than 10 minutes old" in late.get_data(as_text=True)
    assert rig.ports.tokens.get("north-fb") is None


def test_another_persons_state_is_refused(tmp_path, graph):
    rig = a_sql_rig(tmp_path, env=env_for(graph=graph))
    an_account_of(rig, "north-fb", "facebook", external_id=PAGE_ID)
    started = rig.browser(NORTH_ADMIN).post("/accounts/north-fb/connect")
    callback = authorise(started.headers["Location"])

    stolen = rig.browser(OTHER_NORTH_ADMIN).get(callback)
    other_school = rig.browser(SOUTH_ADMIN).get(callback)

    assert stolen.status_code == 403
    assert other_school.status_code == 409  # the state is gone: single use
    assert rig.ports.tokens.get("north-fb") is None


def test_declining_on_the_platform_says_so_and_forgets_the_state(tmp_path, graph):
    rig = a_sql_rig(tmp_path, env=env_for(graph=graph))
    an_account_of(rig, "north-fb", "facebook", external_id=PAGE_ID)
    browser = rig.browser(NORTH_ADMIN)
    url = browser.post("/accounts/north-fb/connect").headers["Location"]
    state = parse_qs(urlsplit(url).query)["state"][0]

    declined = browser.get(
        f"/oauth/callback?state={state}&error=access_denied"
        "&error_description=Permissions+error"
    )
    later = browser.get(f"/oauth/callback?state={state}&code=abc")
    not_theirs = rig.browser(OTHER_NORTH_ADMIN).get(
        f"/oauth/callback?state={state}&error=access_denied"
    )

    assert declined.status_code == 400
    assert "Permissions error" in declined.get_data(as_text=True)
    assert later.status_code == 409
    assert not_theirs.status_code == 400
    assert "text/html" in not_theirs.content_type


# -- who and where -----------------------------------------------------------------


def test_connecting_is_refused_on_a_withdrawn_site(tmp_path, graph):
    rig = a_sql_rig(tmp_path, env=env_for(graph=graph))
    an_account_of(rig, "north-fb", "facebook", external_id=PAGE_ID)
    browser = rig.browser(NORTH_ADMIN)
    callback = authorise(browser.post("/accounts/north-fb/connect").headers["Location"])
    sites.withdraw(rig.ports, "facebook", "trust-it", "Under review")

    finished = browser.get(callback)
    started = rig.api(NORTH_ADMIN).post("/api/accounts/north-fb/connect")

    assert finished.status_code == started.status_code == 409
    assert started.get_json()["error"] == "site_not_approved"
    assert rig.ports.tokens.get("north-fb") is None


def test_only_an_admin_of_the_accounts_school_connects_it(tmp_path, graph):
    rig = a_sql_rig(tmp_path, env=env_for(graph=graph))
    an_account_of(rig, "north-fb", "facebook", external_id=PAGE_ID)

    other = rig.api(SOUTH_ADMIN).post("/api/accounts/north-fb/connect")

    assert other.status_code == 403
    with pytest.raises(Exception) as refused:
        connect.start(rig.ports, "north-fb", SOUTH_ADMIN)
    assert getattr(refused.value, "status", None) == 403


def test_a_platform_without_its_app_settings_says_which_are_missing(tmp_path):
    rig = a_sql_rig(tmp_path)
    an_account_of(rig, "north-li", "linkedin", external_id=ORG)

    res = rig.api(NORTH_ADMIN).post("/api/accounts/north-li/connect")

    assert res.status_code == 409
    assert "LINKEDIN_CLIENT_ID, LINKEDIN_CLIENT_SECRET" in res.get_json()["message"]


def test_the_real_platforms_are_the_defaults():
    fb = connect.PlatformConfig.from_env("facebook", {"FACEBOOK_APP_ID": "1"})
    xc = connect.PlatformConfig.from_env("x", {})
    li = connect.PlatformConfig.from_env("linkedin", {"LINKEDIN_API_VERSION": "202611"})

    assert (fb.api_base, fb.auth_base, fb.api_version) == (
        "https://graph.facebook.com",
        "https://www.facebook.com",
        "v26.0",
    )
    assert (xc.authorize_endpoint, xc.token_endpoint) == (
        "https://x.com/i/oauth2/authorize",
        "https://api.x.com/2/oauth2/token",
    )
    assert li.token_endpoint == "https://www.linkedin.com/oauth/v2/accessToken"
    assert li.api_version == "202611"
    assert "secret" not in repr(
        connect.PlatformConfig.from_env("x", {"X_CLIENT_SECRET": "secret"})
    )


# -- refresh -----------------------------------------------------------------------


def an_x_account_expiring(
    rig: SqlRig, box: XSandbox, minutes: float, account_id: str = "north-x"
) -> Credentials:
    an_account_of(rig, account_id, "x")
    access, refresh_token = box.issue_token(X_USER)
    credentials = Credentials(
        access, refresh_token, rig.ports.now() + timedelta(minutes=minutes)
    )
    rig.ports.tokens.put(account_id, credentials)
    return credentials


def test_an_x_token_near_its_end_is_renewed_once_and_the_new_pair_stored(
    tmp_path, xbox
):
    clock = Clock()
    rig = a_sql_rig(tmp_path, env=env_for(xbox=xbox), now=clock)
    old = an_x_account_expiring(rig, xbox, minutes=5)

    first = refresh.refresh_due(rig.ports, clock.at)
    second = refresh.refresh_due(rig.ports, clock.at)

    assert (first.refreshed, second.refreshed) == (["north-x"], [])
    new = rig.ports.tokens.get("north-x")
    assert new.access_token != old.access_token
    assert new.refresh_token not in (None, old.refresh_token)
    assert new.expires_at == clock.at + timedelta(hours=2)
    assert rig.account("north-x").token_expires_at == new.expires_at
    assert token_requests(xbox, "/2/oauth2/token") == 1
    endpoint = f"{xbox.base_url}/2/oauth2/token"
    with pytest.raises(AuthError):
        x.refresh(X_CLIENT, None, old.refresh_token, endpoint=endpoint)
    assert x.refresh(X_CLIENT, None, new.refresh_token, endpoint=endpoint)


def test_a_token_far_from_its_end_is_left_alone(tmp_path, xbox):
    rig = a_sql_rig(tmp_path, env=env_for(xbox=xbox))
    an_x_account_expiring(rig, xbox, minutes=60)

    done = refresh.refresh_due(rig.ports, rig.ports.now())

    assert done.refreshed == [] and token_requests(xbox, "/2/oauth2/token") == 0


def test_two_refreshers_at_once_call_x_once(tmp_path):
    box = XSandbox(latency=(0.4, 0.4))  # the first holds the lock while X answers
    box.add_user(X_USER, "north_primary")
    running = box.serve()
    try:
        rig = a_sql_rig(tmp_path, env=env_for(xbox=box))
        an_x_account_expiring(rig, box, minutes=5)
        other_process = real_ports(rig.settings)  # the same database, its own ports
        start = threading.Barrier(2)
        rounds: list[refresh.Round] = []

        def refresher(ports: Any) -> None:
            start.wait()
            rounds.append(refresh.refresh_due(ports, datetime.now(UTC)))

        threads = [
            threading.Thread(target=refresher, args=(p,))
            for p in (rig.ports, other_process)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)

        assert token_requests(box, "/2/oauth2/token") == 1
        assert sorted(r for done in rounds for r in done.refreshed) == ["north-x"]
        stored = rig.ports.tokens.get("north-x")
        endpoint = f"{box.base_url}/2/oauth2/token"
        assert x.refresh(X_CLIENT, None, stored.refresh_token, endpoint=endpoint)
    finally:
        running.stop()


def test_a_refused_refresh_makes_the_account_need_reconnecting_and_says_why(
    tmp_path, xbox
):
    rig = a_sql_rig(tmp_path, env=env_for(xbox=xbox))
    an_account_of(rig, "north-x", "x")
    rig.ports.tokens.put(
        "north-x",
        Credentials(
            "spent-access", "spent-refresh", rig.ports.now() + timedelta(minutes=3)
        ),
    )

    done = refresh.refresh_due(rig.ports, rig.ports.now())

    account = rig.account("north-x")
    assert done.reconnect == ["north-x"]
    assert account.connection == domain.NEEDS_RECONNECT
    assert account.status_reason.startswith("X (Twitter) refused to renew")
    assert "Reconnect the account" in account.status_reason
    assert "spent-refresh" not in account.status_reason
    assert rig.announced("north-x")[-1] == "needs_reconnect"
    page = rig.browser(NORTH_ADMIN).get("/").get_data(as_text=True)
    assert 'id="reconnect-banner"' in page
    assert refresh.refresh_due(rig.ports, rig.ports.now()).reconnect == []


def test_a_platform_that_does_not_answer_is_tried_again_next_round(tmp_path, xbox):
    rig = a_sql_rig(tmp_path, env=env_for(xbox=xbox))
    old = an_x_account_expiring(rig, xbox, minutes=5)
    xbox.inject("server_error", "POST /2/oauth2/token")

    failed = refresh.refresh_due(rig.ports, rig.ports.now())
    retried = refresh.refresh_due(rig.ports, rig.ports.now())

    assert failed.retry == ["north-x"]
    assert retried.refreshed == ["north-x"]
    assert rig.account("north-x").status == "active"
    assert rig.ports.tokens.get("north-x").refresh_token != old.refresh_token


def test_linkedin_is_renewed_a_week_ahead_and_keeps_its_refresh_token(
    tmp_path, linkedin
):
    rig = a_sql_rig(tmp_path, env=env_for(linkedin=linkedin))
    an_account_of(rig, "north-li", "linkedin", external_id=ORG)
    access, refresh_token = linkedin.issue_token()
    now = rig.ports.now()
    rig.ports.tokens.put(
        "north-li", Credentials(access, refresh_token, now + timedelta(days=5))
    )

    done = refresh.refresh_due(rig.ports, now)

    stored = rig.ports.tokens.get("north-li")
    assert done.refreshed == ["north-li"]
    assert stored.refresh_token == refresh_token
    assert stored.expires_at == now + timedelta(days=60)


def test_linkedin_without_a_refresh_token_warns_a_week_before_it_ends(tmp_path):
    rig = a_sql_rig(tmp_path)
    an_account_of(rig, "north-li", "linkedin", external_id=ORG)
    now = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)
    rig.ports.tokens.put(
        "north-li", Credentials("li-access", None, now + timedelta(days=8))
    )

    early = refresh.refresh_due(rig.ports, now)
    week = refresh.refresh_due(rig.ports, now + timedelta(days=2))

    account = rig.account("north-li")
    assert early.reconnect == [] and week.reconnect == ["north-li"]
    assert account.connection == domain.NEEDS_RECONNECT
    assert "ends on 9 June 2030 at 08:00 UTC" in account.status_reason
    assert "60 days" in account.status_reason


def test_refresh_forever_runs_a_round_until_stopped(tmp_path, xbox):
    rig = a_sql_rig(tmp_path, env=env_for(xbox=xbox))
    an_x_account_expiring(rig, xbox, minutes=5)
    stop = threading.Event()
    loop = threading.Thread(
        target=refresh.refresh_forever, args=(rig.ports, stop, 0.05)
    )

    loop.start()
    deadline = datetime.now(UTC) + timedelta(seconds=5)
    while token_requests(xbox, "/2/oauth2/token") == 0 and datetime.now(UTC) < deadline:
        stop.wait(0.02)
    stop.set()
    loop.join(5)

    assert token_requests(xbox, "/2/oauth2/token") == 1
    assert not loop.is_alive()
