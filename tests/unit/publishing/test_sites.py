"""The trust's register of approved sites: the due-diligence checklist, who may change
it, withdrawal that disables nothing silently, the page and the API."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.publishing import admin, domain, sites
from shared.errors import ConflictError, InvalidInputError
from tests.unit.publishing.builders import an_identity, bearer
from tests.unit.publishing.test_accounts_admin import (
    ANSWERS,
    NORTH_ADMIN,
    TRUST_IT,
    a_sql_rig,
    an_account_of,
)

AT = datetime(2030, 5, 4, 10, 30, tzinfo=UTC)
TRUST_ADMIN = an_identity(("*", "admin"), user_id="trust-admin")
NORTH_IT = an_identity(("north", "it_auditor"), user_id="it.north")


@pytest.fixture
def rig(tmp_path):
    return a_sql_rig(tmp_path, approve=("folder",), now=lambda: AT)


def test_the_checklist_asks_what_the_policy_needs_to_know():
    keys = {key for key, _ in sites.CHECKLIST}

    assert {
        "audience",
        "data_location",
        "removal",
        "minimum_age",
        "reporting_abuse",
    } <= keys
    assert all(question.endswith("?") for _, question in sites.CHECKLIST)


def test_a_site_is_approved_only_with_every_question_answered(rig):
    partial = {k: v for k, v in ANSWERS.items() if k != "minimum_age"}
    blank = {**ANSWERS, "removal": "   "}

    with pytest.raises(InvalidInputError) as missing:
        sites.approve(rig.ports, "x", partial, by="trust-it")
    with pytest.raises(InvalidInputError) as empty:
        sites.approve(rig.ports, "x", blank, by="trust-it")
    with pytest.raises(InvalidInputError) as unknown:
        sites.approve(rig.ports, "x", {**ANSWERS, "vibes": "good"}, by="trust-it")
    with pytest.raises(InvalidInputError):
        sites.approve(rig.ports, "myspace", ANSWERS, by="trust-it")
    site = sites.approve(rig.ports, "x", ANSWERS, by="trust-it")

    assert missing.value.code == empty.value.code == "checklist_incomplete"
    assert "minimum age" in missing.value.message
    assert unknown.value.code == "unknown_question"
    assert (site.approved, site.approved_by, site.approved_at) == (True, "trust-it", AT)
    assert rig.ports.sites.get("x").answers == ANSWERS
    assert sites.is_approved(rig.ports, "x")


def test_a_platform_the_register_does_not_list_is_not_approved(rig):
    assert not sites.is_approved(rig.ports, "linkedin")
    assert sites.is_approved(rig.ports, "folder")


def test_withdrawing_a_site_keeps_its_accounts_and_says_who_and_why(rig):
    sites.approve(rig.ports, "facebook", ANSWERS, by="trust-it")
    account = an_account_of(rig, "north-fb", "facebook")

    with pytest.raises(InvalidInputError):
        sites.withdraw(rig.ports, "facebook", "trust-it", "  ")
    site = sites.withdraw(rig.ports, "facebook", "trust-it", "Terms changed")
    with pytest.raises(ConflictError):
        sites.withdraw(rig.ports, "facebook", "trust-it", "again")
    with pytest.raises(ConflictError) as new_account:
        an_account_of(rig, "north-fb2", "facebook")

    assert not sites.is_approved(rig.ports, "facebook")
    assert (site.withdrawn_by, site.withdrawn_at, site.note) == (
        "trust-it",
        AT,
        "Terms changed",
    )
    assert site.approved_by == "trust-it" and site.answers == ANSWERS
    assert rig.ports.accounts.get("north-fb") == account  # kept, untouched
    assert new_account.value.code == "site_not_approved"
    page = rig.browser(NORTH_ADMIN).get("/accounts?school=north").get_data(True)
    assert "Facebook is not an approved site: its posts wait." in page


@pytest.mark.parametrize("keeper", [TRUST_IT, TRUST_ADMIN])
def test_trust_it_or_a_trust_wide_admin_keeps_the_register(rig, keeper):
    api = rig.api(keeper)

    approved = api.post("/api/sites/linkedin/approve", {"answers": ANSWERS})
    withdrawn = api.post("/api/sites/linkedin/withdraw", {"note": "Under review"})

    assert approved.status_code == 200
    assert approved.get_json()["site"]["approved_by"] == keeper.username
    assert withdrawn.get_json()["site"]["approved"] is False
    assert withdrawn.get_json()["site"]["withdrawn_by"] == keeper.username


@pytest.mark.parametrize("reader", [NORTH_ADMIN, NORTH_IT])
def test_school_admins_and_it_read_the_register_but_cannot_change_it(rig, reader):
    listed = rig.api(reader).get("/api/sites").get_json()
    page = rig.browser(reader).get("/sites").get_data(as_text=True)
    refused = rig.api(reader).post("/api/sites/x/approve", {"answers": ANSWERS})

    assert [s["platform"] for s in listed["sites"]] == list(domain.KINDS)
    assert listed["may_change"] is False
    assert len(listed["checklist"]) == len(sites.CHECKLIST)
    assert "Shared folder" in page and "approved" in page
    assert "<form" not in page.split("<main>")[1]
    assert refused.status_code == 403
    assert not sites.is_approved(rig.ports, "x")


def test_an_incomplete_approval_over_the_api_names_what_is_missing(rig):
    res = rig.api(TRUST_IT).post(
        "/api/sites/x/approve", {"answers": {"audience": "Anyone"}}
    )

    assert res.status_code == 400
    assert res.get_json()["error"] == "checklist_incomplete"


def test_it_approves_and_withdraws_with_the_pages_forms(rig):
    browser = rig.browser(TRUST_IT)

    approved = browser.post("/sites/instagram/approve", ANSWERS)
    page = browser.get("/sites?done=approved&platform=instagram")
    withdrawn = browser.post("/sites/instagram/withdraw", {"note": "Age limits"})
    after = browser.get("/sites").get_data(as_text=True)

    assert approved.status_code == withdrawn.status_code == 303
    html = page.get_data(as_text=True)
    assert "Instagram is approved." in html
    assert "Approved by trust-it on 2030-05-04 10:30 UTC." in html
    assert ANSWERS["removal"] in html
    assert "Withdrawn by trust-it on 2030-05-04 10:30 UTC: Age limits" in after


def test_an_incomplete_form_keeps_what_was_typed(rig):
    form = {**ANSWERS, "audience": ""}

    res = rig.browser(TRUST_IT).post("/sites/x/approve", form)

    html = res.get_data(as_text=True)
    assert res.status_code == 400
    assert "every question of the due-diligence checklist must be answered" in html
    assert ANSWERS["data_location"] in html
    assert not sites.is_approved(rig.ports, "x")


def test_an_account_on_a_site_approved_again_can_be_added(rig):
    with pytest.raises(ConflictError):
        an_account_of(rig, "north-li", "linkedin")

    sites.approve(rig.ports, "linkedin", ANSWERS, by="trust-it")

    assert admin.status_in_words(an_account_of(rig, "north-li", "linkedin")) == (
        "Not connected yet"
    )


def test_the_api_of_the_register_needs_its_roles(rig):
    teacher = an_identity(("north", "teacher"))

    res = rig.app.test_client().get("/api/sites", headers=bearer(teacher))

    assert res.status_code == 403
