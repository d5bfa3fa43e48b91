"""An approver in a real browser: signs in, reviews the preview and its reasons, masks
one more region, waits for the re-render and approves (embedded system, memory://)."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest

from safepost import embedded
from shared import bus, contracts
from tests.e2e.journey import ACCOUNT, SCHOOL, Staff, labelled, wait_for

pytestmark = pytest.mark.faces


def a_post_awaiting_approval(
    base: str, passwords: dict[str, str], faces_dir: Path, system: Any
) -> tuple[str, Staff]:
    """A teacher's post as intake hands it on (the original stored, PostSubmitted
    published), so this test of the approval page does not depend on intake's rules."""
    urls = {"portal": base, **{s: f"{base}/{s}" for s in embedded.SERVICES}}
    approver = Staff(
        urls, "approver.oakfield", passwords["approver.oakfield"]
    ).sign_in()
    teacher = Staff(urls, "teacher.oakfield", passwords["teacher.oakfield"]).sign_in()
    me = teacher.call("GET", "portal", "/auth/me")
    author = me.json().get("user_id", "teacher") if me.ok else "teacher"
    photo, _ = labelled(faces_dir)
    digest = hashlib.sha256(photo).hexdigest()
    post_id = str(uuid.uuid4())
    key = f"originals/{post_id}/{digest}.jpg"
    system.ports["redaction"].originals.put(key, photo, "image/jpeg")
    submitted = contracts.PostSubmitted(
        post_id=post_id,
        school_id=SCHOOL,
        author_id=author,
        caption="Well done to Ada Lovelace for her bridge",
        accounts=[ACCOUNT],
        photos=[
            contracts.PhotoRef(
                photo_id=str(uuid.uuid4()),
                original_key=key,
                sha256=digest,
                bytes=len(photo),
            )
        ],
    )
    publisher = bus.KombuPublisher(system.settings["intake"].amqp_url)
    publisher.publish([contracts.seal(submitted, producer="intake")])

    def awaiting() -> Any:
        got = approver.call("GET", "approval", f"/api/posts/{post_id}")
        return got.ok and got.json()["status"] == "awaiting_approval" or None

    wait_for(awaiting, "the post to await approval")
    return post_id, approver


def test_an_approver_reviews_masks_one_more_region_and_approves(
    running: tuple[str, dict[str, str], Any], faces_dir: Path, browser: Any
) -> None:
    base, passwords, system = running
    post_id, approver = a_post_awaiting_approval(base, passwords, faces_dir, system)
    page = browser.new_page()

    page.goto(f"{base}/login")
    page.fill("#username", "approver.oakfield")
    page.fill("#password", passwords["approver.oakfield"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/approval/posts/{post_id}")

    preview = page.locator("img.preview")
    preview.wait_for()
    assert page.evaluate("document.querySelector('img.preview').naturalWidth") > 0
    faces = page.locator("li.face")
    assert faces.count() >= 1
    assert "masked (" in faces.first.inner_text()
    assert "may name someone" in page.locator("#caption-warnings").inner_text()
    assert "Handwriting is mostly not read" in page.content()

    box = preview.bounding_box()
    page.mouse.move(box["x"] + 10, box["y"] + 10)
    page.mouse.down()
    page.mouse.move(box["x"] + 60, box["y"] + 50, steps=5)
    page.mouse.up()
    page.click("button.mask-button")
    page.wait_for_selector("text=Revision 1.", timeout=120_000)

    assert "1 region(s) masked by an approver" in page.content()
    page.click('#decision button[data-approve="true"]')
    page.wait_for_selector("text=Recorded: the post is", timeout=60_000)

    def approved() -> Any:
        got = approver.call("GET", "approval", f"/api/posts/{post_id}")
        return got.json()["status"] in ("approved", "published") or None

    wait_for(approved, "the post to be approved")
    detail = approver.call("GET", "approval", f"/api/posts/{post_id}").json()
    assert detail["photos"][0]["revision"] == 1
    assert detail["photos"][0]["added_masks"]
