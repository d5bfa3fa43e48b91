"""Consent-aware redaction end to end on the embedded system, on a real photo: an
enrolled pupil with consent is shown, the person beside them is masked. Plus the
consent grid and pupil page driven in a real browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safepost import embedded
from tests.e2e.journey import SCHOOL, Staff, enrol_device, wait_for

CSV = (
    "pupil_id,forename,surname,class,social_media_consent,biometric_consent\n"
    "OB1,Barack,Obama,5B,yes,yes\n"
    "BI1,Joe,Biden,5B,no,yes\n"
)


def test_an_enrolled_consented_person_is_shown_and_the_person_beside_masked(
    running: tuple[str, dict[str, str], Any], faces_dir: Path, browser: Any
) -> None:
    base, passwords, system = running
    urls = {"portal": base, **{s: f"{base}/{s}" for s in embedded.SERVICES}}
    admin = Staff(urls, "admin.oakfield", passwords["admin.oakfield"]).sign_in()
    teacher = Staff(urls, "teacher.oakfield", passwords["teacher.oakfield"]).sign_in()
    approver = Staff(
        urls, "approver.oakfield", passwords["approver.oakfield"]
    ).sign_in()
    trust_it = Staff(urls, "trust-it", passwords["trust-it"]).sign_in()
    identity = faces_dir.parent / "faces" / "identity"
    imported = admin.call(
        "POST", "consent", f"/api/schools/{SCHOOL}/import", data=CSV.encode()
    )
    for pupil, photo in (("OB1", "obama.jpg"), ("BI1", "biden.jpg")):
        enrolled = admin.call(
            "POST",
            "consent",
            f"/api/schools/{SCHOOL}/pupils/{pupil}/enrolment",
            files=[("photo", (photo, (identity / photo).read_bytes(), "image/jpeg"))],
        )
        assert enrolled.status_code == 201, enrolled.text
    teacher.device_token = enrol_device(trust_it, teacher, "teacher.oakfield")

    upload = teacher.call(
        "POST",
        "intake",
        "/api/posts",
        data={"caption": "Visit", "school": SCHOOL, "accounts": "oakfield-newsroom"},
        files=[("photos", ("two.jpg", (identity / "two_people.jpg").read_bytes()))],
    )

    assert imported.status_code == 200, imported.text
    assert upload.status_code == 201, upload.text
    post_id = upload.json()["post_id"]

    def awaiting() -> Any:
        got = approver.call("GET", "approval", f"/api/posts/{post_id}")
        ok = got.ok and got.json().get("status") == "awaiting_approval"
        return got.json() if ok else None

    post = wait_for(awaiting, "the post to await approval")
    faces = sorted(post["photos"][0]["faces"], key=lambda f: f["box"][0])
    assert [(f["masked"], f.get("pupil_id"), f.get("reason")) for f in faces] == [
        (False, "OB1", None),
        (True, None, "no_consent"),
    ]

    page = browser.new_context().new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "approver.oakfield")
    page.fill("input[name=password]", passwords["approver.oakfield"])
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    page.goto(f"{base}/approval/posts/{post_id}")
    shown = page.locator(".pupil-label[data-pupil=OB1]")
    shown.filter(has_text="B.O. (5B)").wait_for(timeout=10_000)
    assert "Obama" not in page.content() and "Biden" not in page.content()
    page.context.close()


def test_an_admin_reads_the_grid_and_records_consent_in_the_browser(
    running: tuple[str, dict[str, str], Any], browser: Any
) -> None:
    base, passwords, system = running
    from services.consent import admin

    admin.seed_demo_pupils(system.ports["consent"], SCHOOL)
    page = browser.new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "admin.oakfield")
    page.fill("input[name=password]", passwords["admin.oakfield"])
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)

    page.goto(f"{base}/consent/schools/{SCHOOL}/grid?class=5B")
    grid = {
        row.get_attribute("data-pupil"): row.locator(
            "td[data-platform='*']"
        ).inner_text()
        for row in page.locator("#grid tbody tr").all()
    }
    page.goto(f"{base}/consent/schools/{SCHOOL}/pupils/DEMO002")
    page.select_option("#status", "granted")
    page.fill("#given_by", "Mrs Turing")
    page.click("#save-consent")
    page.wait_for_selector("#history tbody tr:nth-child(2)")
    history = page.locator("#history tbody tr").first.inner_text()
    page.goto(f"{base}/consent/schools/{SCHOOL}/grid?class=5B")
    after = page.locator("tr[data-pupil=DEMO002] td[data-platform='*']").inner_text()

    assert grid == {
        "DEMO001": "yes",
        "DEMO002": "no consent",
        "DEMO003": "withdrawn",
        "DEMO004": "expired",
        "DEMO005": "no consent",
        "DEMO006": "no consent",
    }
    assert "granted" in history and "Mrs Turing" in history
    assert after == "yes"
