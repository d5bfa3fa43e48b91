"""Consent after publication, end to end on the embedded system with the platform
sandboxes (issue 8): a post showing an enrolled, consented pupil goes live on four
accounts; the parent withdraws; every sandbox no longer has it, the post's accounts
show taken_down with the time, the pupil's page lists it, and the trail has each
step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safepost import embedded
from tests.e2e.journey import SCHOOL, Staff, approve, enrol_device, wait_for

CSV = (
    "pupil_id,forename,surname,class,social_media_consent,biometric_consent\n"
    "OB1,Barack,Obama,5B,yes,yes\n"
)
ACCOUNTS = [f"{SCHOOL}-{p}" for p in ("facebook", "instagram", "x", "linkedin")]


def test_a_withdrawal_takes_a_live_post_down_from_every_platform(
    running: Any, faces_dir: Path
) -> None:
    base, passwords, system = running
    urls = {"portal": base, **{s: f"{base}/{s}" for s in embedded.SERVICES}}
    takedown_journey(urls, passwords, system.sandboxes, faces_dir)


def takedown_journey(
    urls: dict[str, str], passwords: dict[str, str], boxes: Any, faces_dir: Path
) -> None:
    """Upload a photo of an enrolled, consented pupil to four accounts, approve it,
    see it live on the sandboxes, withdraw consent, see it gone everywhere."""
    staff = {
        name: Staff(urls, name, passwords[name]).sign_in()
        for name in (
            "admin.oakfield",
            "teacher.oakfield",
            "approver.oakfield",
            "it-auditor.oakfield",
            "trust-it",
        )
    }
    admin, teacher = staff["admin.oakfield"], staff["teacher.oakfield"]
    approver, auditor = staff["approver.oakfield"], staff["it-auditor.oakfield"]
    identity = faces_dir / "identity"
    imported = admin.call(
        "POST", "consent", f"/api/schools/{SCHOOL}/import", data=CSV.encode()
    )
    assert imported.status_code == 200, imported.text
    enrolled = admin.call(
        "POST",
        "consent",
        f"/api/schools/{SCHOOL}/pupils/OB1/enrolment",
        files=[
            ("photo", ("o.jpg", (identity / "obama.jpg").read_bytes(), "image/jpeg"))
        ],
    )
    assert enrolled.status_code == 201, enrolled.text
    teacher.device_token = enrol_device(staff["trust-it"], teacher, "teacher.oakfield")
    upload = teacher.call(
        "POST",
        "intake",
        "/api/posts",
        data={"caption": "Visit", "school": SCHOOL, "accounts": ",".join(ACCOUNTS)},
        files=[("photos", ("two.jpg", (identity / "two_people.jpg").read_bytes()))],
    )
    assert upload.status_code == 201, upload.text
    post_id = upload.json()["post_id"]

    def post() -> dict[str, Any]:
        got = approver.call("GET", "approval", f"/api/posts/{post_id}")
        return dict(got.json()) if got.ok else {}

    def shown() -> Any:
        p = post()
        if p.get("status") != "awaiting_approval" or p.get("rerendering"):
            return None
        faces = p["photos"][0]["faces"]
        return p if any(f.get("pupil_id") == "OB1" for f in faces) else None

    wait_for(shown, "the post to await approval showing OB1")
    decided = approve(approver, post_id)
    assert decided.status_code == 200, decided.text

    platforms = boxes.by_platform()

    def live_everywhere() -> bool:
        graph = [p for p in boxes.graph.live() if post_text(p)]
        return (
            post().get("status") == "published"
            and len(graph) == 2
            and len(platforms["x"].live()) == 1
            and len(platforms["linkedin"].live()) == 1
        )

    wait_for(live_everywhere, "the post to be live on all four sandboxes")

    withdrawn = admin.call(
        "POST",
        "consent",
        f"/api/schools/{SCHOOL}/pupils/OB1/consents",
        json={"purpose": "social_media", "status": "withdrawn", "method": "online"},
    )
    assert withdrawn.status_code == 201, withdrawn.text

    def gone_everywhere() -> bool:
        return (
            boxes.graph.live() == []
            and platforms["x"].live() == []
            and platforms["linkedin"].live() == []
        )

    wait_for(gone_everywhere, "every sandbox to have taken the post down", timeout=60)

    def taken_down_on_the_page() -> Any:
        targets = post().get("targets") or []
        states = {t["account_id"]: t.get("delivery") or {} for t in targets}
        done = all(states.get(a, {}).get("state") == "taken_down" for a in ACCOUNTS)
        return states if done else None

    states = wait_for(
        taken_down_on_the_page, "the approver's page to say taken down", timeout=30
    )
    assert all(states[a].get("at") for a in ACCOUNTS)
    listed = admin.call("GET", "approval", f"/api/schools/{SCHOOL}/pupils/OB1/posts")
    [listed_post] = listed.json()["posts"]
    assert {a["state"] for a in listed_post["accounts"]} == {"taken_down"}

    def trail() -> Any:
        got = auditor.call("GET", "audit", "/api/events", params={"pupil": "OB1"})
        kinds = {e["type"] for e in got.json()["events"]} if got.ok else set()
        wanted = {"consent.changed", "takedown.requested", "takedown.completed"}
        return kinds if wanted <= kinds else None

    kinds = wait_for(trail, "the trail to hold the takedown", timeout=30)
    assert "post.approved" in kinds
    steps = auditor.call("GET", "audit", "/api/events", params={"post": post_id})
    taken = [
        e
        for e in steps.json()["events"]
        if e["type"] == "delivery.updated" and e["data"]["state"] == "taken_down"
    ]
    assert sorted(e["data"]["account_id"] for e in taken) == sorted(ACCOUNTS)


def post_text(post: dict[str, Any]) -> bool:
    return "Visit" in str(post.get("text", ""))
