"""The load of a fault run: photos, devices that upload them (resuming like the
uploader when an answer is lost), and an approver who approves whatever awaits.

Every post's caption carries a token ``[F00042-<run>]`` so that each sandbox post
can be traced back to the post it came from.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from PIL import Image, ImageDraw

from tests.e2e.journey import SCHOOL, Staff, approve

ACCOUNTS = [f"{SCHOOL}-{p}" for p in ("facebook", "instagram", "x", "linkedin")]
PUPIL = "OB1"  # the enrolled, consented pupil whose consent is withdrawn mid-run
PUPIL_CSV = (
    "pupil_id,forename,surname,class,social_media_consent,biometric_consent\n"
    f"{PUPIL},Barack,Obama,5B,yes,yes\n"
)
FINAL = ("published", "rejected", "failed")


@dataclass(frozen=True)
class Photo:
    kind: str  # "pupil": shows PUPIL; "strangers": real unenrolled faces; "scene"
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class Photos:
    """Small photos (redaction stays fast): every tenth shows the enrolled pupil
    (a real photo of him), three in ten real strangers' faces from the labelled set,
    the rest synthetic scenes without faces. Each one's bytes are unique (a stamp in
    a corner), so each upload is a new photo to intake."""

    def __init__(self, faces_dir: Path):
        identity = faces_dir / "identity"
        self.pupil = Image.open(identity / "obama_small.jpg").convert("RGB")
        records = json.loads((faces_dir / "detection" / "annotations.json").read_text())
        few = sorted(
            (r for r in records if 1 <= len(r["faces"]) <= 3),
            key=lambda r: str(r["image"]),
        )[:4]
        self.strangers = [
            self._small(faces_dir / "detection" / r["image"]) for r in few
        ]

    @staticmethod
    def _small(path: Path) -> Image.Image:
        img = Image.open(path).convert("RGB")
        width, height = img.size
        if width * 3 > height * 4:  # crop to 4:3, which every platform accepts
            cut = (width - height * 4 // 3) // 2
            img = img.crop((cut, 0, cut + height * 4 // 3, height))
        else:
            cut = (height - width * 3 // 4) // 2
            img = img.crop((0, cut, width, cut + width * 3 // 4))
        return img.resize((480, 360))

    @staticmethod
    def kind(index: int) -> str:
        if index % 10 == 3:
            return "pupil"
        return "strangers" if index % 10 in (1, 5, 8) else "scene"

    def make(self, index: int) -> Photo:
        kind = self.kind(index)
        if kind == "pupil":
            img = self.pupil.copy()
        elif kind == "strangers":
            img = self.strangers[index % len(self.strangers)].copy()
        else:
            img = _scene(index)
        _stamp(img, index)
        out = io.BytesIO()
        img.save(out, "JPEG", quality=90)
        return Photo(kind, out.getvalue())


def _scene(index: int) -> Image.Image:
    rng = random.Random(index)  # noqa: S311 - test pictures
    img = Image.new("RGB", (480, 360), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(img)
    for _ in range(14):
        x, y = rng.randrange(480), rng.randrange(360)
        draw.rectangle(
            (x, y, x + rng.randrange(20, 140), y + rng.randrange(20, 100)),
            fill=tuple(rng.randrange(256) for _ in range(3)),
        )
    return img


def _stamp(img: Image.Image, index: int) -> None:
    """A 4x4-pixel block per bit of the index in the bottom-left corner."""
    draw = ImageDraw.Draw(img)
    for bit in range(16):
        on = (index >> bit) & 1
        x = bit * 4
        y = img.height - 4
        draw.rectangle((x, y, x + 3, y + 3), fill=(255, 255, 255) if on else (0, 0, 0))


def caption(index: int, run: str) -> str:
    return f"[F{index:05d}-{run}] Fault run photo {index} of our school week"


def accounts(index: int, photo: Photo, per_post: int) -> list[str]:
    """``per_post`` of the accounts, rotating so each gets its share; a photo of
    the pupil goes to every account (so that the takedown covers them all)."""
    if photo.kind == "pupil" or per_post >= len(ACCOUNTS):
        return list(ACCOUNTS)
    return [ACCOUNTS[(index + k) % len(ACCOUNTS)] for k in range(per_post)]


@dataclass
class Upload:
    index: int
    kind: str
    post_id: str | None = None
    tries: int = 0
    resumed: bool = False  # the answer was lost; the post was found by its hash
    error: str = ""


@dataclass
class Uploads:
    """Every planned upload and what became of it."""

    items: dict[int, Upload] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: Counter[str] = field(default_factory=Counter)  # status code or error

    def note(self, what: str) -> None:
        with self.lock:
            self.answers[what] += 1


class Device(threading.Thread):
    """One enrolled device sending its share of the posts at a steady pace. A
    failed or unanswered upload is retried after asking intake which photos it
    already holds (as the real uploader resumes), so a lost answer never makes a
    second post and a refused one is sent again."""

    def __init__(
        self,
        staff: Staff,
        photos: Photos,
        indexes: list[int],
        run: str,
        start: float,
        interval: float,
        uploads: Uploads,
        per_post: int = len(ACCOUNTS),
        give_up: float = 180.0,
    ):
        super().__init__(daemon=True, name=f"device-{indexes[0] if indexes else 0}")
        self.staff = staff
        self.photos = photos
        self.indexes = indexes
        self.run_id = run
        self.begin = start
        self.interval = interval
        self.uploads = uploads
        self.per_post = per_post
        self.give_up = give_up

    def run(self) -> None:
        for index in self.indexes:
            delay = self.begin + index * self.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.send(index)

    def send(self, index: int) -> None:
        photo = self.photos.make(index)
        item = Upload(index, photo.kind)
        with self.uploads.lock:
            self.uploads.items[index] = item
        deadline = time.monotonic() + self.give_up
        while time.monotonic() < deadline:
            item.tries += 1
            if item.tries > 1:
                held = self._held(photo.sha256)
                if held:
                    item.post_id, item.resumed = held, True
                    return
            try:
                r = self.staff.call(
                    "POST",
                    "intake",
                    "/api/posts",
                    data={
                        "caption": caption(index, self.run_id),
                        "school": SCHOOL,
                        "accounts": ",".join(accounts(index, photo, self.per_post)),
                    },
                    files=[("photos", (f"p{index}.jpg", photo.data, "image/jpeg"))],
                )
            except requests.RequestException as exc:
                self.uploads.note(type(exc).__name__)
                item.error = type(exc).__name__
                time.sleep(2)
                continue
            self.uploads.note(str(r.status_code))
            if r.status_code == 201:
                item.post_id = str(r.json()["post_id"])
                return
            item.error = f"{r.status_code} {r.text[:200]}"
            time.sleep(2)

    def _held(self, sha256: str) -> str | None:
        try:
            r = self.staff.call(
                "POST", "intake", "/api/photos/held", json={"sha256": [sha256]}
            )
        except requests.RequestException:
            return None
        if not r.ok:
            return None
        held = r.json().get("held") or []
        return str(held[0]["post_id"]) if held else None


class Approver(threading.Thread):
    """Approves every post of the run that awaits approval (again if it comes
    back, e.g. after a consent change); a refused or unsent decision is tried
    again on a later round."""

    def __init__(self, staff: Staff, run: str, every: float = 1.5):
        super().__init__(daemon=True, name="approver")
        self.staff = staff
        self.run_id = run
        self.every = every
        self.stop = threading.Event()
        self.sent: dict[str, float] = {}
        self.answers: Counter[str] = Counter()
        self.decisions = 0

    def run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                r = self.staff.call(
                    "GET",
                    "approval",
                    "/api/posts",
                    params={"status": "awaiting_approval"},
                )
            except requests.RequestException as exc:
                self.answers[f"list {type(exc).__name__}"] += 1
                continue
            if not r.ok:
                self.answers[f"list {r.status_code}"] += 1
                continue
            for post in r.json().get("posts", []):
                if f"-{self.run_id}]" not in post.get("caption", ""):
                    continue
                post_id = post["post_id"]
                if time.monotonic() - self.sent.get(post_id, -1e9) < 10:
                    continue
                try:  # look at the post, then approve what it shows
                    d = approve(self.staff, post_id)
                except (requests.RequestException, AssertionError) as exc:
                    # AssertionError: the look itself was refused (e.g. 503)
                    self.answers[f"decide {type(exc).__name__}"] += 1
                    continue
                self.answers[f"decide {d.status_code}"] += 1
                if d.status_code in (200, 202):
                    self.sent[post_id] = time.monotonic()
                    self.decisions += 1


def all_posts(staff: Staff, run: str) -> dict[str, dict[str, Any]]:
    """The run's posts as approval lists them, by post id."""
    r = staff.call("GET", "approval", "/api/posts")
    r.raise_for_status()
    return {
        p["post_id"]: p for p in r.json()["posts"] if f"-{run}]" in p.get("caption", "")
    }


def audit_records(staff: Staff) -> list[dict[str, Any]]:
    r = staff.call(
        "GET", "audit", "/api/export", params={"format": "jsonl", "school": SCHOOL}
    )
    r.raise_for_status()
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


def states(post: Mapping[str, Any]) -> dict[str, str]:
    """account -> delivery state (or "" when none yet)."""
    return {
        t["account_id"]: str((t.get("delivery") or {}).get("state") or "")
        for t in post.get("targets", [])
    }
