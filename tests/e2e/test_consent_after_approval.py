"""Consent that stays true after approval, end to end on the embedded system with a
real photo (issue 8 sections 0 and 1): consent is asked per target account's
platform; a withdrawal while a post awaits approval re-renders it masked; a
withdrawal just before approval never lets the old rendering go live."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safepost import embedded
from tests.e2e.journey import SCHOOL, Staff, approve, enrol_device, wait_for

CSV = (
    "pupil_id,forename,surname,class,social_media_consent,biometric_consent\n"
    "OB1,Barack,Obama,5B,yes,yes\n"
)
NEWSROOM = "oakfield-newsroom"
FACEBOOK = "oakfield-facebook"  # the demo school's Facebook Page (a local sandbox)


def _setup(running: Any, faces_dir: Path) -> dict[str, Any]:
    base, passwords, system = running
    urls = {"portal": base, **{s: f"{base}/{s}" for s in embedded.SERVICES}}
    staff = {
        name: Staff(urls, name, passwords[name]).sign_in()
        for name in (
            "admin.oakfield",
            "teacher.oakfield",
            "approver.oakfield",
            "trust-it",
        )
    }
    admin = staff["admin.oakfield"]
    identity = faces_dir / "identity"
    assert (
        admin.call(
            "POST", "consent", f"/api/schools/{SCHOOL}/import", data=CSV.encode()
        ).status_code
        == 200
    )
    enrolled = admin.call(
        "POST",
        "consent",
        f"/api/schools/{SCHOOL}/pupils/OB1/enrolment",
        files=[
            ("photo", ("o.jpg", (identity / "obama.jpg").read_bytes(), "image/jpeg"))
        ],
    )
    assert enrolled.status_code == 201, enrolled.text
    consent_ports = system.ports["consent"]
    wait_for(
        lambda: (
            consent_ports.accounts.scopes(SCHOOL, [FACEBOOK, NEWSROOM])
            == {
                FACEBOOK: ("social_media", "facebook"),
                NEWSROOM: ("social_media", None),
            }
        ),
        "consent to learn both accounts' platforms from publishing",
        timeout=30,
    )
    teacher = staff["teacher.oakfield"]
    teacher.device_token = enrol_device(staff["trust-it"], teacher, "teacher.oakfield")
    return {**staff, "photo": (identity / "two_people.jpg").read_bytes()}


def _upload(people: dict[str, Any], accounts: str) -> str:
    upload = people["teacher.oakfield"].call(
        "POST",
        "intake",
        "/api/posts",
        data={"caption": "Visit", "school": SCHOOL, "accounts": accounts},
        files=[("photos", ("two.jpg", people["photo"]))],
    )
    assert upload.status_code == 201, upload.text
    return str(upload.json()["post_id"])


def _post(people: dict[str, Any], post_id: str) -> dict[str, Any]:
    """The post as the approver sees it ({} until approval has opened it)."""
    got = people["approver.oakfield"].call("GET", "approval", f"/api/posts/{post_id}")
    if got.status_code == 404:
        return {}
    assert got.ok, got.text
    return dict(got.json())


def _awaiting(
    people: dict[str, Any], post_id: str, revision: int = 0, notices: int = 0
) -> Any:
    def ready() -> Any:
        post = _post(people, post_id)
        if not post:
            return None
        photo = post["photos"][0]
        done = (
            post["status"] == "awaiting_approval"
            and not post["rerendering"]
            and photo["revision"] >= revision
            and len(post["consent_notices"]) >= notices
        )
        return post if done else None

    return wait_for(ready, f"post {post_id} to await approval (revision {revision})")


def _obama(post: dict[str, Any]) -> tuple[bool, str | None, str | None]:
    """The left-hand face of two_people.jpg is the enrolled pupil OB1."""
    face = sorted(post["photos"][0]["faces"], key=lambda f: f["box"][0])[0]
    return face["masked"], face.get("pupil_id"), face.get("reason")


def _record(people: dict[str, Any], platform: str | None, status: str) -> None:
    body = {"purpose": "social_media", "status": status, "method": "online"}
    if platform:
        body["platform"] = platform
    saved = people["admin.oakfield"].call(
        "POST", "consent", f"/api/schools/{SCHOOL}/pupils/OB1/consents", json=body
    )
    assert saved.status_code == 201, saved.text


def _approve(people: dict[str, Any], post_id: str) -> None:
    decided = approve(people["approver.oakfield"], post_id)
    assert decided.status_code == 200, decided.text


def test_a_pupil_refused_on_one_targets_platform_is_masked_in_that_post(
    running: Any, faces_dir: Path
) -> None:
    people = _setup(running, faces_dir)
    _record(people, "facebook", "refused")

    both = _upload(people, f"{NEWSROOM},{FACEBOOK}")
    newsroom_only = _upload(people, NEWSROOM)

    assert _obama(_awaiting(people, both)) == (True, None, "no_consent")
    assert _obama(_awaiting(people, newsroom_only)) == (False, "OB1", None)


def test_a_withdrawal_while_awaiting_approval_re_renders_the_photo_masked(
    running: Any, faces_dir: Path
) -> None:
    people = _setup(running, faces_dir)
    post_id = _upload(people, NEWSROOM)
    assert _obama(_awaiting(people, post_id)) == (False, "OB1", None)

    _record(people, None, "withdrawn")

    post = _awaiting(people, post_id, revision=1, notices=1)
    assert _obama(post) == (True, None, "withdrawn")
    [notice] = post["consent_notices"]
    assert notice["pupil_id"] == "OB1" and notice["stage"] == "awaiting_approval"
    assert "withdrawn" in " ".join(notice["changes"])
    _approve(people, post_id)
    published = wait_for(
        lambda: _post(people, post_id).get("status") == "published", "publication"
    )
    assert published


def test_a_withdrawal_just_before_approval_never_goes_live_unmasked(
    running: Any, faces_dir: Path
) -> None:
    base, _, system = running
    people = _setup(running, faces_dir)
    post_id = _upload(people, NEWSROOM)
    assert _obama(_awaiting(people, post_id)) == (False, "OB1", None)
    folder = system.data_dir / "published" / SCHOOL / NEWSROOM / post_id

    _record(people, None, "withdrawn")
    _approve(people, post_id)  # the approver still sees the old rendering

    post = _awaiting(people, post_id, revision=1, notices=1)
    assert not folder.exists(), "the old rendering went live"
    assert _obama(post) == (True, None, "withdrawn")
    assert post["consent_notices"]
    deliveries = system.ports["publishing"].deliveries.recent(post_id=post_id)
    assert all(d.status != "done" for d in deliveries)
    _approve(people, post_id)
    wait_for(lambda: _post(people, post_id).get("status") == "published", "publication")
    assert folder.is_dir()
