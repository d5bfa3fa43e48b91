"""Publishing an approved post: once per account, redacted bytes only, default deny."""

from __future__ import annotations

import json
from dataclasses import fields

import pytest

from services.publishing import bootstrap, domain
from shared import contracts
from shared.config import Settings
from tests.unit.publishing.builders import IMAGE, a_rig, an_account, approved, cleared
from tests.unit.publishing.fakes import RecordingTarget


def test_an_approved_post_is_written_to_the_accounts_folder_with_the_redacted_bytes(
    tmp_path,
):
    rig = a_rig(tmp_path)
    second = b"\x89PNG other redacted image"

    [published] = rig.publish(approved(rig, images=(IMAGE, second)))

    assert isinstance(published, contracts.PostPublished)
    folder = rig.root / "north" / "newsroom" / "p1"
    assert published.location == str(folder)
    assert published.target == "folder"
    assert (folder / "01-ph1.jpg").read_bytes() == IMAGE
    assert (folder / "02-ph2.jpg").read_bytes() == second
    assert (folder / "caption.txt").read_text() == "Sports day!"
    record = json.loads((folder / "post.json").read_text())
    assert record["post_id"] == "p1" and record["approved_by"] == "u-approver"
    assert rig.deliveries.get("p1", "newsroom").status == domain.DONE


def test_a_second_delivery_is_a_no_op_that_announces_the_same_publication(tmp_path):
    target = RecordingTarget()
    rig = a_rig(tmp_path, targets={"folder": target})
    event = approved(rig)
    first = rig.publish(event)

    again = rig.handle(cleared(event))  # consent's answer delivered twice

    assert again == first
    assert rig.handle(event) == []  # the approval delivered again: nothing new
    assert len(target.calls) == 1


def test_a_redelivery_after_a_real_folder_write_leaves_one_folder(tmp_path):
    rig = a_rig(tmp_path)
    event = approved(rig)
    rig.publish(event)
    rig.deliveries.markers.clear()  # as if the worker died before marking it done

    [published] = rig.publish(event)

    account_folder = rig.root / "north" / "newsroom"
    assert [p.name for p in account_folder.iterdir()] == ["p1"]
    assert published.location == str(account_folder / "p1")


def test_the_marker_is_recorded_as_started_before_the_write(tmp_path):
    target = RecordingTarget(fail=OSError("disk full"))
    rig = a_rig(tmp_path, targets={"folder": target})

    with pytest.raises(OSError):
        rig.publish(approved(rig))

    assert [d.status for d in rig.deliveries.history] == [domain.STARTED]


def test_publishing_opens_the_redacted_store_and_never_the_originals(tmp_path):
    settings = Settings.from_env(
        "publishing",
        {"SAFEPOST_DATA_DIR": str(tmp_path), "SAFEPOST_SECRET_KEY": "k" * 40},
    )

    ports = bootstrap.real_ports(settings)

    assert (tmp_path / "blobs" / "redacted").is_dir()
    assert not (tmp_path / "blobs" / "originals").exists()
    assert {f.name for f in fields(ports)}.isdisjoint({"originals", "previews"})


def test_unknown_disabled_and_other_school_accounts_fail_with_a_reason(tmp_path):
    rig = a_rig(
        tmp_path,
        an_account("newsroom"),
        an_account("off", enabled=False),
        an_account("southern", school="south"),
    )

    out = rig.publish(approved(rig, accounts=("ghost", "off", "southern", "newsroom")))

    reasons = {m.account: getattr(m, "reason", "published") for m in out}
    assert reasons == {
        "ghost": "unknown_account",
        "off": "account_disabled",
        "southern": "school_mismatch",
        "newsroom": "published",
    }
    assert not (rig.root / "south").exists()


def test_a_redacted_image_that_is_not_the_approved_one_is_not_published(tmp_path):
    rig = a_rig(tmp_path)
    event = approved(rig)
    rig.redacted.put("redacted/p1/ph1.jpg", b"something else")

    [failed] = rig.publish(event)

    assert isinstance(failed, contracts.PublishFailed)
    assert failed.reason == "image_changed"
    assert not (rig.root / "north").exists()


def test_a_missing_redacted_image_fails_the_delivery(tmp_path):
    rig = a_rig(tmp_path)
    event = approved(rig)
    rig.redacted.delete("redacted/p1/ph1.jpg")

    [failed] = rig.publish(event)

    assert isinstance(failed, contracts.PublishFailed)
    assert failed.reason == "image_missing"
