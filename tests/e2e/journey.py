"""One photo from upload to published, driven over HTTP like a school's staff would.

Shared by the embedded e2e test and the every-service-its-own-process e2e test; only the
way the system is started differs.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import requests
from PIL import Image

# A real group photo of school children whose labelled faces the detector finds.
PHOTO = "images/29_Students_Schoolkids_Students_Schoolkids_29_146.jpg"
CAPTION = "Year 5 science week: building bridges from paper! #STEM"
ACCOUNT = "oakfield-newsroom"
# The steps IT must be able to see for one post, in the order they happen.
TRAIL = {
    "post.submitted",
    "faces.detected",
    "faces.decided",
    "photo.redacted",
    "approval.record_decision",
    "post.approved",
    "post.published",
}
SCHOOL = "oakfield"


def wait_for(check: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    """Poll until ``check`` is truthy; fail naming what never happened."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last saw {last!r}")


def labelled(faces_dir: Path, image: str = PHOTO) -> tuple[bytes, list[list[int]]]:
    records = json.loads((faces_dir / "detection" / "annotations.json").read_text())
    record = next(r for r in records if r["image"] == image)
    return (faces_dir / "detection" / image).read_bytes(), record["faces"]


def with_phone_metadata(jpeg: bytes) -> bytes:
    """The photo as a phone would send it: EXIF and GPS, comment, ICC, XMP."""
    from PIL import ImageCms

    img = Image.open(io.BytesIO(jpeg))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "PhoneModel 12"  # Model
    gps = {1: "N", 2: (51.0, 30.0, 12.5), 3: "W", 4: (0.0, 7.0, 39.2)}
    exif[0x8825] = gps
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/'
        b'1999/02/22-rdf-syntax-ns#"><rdf:Description>Pupil names here'
        b"</rdf:Description>"
        b"</rdf:RDF></x:xmpmeta>"
    )
    out = io.BytesIO()
    img.save(
        out,
        "JPEG",
        quality=95,
        exif=exif,
        icc_profile=icc,
        comment=b"Taken at Oakfield",
        xmp=xmp,
    )
    return out.getvalue()


def assert_no_metadata(jpeg: bytes) -> None:
    img = Image.open(io.BytesIO(jpeg))
    img.load()
    assert not img.getexif(), "EXIF left in the published image"
    for key in ("exif", "icc_profile", "xmp", "comment", "photoshop", "adobe"):
        assert key not in img.info, f"{key} left in the published image"
    for marker in (
        b"Exif\x00\x00",
        b"http://ns.adobe.com/xap",
        b"ICC_PROFILE",
        b"Photoshop 3.0",
        b"Taken at Oakfield",
        b"Pupil names",
        b"PhoneMaker",
    ):
        assert marker not in jpeg, f"{marker!r} found in the published bytes"


def masked_fraction(
    original: np.ndarray, published: np.ndarray, box: list[int], masks: list[list[int]]
) -> float:
    """Share of a labelled box's pixels replaced by masking: inside a reported masked
    region AND visibly changed from the original (so a region reported but not painted,
    or painted elsewhere, does not count)."""
    left, top, right, bottom = box
    covered = np.zeros(original.shape[:2], dtype=bool)
    for m_left, m_top, m_right, m_bottom in masks:
        covered[m_top:m_bottom, m_left:m_right] = True
    diff = np.abs(original.astype(int) - published.astype(int)).max(axis=2)
    region = (covered & (diff > 12))[top:bottom, left:right]
    # Pixels of the face that happen to be the fill colour cannot differ; count a pixel
    # as replaced if it is covered and the masked region there is flat (solid/mosaic).
    flat = _flat(published)[top:bottom, left:right] & covered[top:bottom, left:right]
    replaced = region | flat
    return float(replaced.mean())


def _flat(image: np.ndarray, radius: int = 1) -> np.ndarray:
    gray = image.astype(int).mean(axis=2)
    shifts = [
        np.roll(np.roll(gray, dy, 0), dx, 1)
        for dy in (-radius, 0, radius)
        for dx in (-radius, 0, radius)
    ]
    return np.ptp(np.stack(shifts), axis=0) <= 4


@dataclass
class Staff:
    """Signs in through the portal's token endpoint and calls the service APIs."""

    urls: Mapping[str, str]  # "portal" and each service -> base URL (no trailing slash)
    username: str
    password: str
    token: str = ""
    device_token: str = ""  # intake: uploads need an enrolled, approved device

    def sign_in(self) -> Staff:
        r = requests.post(
            f"{self.urls['portal']}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        self.token = r.json()["token"]
        return self

    def call(
        self, method: str, service: str, path: str, **kw: Any
    ) -> requests.Response:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
        }
        if self.device_token:
            headers["X-Device-Token"] = self.device_token
        return requests.request(
            method, f"{self.urls[service]}{path}", headers=headers, timeout=60, **kw
        )


def enrol_device(it: Staff, owner: Staff, username: str) -> str:
    """IT registers and approves a trust laptop for ``owner``, who enrols it."""
    r = it.call(
        "POST",
        "intake",
        "/api/devices",
        json={"school": SCHOOL, "owner": username, "kind": "trust", "name": "Laptop"},
    )
    assert r.status_code == 201, r.text
    device_id = r.json()["device_id"]
    assert it.call("POST", "intake", f"/api/devices/{device_id}/approve").ok
    code = it.call("POST", "intake", f"/api/devices/{device_id}/enrolment-code")
    enrolled = owner.call("POST", "intake", "/api/enrol", json=code.json())
    assert enrolled.status_code == 201, enrolled.text
    return str(enrolled.json()["token"])


