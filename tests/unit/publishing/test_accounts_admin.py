"""The accounts admin page and API: validation per platform, the designated owner,
the footer, a school admin's reach, the approved-site rule, the folder that is always
built on the server, the reconnect banner. Real SQL adapters on a tmp SQLite.

``a_sql_rig`` (and its helpers) is shared by the other publishing page tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from services.publishing import adapters, admin, bootstrap, domain, sites
from services.publishing.app import create_app
from services.publishing.platforms.base import Credentials
from services.publishing.vault import generate_key
from shared import auth, contracts
from shared.config import Settings
from shared.errors import ConflictError, ForbiddenError, InvalidInputError
from tests.unit.publishing.builders import SECRET, an_identity, bearer

PUBLIC_URL = "http://safepost.test"
ANSWERS = {key: f"IT answer about {key}" for key, _ in sites.CHECKLIST}
NORTH_ADMIN = an_identity(("north", "admin"), user_id="admin.north")
SOUTH_ADMIN = an_identity(("south", "admin"), user_id="admin.south")
NORTH_TEACHER = an_identity(("north", "teacher"), user_id="teacher.north")
SOUTH_TEACHER = an_identity(("south", "teacher"), user_id="teacher.south")
TRUST_IT = an_identity(("*", "it_auditor"), user_id="trust-it")


@dataclass
class SqlRig:
    ports: bootstrap.Ports
    settings: Settings
    app: Flask

    @property
    def engine(self) -> sa.Engine:
        return self.ports.accounts.bind  # type: ignore[attr-defined, no-any-return]

    def account(self, account_id: str) -> domain.Account:
        found = self.ports.accounts.get(account_id)
        assert found is not None
        return found

    def raw_token(self, account_id: str) -> str | None:
        query = sa.select(adapters.accounts.c.token).where(
            adapters.accounts.c.account_id == account_id
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def announced(self, account_id: str) -> list[str]:
        """The statuses ``account.changed`` announced for the account, in order (what
        publishing's outbox holds, sent or not)."""
        return [
            e.data["status"]
            for e in emitted(self.engine)
            if e.type == "account.changed" and e.data["account_id"] == account_id
        ]

    def browser(self, identity: auth.Identity) -> Browser:
        client = self.app.test_client()
        client.set_cookie(auth.COOKIE, auth.issue_token(SECRET, identity))
        return Browser(client, auth.csrf_token(SECRET, identity))

    def api(self, identity: auth.Identity) -> Api:
        return Api(self.app.test_client(), bearer(identity))


@dataclass
class Browser:
    """A signed-in person's browser: a session cookie and the page's CSRF token."""

    client: FlaskClient
    csrf: str

    def get(self, path: str) -> Any:
        return self.client.get(path, headers={"Accept": "text/html"})

    def post(self, path: str, form: Mapping[str, str] | None = None) -> Any:
        data = {"csrf_token": self.csrf, **(form or {})}
        return self.client.post(path, data=data)


@dataclass
class Api:
    client: FlaskClient
    headers: dict[str, str]

    def get(self, path: str) -> Any:
        return self.client.get(path, headers=self.headers)

    def post(self, path: str, body: Any = None) -> Any:
        return self.client.post(path, json=body or {}, headers=self.headers)

    def patch(self, path: str, body: Any) -> Any:
        return self.client.patch(path, json=body, headers=self.headers)


def emitted(engine: sa.Engine) -> list[contracts.Envelope]:
    """Every envelope in publishing's outbox, sent or not, oldest first."""
    table = adapters.outbox
    query = sa.select(table.c.body).order_by(table.c.created_at, table.c.envelope_id)
    with engine.connect() as conn:
        bodies = conn.execute(query).scalars().all()
    return [contracts.Envelope.model_validate_json(b) for b in bodies]


def a_sql_rig(
    tmp_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    approve: tuple[str, ...] = domain.KINDS,
    now: Any = None,
) -> SqlRig:
    """Publishing's real ports (SQLite, encrypted tokens) and its app; the
    ``approve`` platforms approved in the register."""
    settings = Settings(
        service="publishing",
        data_dir=tmp_path,
        amqp_url="memory://",
        database_url=f"sqlite:///{tmp_path / 'publishing.sqlite3'}",
        secret_key=SECRET,
        publish_root=tmp_path / "published",
        token_keys=generate_key(),
        public_url=PUBLIC_URL,
        platform_env=dict(env or {}),
    )
    ports = bootstrap.real_ports(settings)
    if now is not None:
        ports = replace(ports, now=now)
    for platform in approve:
        sites.approve(ports, platform, ANSWERS, by="trust-it")
    return SqlRig(ports, settings, create_app(ports, settings))


def an_account_of(
    rig: SqlRig,
    account_id: str = "newsroom",
    kind: str = "folder",
    school: str = "north",
    **fields: Any,
) -> domain.Account:
    fields.setdefault("owner", f"admin.{school}")
    fields.setdefault("external_id", _EXTERNAL[kind])
    admin.add_account(
        rig.ports, school, account_id, kind, fields.pop("name", account_id), **fields
    )
    return rig.account(account_id)


_EXTERNAL = {
    "facebook": "101",
    "instagram": "17841400000000001",
    "x": "1500000000000000001",
    "linkedin": "urn:li:organization:2414183",
    "webhook": "https://www.north.sch.uk/safepost",
    "folder": "",
}


@pytest.fixture
def rig(tmp_path: Path) -> SqlRig:
    return a_sql_rig(tmp_path)


# -- the folder attack -------------------------------------------------------------


def test_an_oakfield_admin_cannot_point_a_folder_account_at_riversides_folder(
    tmp_path,
):
    # The probe: a folder account of Oakfield whose path was Riverside's folder,
    # inside the publishing root (so the old check let it through).
    rig = a_sql_rig(tmp_path)
    riverside = rig.settings.publish_root / "riverside" / "riverside-newsroom"
    body = {
        "school": "oakfield",
        "account_id": "oakfield-drop",
        "kind": "folder",
        "owner": "admin.oakfield",
        "config": {"path": str(riverside)},
    }
    oakfield = an_identity(("oakfield", "admin"), user_id="admin.oakfield")

    created = rig.api(oakfield).post("/api/accounts", body)
    changed = rig.api(oakfield).patch(
        "/api/accounts/oakfield-drop", {"config": {"path": str(riverside)}}
    )

    assert created.status_code == 400
    assert created.get_json()["error"] == "bad_path"
    assert rig.ports.accounts.get("oakfield-drop") is None
    assert changed.status_code == 404
    assert not riverside.exists()


def test_a_folder_account_is_always_built_from_its_school_and_account(rig):
    folder = an_account_of(rig, "oak-drop", "folder", school="oakfield")

    with pytest.raises(InvalidInputError) as moved:
        admin.update_account(
            rig.ports, "oak-drop", {"config": {"path": "/srv/published/riverside/x"}}
        )
    with pytest.raises(InvalidInputError):
        admin.update_account(rig.ports, "oak-drop", {"external_id": "riverside/x"})

    assert folder.external_id == "oakfield/oak-drop"
    assert "path" not in folder.config
    assert moved.value.code == "bad_path"


def test_a_path_naming_exactly_the_built_folder_is_accepted_and_not_kept(rig):
    built = rig.settings.publish_root / "north" / "web"

    added = admin.add_account(
        rig.ports,
        "north",
        "web",
        "folder",
        "Website",
        {"path": str(built)},
        owner="admin.north",
    )

    assert added
    assert rig.account("web").config == {}


# -- validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "external_id"),
    [
        ("facebook", "101"),
        ("facebook", ""),
        ("instagram", "17841400000000001"),
        ("x", "1500000000000000001"),
        ("linkedin", "urn:li:organization:2414183"),
        ("webhook", "https://www.north.sch.uk/safepost"),
        ("webhook", "http://127.0.0.1:8025/hook"),
        ("webhook", "http://localhost/hook"),
        ("folder", ""),
    ],
)
def test_each_platform_takes_its_own_kind_of_id(rig, kind, external_id):
    added = admin.add_account(
        rig.ports, "north", "acc", kind, "Acc", external_id=external_id, owner="o.n"
    )

    assert added
    assert rig.account("acc").kind == kind


