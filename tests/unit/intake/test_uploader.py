"""The device uploader: deletes only after a matching receipt; sidecars; resume."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from safepost import uploader
from tests.unit.intake.builders import a_jpeg, a_png


class FakeServer:
    """Answers like intake; ``tamper`` rewrites receipts on their way back."""

    def __init__(self, kind: str = "personal", tamper: Any = None, down: bool = False):
        self.kind = kind
        self.tamper = tamper
        self.down = down
        self.stored: dict[str, dict[str, Any]] = {}
        self.confirmed: list[str] = []
        self.posts: list[list[str]] = []

    def device(self) -> dict[str, Any]:
        return {"status": "approved", "kind": self.kind, "school": "north"}

    def held(self, sha256s: list[str]) -> dict[str, dict[str, Any]]:
        return {s: self.stored[s] for s in sha256s if s in self.stored}

    def upload(self, photos, fields, progress):
        form = uploader.Multipart(fields, photos, progress)
        body = b"".join(form.chunks())
        assert len(body) == form.length
        receipts = []
        for photo in photos:
            data = photo.path.read_bytes()
            receipt = {
                "file": photo.path.name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
                "receipt_id": f"r-{len(self.stored) + 1}",
                "deletion_expected": self.kind == "personal",
            }
            self.stored[receipt["sha256"]] = receipt
            receipts.append(dict(receipt))
        self.posts.append([p.path.name for p in photos])
        if self.tamper:
            receipts = [self.tamper(r) for r in receipts]
        answer = {
            "post_id": f"p-{len(self.posts)}",
            "delete_from_device": self.kind == "personal",
            "receipts": receipts,
        }
        return answer, form.sent

    def confirm(self, receipt_id: str, deleted_at: str) -> dict[str, Any]:
        if self.down:
            raise uploader.UploaderError("cannot reach the server")
        self.confirmed.append(receipt_id)
        return {}


def a_config() -> uploader.DeviceConfig:
    return uploader.DeviceConfig(server="http://x", device_id="d1", device_token="t")


def run(server, paths, **kw):
    return uploader.upload(
        server,
        kw.pop("config", a_config()),
        paths,
        caption="Sports day",
        school=None,
        accounts=["newsroom"],
        out=io.StringIO(),
        **kw,
    )


@pytest.fixture()
def camera_roll(tmp_path: Path) -> Path:
    (tmp_path / "IMG_0001.JPG").write_bytes(a_jpeg())
    (tmp_path / "IMG_0001.AAE").write_text("<plist/>")
    (tmp_path / "IMG_0001.xmp").write_text("<x/>")
    (tmp_path / "IMG_0001.JPG.xmp").write_text("<x/>")
    (tmp_path / "IMG_0001.MOV").write_bytes(b"live photo")
    (tmp_path / "IMG_0002.png").write_bytes(a_png())
    (tmp_path / "IMG_0001.png").write_bytes(a_png()[:-1] + b"\x01")  # another photo
    (tmp_path / "notes.txt").write_text("not a photo")
    return tmp_path


def test_a_personal_device_deletes_each_photo_and_its_sidecars_after_a_matching_receipt(
    camera_roll,
):
    server = FakeServer()

    outcome = run(server, [camera_roll / "IMG_0001.JPG", camera_roll / "IMG_0002.png"])

    assert sorted(p.name for p in camera_roll.iterdir()) == [
        "IMG_0001.png",
        "notes.txt",
    ]
    assert sorted(p.name for p in outcome.deleted) == [
        "IMG_0001.AAE",
        "IMG_0001.JPG",
        "IMG_0001.JPG.xmp",
        "IMG_0001.MOV",
        "IMG_0001.xmp",
        "IMG_0002.png",
    ]
    assert server.confirmed == ["r-1", "r-2"]
    assert outcome.problems == []


def test_a_receipt_with_the_wrong_hash_deletes_nothing(camera_roll):
    before = sorted(p.name for p in camera_roll.iterdir())
    server = FakeServer(tamper=lambda r: {**r, "sha256": "0" * 64})

    outcome = run(server, [camera_roll / "IMG_0001.JPG", camera_roll / "IMG_0002.png"])

    assert sorted(p.name for p in camera_roll.iterdir()) == before
    assert outcome.deleted == []
    assert server.confirmed == []
    assert len(outcome.problems) == 2


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: {**r, "bytes": r["bytes"] + 1},
        lambda r: {k: v for k, v in r.items() if k != "sha256"},
        lambda r: {**r, "sha256": r["sha256"].upper()[:-1]},
    ],
    ids=["wrong size", "no hash", "short hash"],
)
def test_any_receipt_that_does_not_prove_the_bytes_deletes_nothing(camera_roll, tamper):
    outcome = run(FakeServer(tamper=tamper), [camera_roll / "IMG_0002.png"])

    assert (camera_roll / "IMG_0002.png").exists()
    assert outcome.deleted == []


def test_a_missing_receipt_deletes_nothing(camera_roll):
    server = FakeServer()
    server.upload = lambda photos, fields, progress: (  # type: ignore[method-assign]
        {"post_id": "p", "delete_from_device": True, "receipts": []},
        set(),
    )

    outcome = run(server, [camera_roll / "IMG_0002.png"])

    assert (camera_roll / "IMG_0002.png").exists()
    assert outcome.deleted == []


def test_a_trust_device_keeps_its_photos_unless_asked(camera_roll):
    kept = run(FakeServer(kind="trust"), [camera_roll / "IMG_0002.png"])
    assert (camera_roll / "IMG_0002.png").exists()

    deleted = run(
        FakeServer(kind="trust"),
        [camera_roll / "IMG_0002.png"],
        delete_after_upload=True,
    )

    assert kept.kept == [camera_roll / "IMG_0002.png"]
    assert not (camera_roll / "IMG_0002.png").exists()
    assert deleted.deleted == [camera_roll / "IMG_0002.png"]


def test_a_rerun_skips_what_the_server_holds_and_uploads_only_the_rest(camera_roll):
    server = FakeServer(kind="trust")
    run(server, [camera_roll / "IMG_0001.JPG"])

    outcome = run(server, [camera_roll])

    assert outcome.skipped == [camera_roll / "IMG_0001.JPG"]
    assert server.posts[-1] == ["IMG_0001.png", "IMG_0002.png"]
    assert len(server.posts) == 2


def test_a_rerun_finishes_a_deletion_the_first_run_did_not_get_to(camera_roll):
    server = FakeServer()
    server.stored[uploader.hash_file(camera_roll / "IMG_0002.png")] = {
        "sha256": uploader.hash_file(camera_roll / "IMG_0002.png"),
        "bytes": (camera_roll / "IMG_0002.png").stat().st_size,
        "receipt_id": "r-old",
        "deletion_expected": True,
    }

    outcome = run(server, [camera_roll / "IMG_0002.png"])

    assert server.posts == []
    assert not (camera_roll / "IMG_0002.png").exists()
    assert server.confirmed == ["r-old"]
    assert outcome.skipped == [camera_roll / "IMG_0002.png"]


def test_a_confirmation_that_cannot_be_sent_is_kept_and_sent_next_time(camera_roll):
    config = a_config()
    server = FakeServer(down=True)
    first = run(server, [camera_roll / "IMG_0002.png"], config=config)
    server.down = False

    second = run(server, [camera_roll / "IMG_0001.png"], config=config)

    assert first.unconfirmed == ["r-1"]
    assert not (camera_roll / "IMG_0002.png").exists()
    assert server.confirmed == ["r-1", "r-2"]
    assert second.confirmed == ["r-1", "r-2"]
    assert config.pending_confirmations == []


def test_many_photos_go_in_posts_of_at_most_ten(tmp_path):
    for i in range(23):
        (tmp_path / f"p{i:02}.jpg").write_bytes(a_jpeg((i, 0, 0)))
    server = FakeServer(kind="trust")

    outcome = run(server, [tmp_path])

    assert [len(p) for p in server.posts] == [10, 10, 3]
    assert len(outcome.uploaded) == 23


def test_the_progress_bar_reaches_the_total_on_stderr(camera_roll):
    out = io.StringIO()
    photo = camera_roll / "IMG_0002.png"

    uploader.upload(
        FakeServer(kind="trust"),
        a_config(),
        [photo],
        caption="x",
        school=None,
        accounts=["a"],
        out=out,
    )

    assert "100%" in out.getvalue()


def test_a_config_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "cfg" / "device.json"

    uploader.save_config(path, a_config())
    loaded = uploader.load_config(path)
    os.chmod(path, 0o644)

    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert loaded.device_token == "t"
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with pytest.raises(uploader.UploaderError, match="readable by others"):
        uploader.load_config(path)


def test_a_saved_config_is_created_0600(tmp_path):
    path = tmp_path / "device.json"

    uploader.save_config(path, a_config())

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
