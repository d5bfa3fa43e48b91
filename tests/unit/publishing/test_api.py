"""Publishing's HTTP side: accounts per school, deliveries, the page."""

from __future__ import annotations

import pytest

from shared import auth
from tests.unit.publishing.builders import (
    SECRET,
    a_rig,
    an_account,
    an_identity,
    approved,
    bearer,
)
from tests.unit.publishing.test_accounts_admin import a_sql_rig

NORTH_TEACHER = an_identity(("north", "teacher"))
NORTH_ADMIN = an_identity(("north", "admin"), user_id="u-admin")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/api/accounts?school=north"),
        ("POST", "/api/accounts"),
        ("GET", "/api/deliveries"),
    ],
)
def test_every_route_needs_a_signed_in_caller(tmp_path, method, path):
    rig = a_rig(tmp_path)

    res = rig.app.test_client().open(path, method=method, json={})

    assert res.status_code == 401


def test_a_teacher_lists_the_enabled_state_of_their_schools_accounts_without_config(
    tmp_path,
):
    rig = a_rig(
        tmp_path,
        an_account("newsroom", config={"path": "/x"}),
        an_account("southern", school="south"),
    )

    res = rig.app.test_client().get(
        "/api/accounts?school=north", headers=bearer(NORTH_TEACHER)
    )

    assert res.status_code == 200
    assert res.get_json()["accounts"] == [
        {
            "account_id": "newsroom",
            "school": "north",
            "kind": "folder",
            "name": "newsroom folder",
            "enabled": True,
        }
    ]


def test_a_teacher_of_school_a_cannot_list_school_bs_accounts(tmp_path):
    rig = a_rig(tmp_path, an_account("southern", school="south"))

    res = rig.app.test_client().get(
        "/api/accounts?school=south", headers=bearer(NORTH_TEACHER)
    )
    missing = rig.app.test_client().get("/api/accounts", headers=bearer(NORTH_TEACHER))

    assert res.status_code == 403
    assert missing.status_code == 400


def test_an_admin_of_the_school_adds_an_account_once(tmp_path):
    rig = a_sql_rig(tmp_path)
    body = {"school": "north", "account_id": "web", "name": "Website", "owner": "o"}

    first = rig.app.test_client().post(
        "/api/accounts", json=body, headers=bearer(NORTH_ADMIN)
    )
    second = rig.app.test_client().post(
        "/api/accounts", json=body, headers=bearer(NORTH_ADMIN)
    )

    assert (first.status_code, second.status_code) == (201, 200)
    assert rig.ports.accounts.get("web").school_id == "north"


def test_only_an_admin_of_that_school_may_add_an_account(tmp_path):
    rig = a_sql_rig(tmp_path)
    body = {"school": "south", "account_id": "web", "owner": "o"}

    as_teacher = rig.app.test_client().post(
        "/api/accounts", json=body, headers=bearer(NORTH_TEACHER)
    )
    as_other_admin = rig.app.test_client().post(
        "/api/accounts", json=body, headers=bearer(NORTH_ADMIN)
    )

    assert (as_teacher.status_code, as_other_admin.status_code) == (403, 403)
    assert rig.ports.accounts.get("web") is None


def test_an_account_folder_outside_the_publishing_root_is_refused(tmp_path):
    rig = a_sql_rig(tmp_path)
    body = {
        "school": "north",
        "account_id": "web",
        "owner": "o",
        "config": {"path": "/etc/cron.d"},
    }

    res = rig.app.test_client().post(
        "/api/accounts", json=body, headers=bearer(NORTH_ADMIN)
    )

    assert res.status_code == 400
    assert res.get_json()["error"] == "bad_path"
    assert rig.ports.accounts.get("web") is None


def test_an_account_of_an_unsupported_kind_is_refused(tmp_path):
    rig = a_sql_rig(tmp_path)
    body = {"school": "north", "account_id": "fb", "kind": "myspace", "owner": "o"}

    res = rig.app.test_client().post(
        "/api/accounts", json=body, headers=bearer(NORTH_ADMIN)
    )

    assert res.status_code == 400
    assert res.get_json()["error"] == "unsupported_kind"


def test_a_cookie_session_needs_the_csrf_token_to_add_an_account(tmp_path):
    rig = a_sql_rig(tmp_path)
    client = rig.app.test_client()
    client.set_cookie(auth.COOKIE, auth.issue_token(SECRET, NORTH_ADMIN))
    body = {"school": "north", "account_id": "web", "owner": "o"}

    without = client.post("/api/accounts", json=body)
    with_token = client.post(
        "/api/accounts",
        json=body,
        headers={"X-CSRF-Token": auth.csrf_token(SECRET, NORTH_ADMIN)},
    )

    assert without.status_code == 403
    assert with_token.status_code == 201


def test_deliveries_are_listed_for_the_callers_schools_only(tmp_path):
    rig = a_rig(
        tmp_path, an_account("newsroom"), an_account("southern", school="south")
    )
    rig.publish(approved(rig, "p1"))
    rig.publish(approved(rig, "p2", accounts=("southern",), school="south"))
    client = rig.app.test_client()

    mine = client.get("/api/deliveries", headers=bearer(NORTH_TEACHER)).get_json()
    one = client.get(
        "/api/deliveries?post=p2", headers=bearer(NORTH_TEACHER)
    ).get_json()
    page = client.get("/", headers=bearer(NORTH_TEACHER)).get_data(as_text=True)

    assert [(d["post_id"], d["status"]) for d in mine["deliveries"]] == [("p1", "live")]
    assert one["deliveries"] == []
    assert "newsroom" in page and "southern" not in page