@pytest.mark.parametrize(
    ("kind", "external_id"),
    [
        ("facebook", "oakfieldprimary"),
        ("instagram", "@oakfield"),
        ("x", "@oakfield"),
        ("x", ""),
        ("linkedin", "urn:li:person:123"),
        ("linkedin", "2414183"),
        ("webhook", ""),
        ("webhook", "http://www.north.sch.uk/hook"),
        ("webhook", "ftp://www.north.sch.uk/hook"),
        ("webhook", "https://user:pw@www.north.sch.uk/hook"),
        ("webhook", "https://169.254.169.254/latest/meta-data"),
        ("webhook", "https://www.north.sch.uk/hook#x"),
        ("folder", "riverside/riverside-newsroom"),
    ],
)
def test_an_id_that_is_not_the_platforms_kind_is_refused(rig, kind, external_id):
    with pytest.raises(InvalidInputError) as refused:
        admin.add_account(
            rig.ports, "north", "acc", kind, "Acc", external_id=external_id, owner="o"
        )

    assert refused.value.code == "bad_external_id"
    assert rig.ports.accounts.get("acc") is None


def test_an_account_needs_a_designated_owner_and_a_short_enough_footer(rig):
    with pytest.raises(InvalidInputError) as no_owner:
        admin.add_account(rig.ports, "north", "acc", "folder", "Acc")
    with pytest.raises(InvalidInputError) as bad_owner:
        admin.add_account(rig.ports, "north", "acc", "folder", "Acc", owner="a b")
    with pytest.raises(InvalidInputError) as long_footer:
        admin.add_account(
            rig.ports, "north", "acc", "folder", "Acc", owner="o", footer="x" * 501
        )
    ok = admin.add_account(
        rig.ports, "north", "acc", "folder", "Acc", owner="o", footer="x" * 500
    )

    assert no_owner.value.code == "owner_required"
    assert bad_owner.value.code == "bad_owner"
    assert long_footer.value.code == "footer_too_long"
    assert ok and rig.account("acc").footer == "x" * 500


