"""The `safepost` command line, run as a real subprocess against the embedded store."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from shared import contracts

SAFEPOST = [sys.executable, "-m", "safepost.cli"]


def run(
    data_dir: Path, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    env = {"SAFEPOST_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [*SAFEPOST, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_redact_masks_every_labelled_face_and_reports_boxes_in_output_pixels(
    tmp_path: Path, faces_dir: Path
) -> None:
    records = json.loads((faces_dir / "detection" / "annotations.json").read_text())
    record = next(r for r in records if r["image"].endswith("2008_001322.jpg"))
    source = faces_dir / "detection" / record["image"]
    out, report_path = tmp_path / "out.jpg", tmp_path / "report.json"

    done = run(
        tmp_path / "var", "redact", str(source), str(out), "--report", str(report_path)
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    image = Image.open(out)
    assert image.size == (record["width"], record["height"])
    assert not image.getexif() and "icc_profile" not in image.info
    faces = report["faces"]
    assert len(faces) >= len(record["faces"])
    for face in faces:
        assert face["masked"] is True and face["reason"] == "unknown"
        assert face["pupil_id"] is None
        left, top, right, bottom = face["box"]
        assert 0 <= left < right <= image.width and 0 <= top < bottom <= image.height
    pixels = np.asarray(image.convert("RGB")).astype(int)
    original = np.asarray(Image.open(source).convert("RGB")).astype(int)
    for left, top, right, bottom in record["faces"]:
        changed = np.abs(pixels - original)[top:bottom, left:right].max(axis=2) > 12
        assert changed.mean() >= 0.9, f"labelled face {left, top} not masked"


def test_redact_refuses_a_file_that_is_not_an_image_with_a_clear_reason(
    tmp_path: Path,
) -> None:
    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is not a photo")

    done = run(tmp_path / "var", "redact", str(fake), str(tmp_path / "out.jpg"))

    assert done.returncode == 2
    assert "Traceback" not in done.stderr and done.stderr.startswith("safepost:")
    assert not (tmp_path / "out.jpg").exists()


def test_users_add_reads_the_password_from_stdin_and_lists_the_roles(
    tmp_path: Path,
) -> None:
    added = run(
        tmp_path,
        "users",
        "add",
        "head.oakfield",
        "--name",
        "Headteacher",
        "--role",
        "approver@oakfield",
        "--password-stdin",
        stdin="a long enough password\n",
    )

    listed = run(tmp_path, "users", "list")

    assert added.returncode == 0, added.stderr
    assert "head.oakfield" in listed.stdout and "approver@oakfield" in listed.stdout
    assert "a long enough password" not in listed.stdout


def test_users_add_refuses_an_unknown_role(tmp_path: Path) -> None:
    done = run(
        tmp_path,
        "users",
        "add",
        "x.y",
        "--role",
        "headmaster@oakfield",
        "--password-stdin",
        stdin="a long enough password\n",
    )

    assert done.returncode == 2 and "bad role" in done.stderr


def test_schools_add_is_idempotent(tmp_path: Path) -> None:
    first = run(tmp_path, "schools", "add", "hillside", "--name", "Hillside School")
    second = run(tmp_path, "schools", "add", "hillside", "--name", "Hillside School")

    assert first.returncode == second.returncode == 0
    assert "added hillside" in first.stdout and "already present" in second.stdout


def test_audit_verify_passes_an_intact_chain_and_fails_a_tampered_one(
    tmp_path: Path,
) -> None:
    from services.audit import bootstrap
    from shared.config import Settings

    ports = bootstrap.real_ports(
        Settings.from_env("audit", {"SAFEPOST_DATA_DIR": str(tmp_path)})
    )
    record = bootstrap.envelope_handler(ports)
    for n in range(3):
        rejected = contracts.PostRejected(
            post_id=f"p{n}", school_id="oakfield", reason="blurry"
        )
        record(contracts.seal(rejected, producer="approval"))
    intact = run(tmp_path, "audit", "verify")
    db = sqlite3.connect(tmp_path / "db" / "audit.sqlite3")
    db.execute("DROP TRIGGER audit_records_no_update")
    db.execute(
        "UPDATE audit_records SET data = replace(data, 'blurry', 'fine') WHERE seq = 2"
    )
    db.commit()
    db.close()

    tampered = run(tmp_path, "audit", "verify")

    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert json.loads(intact.stdout)["ok"] is True
    assert tampered.returncode == 1
    assert json.loads(tampered.stdout)["ok"] is False


def test_redact_with_a_school_shows_only_the_enrolled_consented_pupil(
    tmp_path: Path, faces_dir: Path
) -> None:
    identity = faces_dir / "identity"
    pupils = tmp_path / "pupils.csv"
    pupils.write_text(
        "pupil_id,forename,surname,class,social_media_consent,biometric_consent\n"
        "OB1,Barack,Obama,5B,yes,yes\n"
        "BI1,Joe,Biden,5B,no,yes\n"
    )
    data = tmp_path / "var"
    setup = [
        run(data, "schools", "add", "oakfield", "--name", "Oakfield"),
        run(data, "consent", "import", str(pupils), "--school", "oakfield"),
        run(
            data,
            "consent",
            "enrol",
            "--school",
            "oakfield",
            "OB1",
            str(identity / "obama.jpg"),
        ),
        run(
            data,
            "consent",
            "enrol",
            "--school",
            "oakfield",
            "BI1",
            str(identity / "biden.jpg"),
        ),
    ]
    report_path = tmp_path / "report.json"

    done = run(
        data,
        "redact",
        str(identity / "two_people.jpg"),
        str(tmp_path / "o.jpg"),
        "--school",
        "oakfield",
        "--platform",
        "facebook",
        "--report",
        str(report_path),
    )

    for step in setup:
        assert step.returncode == 0, step.stdout + step.stderr
    assert done.returncode == 0, done.stderr
    faces = sorted(
        json.loads(report_path.read_text())["faces"], key=lambda f: f["box"][0]
    )
    assert [f["masked"] for f in faces] == [False, True]
    assert faces[0]["pupil_id"] == "OB1"
    assert faces[1]["pupil_id"] is None and faces[1]["reason"] == "no_consent"


def test_dlq_list_in_the_embedded_mode_says_why_it_cannot_read_them(tmp_path):
    """Issue 13 §6 / issue 15: it crashed with a traceback."""
    for service in ("intake", "redaction"):
        done = run(tmp_path, "dlq", "list", service)

        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        assert "inside" in done.stderr and "safepost run" in done.stderr