def run_journey(
    urls: Mapping[str, str],
    passwords: Mapping[str, str],
    faces_dir: Path,
    published_root: Path,
) -> dict[str, Any]:
    """Upload → redacted → approved → published; returns what the assertions need."""
    started = time.monotonic()
    teacher = Staff(urls, "teacher.oakfield", passwords["teacher.oakfield"]).sign_in()
    approver = Staff(
        urls, "approver.oakfield", passwords["approver.oakfield"]
    ).sign_in()
    auditor = Staff(
        urls, "it-auditor.oakfield", passwords["it-auditor.oakfield"]
    ).sign_in()
    trust_it = Staff(urls, "trust-it", passwords["trust-it"]).sign_in()
    photo, boxes = labelled(faces_dir)
    upload = with_phone_metadata(photo)
    teacher.device_token = enrol_device(trust_it, teacher, "teacher.oakfield")

    r = teacher.call(
        "POST",
        "intake",
        "/api/posts",
        data={"caption": CAPTION, "school": SCHOOL, "accounts": ACCOUNT},
        files=[("photos", ("bridges.jpg", upload, "image/jpeg"))],
    )
    assert r.status_code == 201, r.text
    receipt = r.json()
    post_id = receipt["post_id"]

    def awaiting() -> Any:
        got = approver.call("GET", "approval", f"/api/posts/{post_id}")
        return (
            got.json()
            if got.ok and got.json().get("status") == "awaiting_approval"
            else None
        )

    post = wait_for(awaiting, "the post to await approval")
    own = teacher.call(
        "POST",
        "approval",
        f"/api/posts/{post_id}/decision",
        json=approval_of(post),
    )
    decided = approver.call(
        "POST",
        "approval",
        f"/api/posts/{post_id}/decision",
        json=approval_of(post),
    )
    assert decided.status_code == 200, decided.text

    def published() -> Any:
        got = approver.call("GET", "approval", f"/api/posts/{post_id}")
        status = got.json().get("status") if got.ok else None
        assert status not in ("failed", "rejected"), got.text
        return got.json() if status == "published" else None

    final = wait_for(published, "the post to be published")
    took = time.monotonic() - started
    folder = wait_for(
        lambda: [
            p for p in published_root.rglob("*") if p.is_dir() and p.name == post_id
        ],
        "the published folder",
    )[0]

    def trail() -> Any:
        got = auditor.call("GET", "audit", "/api/events", params={"post": post_id})
        types = {e["type"] for e in got.json().get("events", [])} if got.ok else set()
        return got.json()["events"] if types >= TRAIL else None

    events = wait_for(trail, "the audit trail to record publication")
    verify = trust_it.call("GET", "audit", "/api/verify")
    return {
        "post_id": post_id,
        "receipt": receipt,
        "post": post,
        "final": final,
        "own_decision": own,
        "folder": folder,
        "original": photo,
        "boxes": boxes,
        "events": events,
        "verify": verify,
        "seconds": took,
    }


def assert_journey(result: dict[str, Any]) -> None:
    """What a school and its IT would check after one photo went out."""
    assert result["own_decision"].status_code == 403, (
        "the author approved their own post"
    )

    folder: Path = result["folder"]
    images = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg")
    )
    assert len(images) == 1, list(folder.iterdir())
    published = images[0].read_bytes()
    assert_no_metadata(published)
    assert (folder / "caption.txt").read_text(encoding="utf-8").strip() == CAPTION

    original = np.asarray(Image.open(io.BytesIO(result["original"])).convert("RGB"))
    out = np.asarray(Image.open(io.BytesIO(published)).convert("RGB"))
    assert out.shape == original.shape, (
        "the test photo is small enough not to be resized"
    )
    [photo] = result["post"]["photos"]
    faces = photo["faces"]
    masks = [f["box"] for f in faces if f["masked"]]
    assert faces and all(f["masked"] for f in faces), "nobody has consent: all masked"
    for box in result["boxes"]:
        share = masked_fraction(original, out, box, masks)
        assert share >= 0.9, f"labelled face {box} only {share:.0%} masked"

    events = result["events"]
    by_type = {e["type"]: e for e in events}
    assert set(by_type) >= TRAIL, (
        f"missing from the audit trail: {TRAIL - set(by_type)}"
    )
    assert by_type["post.submitted"]["actor"] == "teacher.oakfield"
    assert by_type["post.approved"]["actor"] == "approver.oakfield"
    assert all("encoding" not in json.dumps(e) for e in events), (
        "encodings kept by audit"
    )
    assert result["verify"].status_code == 200 and result["verify"].json()["ok"] is True


def approval_of(post: dict[str, Any]) -> dict[str, Any]:
    """An approval of exactly what ``post`` (GET /approval/api/posts/<id>) shows."""
    seen = {
        p["photo_id"]: {"revision": p["revision"], "sha256": p["sha256"]}
        for p in post["photos"]
    }
    return {"approve": True, "reason": "", "seen": seen}


def approve(approver: Any, post_id: str) -> Any:
    """Look at the post as the approver, then approve what it shows."""
    got = approver.call("GET", "approval", f"/api/posts/{post_id}")
    assert got.ok, got.text
    return approver.call(
        "POST",
        "approval",
        f"/api/posts/{post_id}/decision",
        json=approval_of(got.json()),
    )
