"""The newcomer's journey on the embedded system (`make run`): one process, memory://."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from safepost import demo, embedded
from tests.e2e.journey import assert_journey, run_journey


def test_a_photo_goes_from_upload_to_published_with_every_face_masked_and_a_full_trail(
    running: tuple[str, dict[str, str], Any], faces_dir: Path
) -> None:
    base, passwords, system = running
    urls = {"portal": base, **{s: f"{base}/{s}" for s in embedded.SERVICES}}

    result = run_journey(urls, passwords, faces_dir, system.data_dir / "published")

    assert_journey(result)
    print(f"\nembedded journey: {result['seconds']:.2f} s from upload to published")


def test_the_demo_seed_is_idempotent_and_prints_each_password_once(
    tmp_path: Path,
) -> None:
    system = embedded.build(tmp_path / "var")

    first = demo.seed(system.ports, tmp_path / "published")
    second = demo.seed(system.ports, tmp_path / "published")

    assert {u.username for u in first} >= {
        "teacher.oakfield",
        "approver.riverside",
        "coo",
    }
    assert second == []


def test_the_demo_gives_each_teacher_one_approved_device_and_a_fresh_code_per_start(
    tmp_path: Path,
) -> None:
    system = embedded.build(tmp_path / "var")
    demo.seed(system.ports, tmp_path / "published")

    first = demo.demo_device_codes(system.ports["intake"])
    second = demo.demo_device_codes(system.ports["intake"])

    devices = system.ports["intake"].register.listing(None)
    assert sorted(d.owner for d in devices) == ["teacher.oakfield", "teacher.riverside"]
    assert all(d.status == "approved" and d.kind == "trust" for d in devices)
    assert first.keys() == second.keys() and first != second
