"""A teacher in a real browser (Playwright driving Debian's Chromium): enrols it with
IT's code, drops a real photo, sees its thumbnail and the upload's progress, gets a
receipt with the photo's SHA-256, then confirms deleting it from the phone."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from safepost import embedded
from tests.e2e.journey import ACCOUNT, PHOTO, SCHOOL, Staff, wait_for


def test_a_teacher_enrols_the_browser_uploads_a_photo_and_confirms_its_deletion(
    running: tuple[str, dict[str, str]], faces_dir: Path, browser: Any, tmp_path: Path
) -> None:
    base, passwords, _ = running
    urls = {"portal": base, **{s: f"{base}/{s}" for s in embedded.SERVICES}}
    it = Staff(urls, "trust-it", passwords["trust-it"]).sign_in()
    device = it.call(
        "POST",
        "intake",
        "/api/devices",
        json={"school": SCHOOL, "owner": "teacher.oakfield", "kind": "personal",
              "name": "Phone"},
    ).json()  # fmt: skip
    it.call("POST", "intake", f"/api/devices/{device['device_id']}/approve")
    code = it.call(
        "POST", "intake", f"/api/devices/{device['device_id']}/enrolment-code"
    ).json()["code"]
    photo = tmp_path / "bridges.jpg"
    photo.write_bytes((faces_dir / "detection" / PHOTO).read_bytes())
    sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    page = browser.new_page()

    page.goto(f"{base}/login?next=/intake/")
    page.fill("#username", "teacher.oakfield")
    page.fill("#password", passwords["teacher.oakfield"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/intake/")
    page.fill("#code", code)
    page.click("#enrol-form button[type=submit]")
    page.wait_for_selector("#device")
    assert "personal" in page.inner_text("#device")
    page.set_input_files("#photos", str(photo))
    page.wait_for_selector("#thumbs img.thumb")
    page.check(f"input[name=accounts][value={ACCOUNT}]")
    page.fill("#caption", "Bridges")
    page.click("#upload button[type=submit]")
    page.wait_for_selector(".receipt")

    receipt = page.inner_text(".receipt")
    assert sha in receipt and "bridges.jpg" in receipt
    assert page.get_attribute("#progress", "value") == "100"
    assert page.is_visible("#obligations")
    assert "bridges.jpg" in page.inner_text("#to-delete")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["safepost_device"]["httpOnly"] is True
    assert page.evaluate("document.cookie").find("safepost_device") == -1

    page.click("#confirm-deleted")
    page.wait_for_selector("#deletion-status.ok")
    assert "Deletion confirmed for 1" in page.inner_text("#deletion-status")

    def audited() -> Any:
        got = it.call("GET", "audit", "/api/events")
        types = [e["type"] for e in got.json().get("events", [])] if got.ok else []
        return "deletion.confirmed" in types and "receipt.issued" in types

    wait_for(audited, "the receipt and the confirmation in the audit trail")
    page.close()