def test_an_account_can_only_be_added_on_an_approved_site(tmp_path):
    rig = a_sql_rig(tmp_path, approve=("folder",))

    with pytest.raises(ConflictError) as refused:
        an_account_of(rig, "north-fb", "facebook")

    assert refused.value.code == "site_not_approved"
    assert rig.ports.accounts.get("north-fb") is None


def test_an_account_that_needs_a_token_starts_not_connected(rig):
    social = an_account_of(rig, "north-x", "x")
    folder = an_account_of(rig, "north-drop", "folder")

    assert admin.status_in_words(social) == "Not connected yet"
    assert social.connection == domain.NEEDS_RECONNECT
    assert admin.status_in_words(folder) == "Active"
    assert rig.announced("north-x") == ["needs_reconnect"]


def test_a_school_admin_only_touches_their_schools_accounts(rig):
    an_account_of(rig, "south-fb", "facebook", school="south")

    with pytest.raises(ForbiddenError):
        admin.update_account(
            rig.ports, "south-fb", {"footer": "hijacked"}, by=NORTH_ADMIN
        )
    with pytest.raises(ForbiddenError):
        admin.add_account(
            rig.ports, "south", "s2", "folder", "S", owner="o", by=NORTH_ADMIN
        )
    patched = rig.api(NORTH_ADMIN).patch("/api/accounts/south-fb", {"footer": "x"})
    edited = rig.browser(NORTH_ADMIN).post("/accounts/south-fb", {"footer": "x"})
    page = rig.browser(NORTH_ADMIN).get("/accounts?school=south")

    assert (patched.status_code, edited.status_code, page.status_code) == (
        403,
        403,
        403,
    )
    assert rig.account("south-fb").footer == ""


