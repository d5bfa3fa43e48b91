"""The device uploader against the embedded system over real HTTP: IT enrols a personal
laptop, `safepost upload` sends photos, the originals and sidecars go once the receipts
match, the deletions are confirmed and audited; a re-run skips what the server holds."""

from __future__ import annotations

import io
import stat
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from safepost import cli, embedded, uploader
from tests.e2e.journey import ACCOUNT, SCHOOL, Staff, wait_for


def staff(base: str, passwords: dict[str, str], username: str) -> Staff:
    urls = {"portal": base, **{s: f"{base}/{s}" for s in embedded.SERVICES}}
    return Staff(urls, username, passwords[username]).sign_in()


def a_photo(path: Path, shade: int) -> Path:
    Image.new("RGB", (64, 48), (shade, 80, 160)).save(path, "JPEG")
    return path


def enrolment_code(it: Staff, owner: str, kind: str = "personal") -> str:
    r = it.call(
        "POST",
        "intake",
        "/api/devices",
        json={"school": SCHOOL, "owner": owner, "kind": kind, "name": "Sam's laptop"},
    )
    assert r.status_code == 201, r.text
    device_id = r.json()["device_id"]
    assert it.call("POST", "intake", f"/api/devices/{device_id}/approve").ok
    code = it.call("POST", "intake", f"/api/devices/{device_id}/enrolment-code")
    return str(code.json()["code"])


def safepost(monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return cli.main(list(argv))


def test_the_uploader_deletes_originals_and_sidecars_once_receipts_match_and_confirms(
    running: tuple[str, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, passwords, _ = running
    it = staff(base, passwords, "trust-it")
    config = tmp_path / "home" / "device.json"
    roll = tmp_path / "DCIM"
    roll.mkdir()
    a_photo(roll / "IMG_0001.JPG", 10)
    (roll / "IMG_0001.AAE").write_text("<plist/>")
    (roll / "IMG_0001.MOV").write_bytes(b"live photo")
    a_photo(roll / "IMG_0002.JPG", 200)
    (roll / "IMG_0002.xmp").write_text("<x/>")
    (roll / "shopping.txt").write_text("milk")
    code = enrolment_code(it, "teacher.oakfield")
    password = passwords["teacher.oakfield"] + "\n"

    login = safepost(
        monkeypatch,
        "device", "login", "--server", base, "--code", code,
        "--user", "teacher.oakfield", "--password-stdin", "--config", str(config),
        stdin=password,
    )  # fmt: skip
    upload = safepost(
        monkeypatch,
        "upload", str(roll), "--caption", "Sports day", "--accounts", ACCOUNT,
        "--config", str(config),
    )  # fmt: skip

    out = capsys.readouterr()
    assert (login, upload) == (0, 0), out.err
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    saved = config.read_text()
    assert passwords["teacher.oakfield"] not in saved
    assert sorted(p.name for p in roll.iterdir()) == ["shopping.txt"]
    assert "100%" in out.err
    assert "uploaded 2" in out.out and "deletions confirmed 2" in out.out
    auditor = staff(base, passwords, "it-auditor.oakfield")

    def trail() -> Any:
        got = auditor.call("GET", "audit", "/api/events")
        types = [e["type"] for e in got.json().get("events", [])] if got.ok else []
        wanted = ("receipt.issued", "deletion.confirmed", "device.approved")
        return types if all(types.count(t) >= (2 if t != "device.approved" else 1)
                            for t in wanted) else None  # fmt: skip

    wait_for(trail, "receipts and deletion confirmations in the audit trail")
    open_ = it.call("GET", "intake", "/api/obligations").json()["obligations"]
    assert open_ == []


def test_a_rerun_skips_photos_the_server_holds_and_finishes_their_deletion(
    running: tuple[str, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, passwords, _ = running
    it = staff(base, passwords, "trust-it")
    config = tmp_path / "device.json"
    code = enrolment_code(it, "teacher.oakfield")
    safepost(
        monkeypatch,
        "device", "login", "--server", base, "--code", code,
        "--user", "teacher.oakfield", "--password-stdin", "--config", str(config),
        stdin=passwords["teacher.oakfield"] + "\n",
    )  # fmt: skip
    photo = a_photo(tmp_path / "IMG_0100.JPG", 99)
    saved = uploader.load_config(config)
    # A first run that crashed after the upload, before deleting: the post is held.
    teacher = staff(base, passwords, "teacher.oakfield")
    teacher.device_token = saved.device_token
    first = teacher.call(
        "POST",
        "intake",
        "/api/posts",
        data={"caption": "x", "school": SCHOOL, "accounts": ACCOUNT},
        files=[("photos", (photo.name, photo.read_bytes(), "image/jpeg"))],
    )
    assert first.status_code == 201, first.text

    rerun = safepost(
        monkeypatch,
        "upload", str(photo), "--caption", "x", "--accounts", ACCOUNT,
        "--config", str(config), "--quiet",
    )  # fmt: skip

    out = capsys.readouterr().out
    assert rerun == 0
    assert "uploaded 0, already held 1" in out
    assert not photo.exists()
    mine = teacher.call("GET", "intake", "/api/obligations?mine=1").json()
    assert mine["obligations"] == []


def test_a_revoked_device_uploads_nothing_and_deletes_nothing(
    running: tuple[str, dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, passwords, _ = running
    it = staff(base, passwords, "trust-it")
    config = tmp_path / "device.json"
    code = enrolment_code(it, "teacher.oakfield")
    safepost(
        monkeypatch,
        "device", "login", "--server", base, "--code", code,
        "--user", "teacher.oakfield", "--password-stdin", "--config", str(config),
        stdin=passwords["teacher.oakfield"] + "\n",
    )  # fmt: skip
    device_id = uploader.load_config(config).device_id
    it.call("POST", "intake", f"/api/devices/{device_id}/revoke", json={"reason": "x"})
    photo = a_photo(tmp_path / "IMG_0200.JPG", 5)

    code_ = safepost(
        monkeypatch,
        "upload", str(photo), "--caption", "x", "--accounts", ACCOUNT,
        "--config", str(config),
    )  # fmt: skip

    assert code_ == 2
    assert photo.exists()
    assert "this device is revoked" in capsys.readouterr().err