def test_an_update_is_stored_and_announced_and_a_new_platform_id_means_reconnect(rig):
    an_account_of(rig, "north-fb", "facebook")
    rig.ports.tokens.put("north-fb", Credentials("page-token"))

    res = rig.api(NORTH_ADMIN).patch(
        "/api/accounts/north-fb", {"footer": "Registered office: Rugby", "owner": "h.n"}
    )
    moved = rig.api(NORTH_ADMIN).patch("/api/accounts/north-fb", {"external_id": "202"})
    not_mine = rig.api(NORTH_ADMIN).patch("/api/accounts/north-fb", {"kind": "x"})

    assert res.status_code == 200
    assert res.get_json()["account"]["footer"] == "Registered office: Rugby"
    assert rig.account("north-fb").owner == "h.n"
    assert moved.get_json()["account"]["status"] == "needs_reconnect"
    assert "connect it again" in rig.account("north-fb").status_reason
    assert not_mine.status_code == 400
    assert rig.announced("north-fb") == [
        "needs_reconnect",  # added, not connected yet
        "active",  # the footer and owner (tokens.put had made it active)
        "needs_reconnect",  # another Page: the token is for the old one
    ]


# -- the page ----------------------------------------------------------------------


def test_the_accounts_page_shows_status_owner_footer_and_expiry_in_words(tmp_path):
    now = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
    rig = a_sql_rig(tmp_path, now=lambda: now)
    an_account_of(rig, "north-li", "linkedin", footer="Registered in England 0902")
    an_account_of(rig, "north-x", "x")
    an_account_of(rig, "north-fb", "facebook", enabled=False)
    rig.ports.tokens.put(
        "north-li", Credentials("li", expires_at=now + timedelta(days=3))
    )

    page = rig.browser(NORTH_ADMIN).get("/accounts?school=north")
    html = page.get_data(as_text=True)

    assert page.status_code == 200
    assert "expires in 3 days" in html
    assert "Registered in England 0902" in html
    assert "admin.north" in html
    assert "Not connected yet" in html and "Disabled" in html and "Active" in html
    assert ">Reconnect<" in html and ">Connect<" in html
    main = html.split("<main>")[1].split("</main>")[0]
    assert 'name="csrf_token"' in main and "<script" not in main


def test_the_accounts_page_is_for_the_schools_admins_only(rig):
    as_teacher = rig.browser(NORTH_TEACHER).get("/accounts?school=north")
    as_other_admin = rig.browser(SOUTH_ADMIN).get("/accounts?school=north")
    choose = rig.browser(NORTH_ADMIN).get("/accounts")

    assert (as_teacher.status_code, as_other_admin.status_code) == (403, 403)
    assert choose.status_code == 303
    assert choose.headers["Location"].endswith("/accounts?school=north")


def test_an_admin_adds_and_edits_an_account_with_the_pages_forms(rig):
    browser = rig.browser(NORTH_ADMIN)
    form = {
        "school": "north",
        "kind": "webhook",
        "account_id": "north-site",
        "name": "School website",
        "external_id": "https://www.north.sch.uk/safepost",
        "owner": "head.north",
        "footer": "Learning Today, Leading Tomorrow Trust",
        "purpose": "website",
        "enabled": "on",
    }

    added = browser.post("/accounts", form)
    edited = browser.post(
        "/accounts/north-site",
        {"name": "Website", "owner": "head.north", "external_id": form["external_id"]},
    )
    page = browser.get(edited.headers["Location"].removeprefix("http://localhost"))

    assert added.status_code == 303
    assert edited.status_code == 303
    account = rig.account("north-site")
    assert (account.owner, account.config, account.enabled) == ("head.north", {}, False)
    assert account.name == "Website"
    assert "Account north-site saved." in page.get_data(as_text=True)


def test_a_form_without_the_csrf_token_is_refused(rig):
    client = rig.browser(NORTH_ADMIN).client

    res = client.post(
        "/accounts",
        data={"school": "north", "kind": "folder", "account_id": "a", "owner": "o"},
    )

    assert res.status_code == 403
    assert rig.ports.accounts.get("a") is None


def test_a_refused_form_shows_the_problem_on_the_page(rig):
    res = rig.browser(NORTH_ADMIN).post(
        "/accounts",
        {"school": "north", "kind": "x", "account_id": "north-x", "owner": "o.n"},
    )

    assert res.status_code == 400
    assert "X (Twitter) needs the X account" in res.get_data(as_text=True)
    assert 'value="north-x"' in res.get_data(as_text=True)


def test_a_webhook_gets_a_shared_secret_shown_once_and_stored_encrypted(rig):
    an_account_of(rig, "north-site", "webhook")

    res = rig.api(NORTH_ADMIN).post("/api/accounts/north-site/secret")
    secret = res.get_json()["secret"]

    assert res.headers["Cache-Control"] == "no-store"
    assert rig.ports.tokens.get("north-site").access_token == secret
    assert secret not in (rig.raw_token("north-site") or "")
    assert rig.account("north-site").status == "active"


# -- the banner --------------------------------------------------------------------


def test_every_publishing_page_shows_the_banner_to_the_schools_people(rig):
    an_account_of(rig, "north-x", "x")
    rig.ports.accounts.update(
        replace(rig.account("north-x"), status_reason="X refused the token")
    )

    pages = [
        rig.browser(NORTH_ADMIN).get("/accounts?school=north"),
        rig.browser(NORTH_ADMIN).get("/sites"),
        rig.browser(NORTH_TEACHER).get("/"),
    ]
    elsewhere = rig.browser(SOUTH_TEACHER).get("/")

    for page in pages:
        html = page.get_data(as_text=True)
        assert 'id="reconnect-banner"' in html
        assert "Needs reconnecting: X refused the token" in html
    assert 'id="reconnect-banner"' not in elsewhere.get_data(as_text=True)


# -- every new route needs its role ------------------------------------------------

ADMIN_ROUTES = [
    ("GET", "/accounts?school=north"),
    ("POST", "/accounts"),
    ("POST", "/accounts/north-x"),
    ("POST", "/accounts/north-x/connect"),
    ("POST", "/accounts/north-x/secret"),
    ("GET", "/oauth/callback?state=s&code=c"),
    ("PATCH", "/api/accounts/north-x"),
    ("POST", "/api/accounts/north-x/connect"),
    ("POST", "/api/accounts/north-x/secret"),
]
KEEPER_ROUTES = [
    ("POST", "/sites/x/approve"),
    ("POST", "/sites/x/withdraw"),
    ("POST", "/api/sites/x/approve"),
    ("POST", "/api/sites/x/withdraw"),
]


@pytest.mark.parametrize(
    ("method", "path"),
    [*ADMIN_ROUTES, *KEEPER_ROUTES, ("GET", "/sites"), ("GET", "/api/sites")],
)
def test_every_new_route_needs_a_signed_in_caller_with_the_role(rig, method, path):
    an_account_of(rig, "north-x", "x")
    client = rig.app.test_client()
    json = {"Accept": "application/json"}

    anonymous = client.open(path, method=method, json={}, headers=json)
    teacher = client.open(
        path, method=method, json={}, headers={**json, **bearer(NORTH_TEACHER)}
    )

    assert anonymous.status_code == 401
    assert teacher.status_code == 403


@pytest.mark.parametrize(
    ("method", "path"), [r for r in ADMIN_ROUTES[1:] if "callback" not in r[1]]
)
def test_another_schools_admin_is_refused_on_every_account_route(rig, method, path):
    an_account_of(rig, "north-x", "x")
    body = {"school": "north", "account_id": "x2", "kind": "folder", "owner": "o"}

    res = rig.app.test_client().open(
        path, method=method, json=body, headers=bearer(SOUTH_ADMIN)
    )

    assert res.status_code == 403


@pytest.mark.parametrize(("method", "path"), KEEPER_ROUTES)
def test_a_school_admin_cannot_change_the_register(rig, method, path):
    res = rig.app.test_client().open(
        path, method=method, json={"note": "n"}, headers=bearer(NORTH_ADMIN)
    )

    assert res.status_code == 403
    assert sites.is_approved(rig.ports, "x")
