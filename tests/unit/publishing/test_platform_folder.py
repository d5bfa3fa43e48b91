"""The folder target: built locations only, atomic posts, stale temp folders cleaned,
delete, lookup and recent."""

from __future__ import annotations

import errno
import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from services.publishing.platforms.base import (
    Destination,
    Media,
    PermanentError,
    TransientError,
    find_ours,
)
from services.publishing.platforms.folder import FolderAdapter, folder_external_id

JPEG = b"\xff\xd8\xff redacted pixels"
POST = "6b1f7d7e-1c1a-4d5e-9f61-3c2a9f0e8a11"


def a_destination(school="oakfield", account="newsroom", **kwargs):
    return Destination(
        account_id=kwargs.pop("account_id", account),
        platform="folder",
        external_id=kwargs.pop("external_id", f"{school}/{account}"),
        base_url="",
        settings=kwargs.pop("settings", {"school_id": school}),
    )


def photos(count=1):
    return [Media(f"photo-{n}", JPEG + bytes([n])) for n in range(1, count + 1)]


def test_a_post_is_written_whole_in_its_built_folder(tmp_path):
    adapter = FolderAdapter(tmp_path)

    live = adapter.publish(
        a_destination(), "Sports day!", photos(), idempotency_key=POST
    )

    folder = tmp_path / "oakfield" / "newsroom" / POST
    assert live.external_id == POST
    assert live.url == folder.as_uri()
    assert sorted(p.name for p in folder.iterdir()) == [
        "01-photo-1.jpg",
        "caption.txt",
        "post.json",
    ]
    assert (folder / "01-photo-1.jpg").read_bytes() == JPEG + b"\x01"
    assert (folder / "caption.txt").read_text() == "Sports day!"
    record = json.loads((folder / "post.json").read_text())
    assert record["post_id"] == POST
    assert record["school"] == "oakfield" and record["account"] == "newsroom"
    assert [i["file"] for i in record["images"]] == ["01-photo-1.jpg"]
    assert not list(folder.parent.glob(".tmp-*"))


def test_several_photos_keep_their_order(tmp_path):
    adapter = FolderAdapter(tmp_path)

    adapter.publish(a_destination(), "Trip", photos(3), idempotency_key=POST)

    folder = tmp_path / "oakfield" / "newsroom" / POST
    images = sorted(p.name for p in folder.glob("*.jpg"))
    assert images == ["01-photo-1.jpg", "02-photo-2.jpg", "03-photo-3.jpg"]


def test_publishing_the_same_post_twice_leaves_one_folder(tmp_path):
    adapter = FolderAdapter(tmp_path)
    first = adapter.publish(a_destination(), "Trip", photos(), idempotency_key=POST)
    record = tmp_path / "oakfield" / "newsroom" / POST / "post.json"
    written = record.read_bytes()

    again = adapter.publish(a_destination(), "Trip", photos(), idempotency_key=POST)

    assert again == first
    assert record.read_bytes() == written
    assert [p.name for p in (tmp_path / "oakfield" / "newsroom").iterdir()] == [POST]


def test_a_folder_post_needs_its_post_id(tmp_path):
    with pytest.raises(PermanentError) as caught:
        FolderAdapter(tmp_path).publish(a_destination(), "Trip", photos())

    assert caught.value.code == "no_post_id"


@pytest.mark.parametrize(
    "external_id",
    [
        "oakfield/../../etc",
        "../riverside/newsroom",
        "oakfield/newsroom/../../riverside/newsroom",
        "/tmp/newsroom",
        "oakfield",
        "oakfield/news room",
        "oakfield/.hidden",
    ],
)
def test_a_location_that_is_not_school_slash_account_is_refused(tmp_path, external_id):
    dest = a_destination(external_id=external_id)

    with pytest.raises(PermanentError) as caught:
        FolderAdapter(tmp_path).publish(dest, "x", photos(), idempotency_key=POST)

    assert caught.value.code == "bad_location"
    assert list(tmp_path.iterdir()) == []


def test_an_oakfield_account_cannot_publish_into_riversides_folder(tmp_path):
    dest = a_destination(
        external_id="riverside/newsroom", settings={"school_id": "oakfield"}
    )

    with pytest.raises(PermanentError):
        FolderAdapter(tmp_path).publish(dest, "x", photos(), idempotency_key=POST)

    assert not (tmp_path / "riverside").exists()


def test_the_location_must_name_the_destinations_own_account(tmp_path):
    dest = a_destination(external_id="oakfield/staffroom", account_id="newsroom")

    with pytest.raises(PermanentError):
        FolderAdapter(tmp_path).publish(dest, "x", photos(), idempotency_key=POST)


def test_a_post_id_cannot_climb_out_either(tmp_path):
    adapter = FolderAdapter(tmp_path)

    with pytest.raises(PermanentError):
        adapter.publish(a_destination(), "x", photos(), idempotency_key="../escape")
    with pytest.raises(PermanentError):
        adapter.delete(a_destination(), "../newsroom")


def test_a_symlinked_school_folder_leading_out_of_the_root_is_refused(tmp_path):
    root, outside = tmp_path / "published", tmp_path / "elsewhere"
    root.mkdir()
    outside.mkdir()
    (root / "oakfield").symlink_to(outside, target_is_directory=True)

    with pytest.raises(PermanentError):
        FolderAdapter(root).publish(
            a_destination(), "x", photos(), idempotency_key=POST
        )

    assert list(outside.iterdir()) == []


def test_a_temp_folder_left_by_a_killed_writer_is_cleaned_on_the_next_publish(tmp_path):
    base = tmp_path / "oakfield" / "newsroom"
    stale, fresh = base / ".tmp-dead-writer-x1", base / ".tmp-live-writer-x2"
    for folder in (stale, fresh):
        folder.mkdir(parents=True)
        (folder / "01-photo.jpg").write_bytes(JPEG)
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))

    FolderAdapter(tmp_path).publish(
        a_destination(), "x", photos(), idempotency_key=POST
    )

    assert not stale.exists()
    assert fresh.exists()  # under a minute old: maybe a writer still at work


class DiskFullMedia(Media):
    """A photo whose bookkeeping fails after its bytes are written (disk full)."""

    @property
    def sha256(self) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_write_that_fails_half_way_leaves_no_post_and_no_temp_folder(tmp_path):
    adapter = FolderAdapter(tmp_path)
    media = [*photos(1), DiskFullMedia("photo-2", JPEG)]

    with pytest.raises(TransientError) as caught:
        adapter.publish(a_destination(), "x", media, idempotency_key=POST)

    base = tmp_path / "oakfield" / "newsroom"
    assert "No space left" in caught.value.message
    assert list(base.iterdir()) == []
    assert adapter.lookup(a_destination(), POST) is None


def test_an_image_type_a_folder_does_not_take_is_refused_before_writing(tmp_path):
    media = [Media("photo-1", b"<svg/>", content_type="image/svg+xml")]

    with pytest.raises(PermanentError):
        FolderAdapter(tmp_path).publish(
            a_destination(), "x", media, idempotency_key=POST
        )

    assert not (tmp_path / "oakfield").exists()


def test_delete_removes_the_folder_and_a_second_delete_is_fine(tmp_path):
    adapter = FolderAdapter(tmp_path)
    adapter.publish(a_destination(), "x", photos(), idempotency_key=POST)

    adapter.delete(a_destination(), POST)
    adapter.delete(a_destination(), POST)

    base = tmp_path / "oakfield" / "newsroom"
    assert list(base.iterdir()) == []
    assert adapter.lookup(a_destination(), POST) is None


def test_lookup_finds_a_published_post(tmp_path):
    adapter = FolderAdapter(tmp_path)
    live = adapter.publish(a_destination(), "x", photos(), idempotency_key=POST)

    assert adapter.lookup(a_destination(), POST) == live
    assert adapter.lookup(a_destination(), "some-other-post") is None


def test_recent_lists_posts_since_a_time_newest_first_for_reconciliation(tmp_path):
    now = [datetime(2030, 1, 1, 9, tzinfo=UTC).timestamp()]
    adapter = FolderAdapter(tmp_path, clock=lambda: now[0])
    for n, caption in enumerate(["old", "sports day", "trip"]):
        now[0] += 3600
        adapter.publish(
            a_destination(), caption, photos(n + 1), idempotency_key=f"post-{n}"
        )

    found = adapter.recent(a_destination(), datetime(2030, 1, 1, 10, 30, tzinfo=UTC))

    assert [p.external_id for p in found] == ["post-2", "post-1"]
    assert [(p.text, p.media_count) for p in found] == [("trip", 3), ("sports day", 2)]
    assert find_ours(found, "sports day", 2).external_id == "post-1"


def test_another_accounts_posts_are_not_in_its_recent_list(tmp_path):
    adapter = FolderAdapter(tmp_path)
    adapter.publish(a_destination(), "x", photos(), idempotency_key=POST)
    since = datetime.now(UTC) - timedelta(hours=1)

    other = a_destination(account="staffroom")

    assert adapter.recent(other, since) == []
    assert len(adapter.recent(a_destination(), since)) == 1


def test_external_ids_are_built_from_school_and_account():
    assert folder_external_id("oakfield", "newsroom") == "oakfield/newsroom"
    with pytest.raises(ValueError):
        folder_external_id("oakfield/..", "newsroom")
    with pytest.raises(ValueError):
        folder_external_id("oakfield", "../riverside")


def test_recent_lists_every_post_since_however_many_there_are(tmp_path):
    """A directory listing has no pages: the post made first among many is found."""
    now = [datetime(2030, 1, 1, 9, tzinfo=UTC).timestamp()]
    adapter = FolderAdapter(tmp_path, clock=lambda: now[0])

    def publish(caption: str, key: str, count: int = 1) -> None:
        now[0] += 1
        adapter.publish(a_destination(), caption, photos(count), idempotency_key=key)

    for n in range(30):
        publish(f"Last term {n}", f"old-{n}")
    since = datetime.fromtimestamp(now[0] + 1, UTC)
    publish("Sports day!", POST, 2)
    for n in range(120):
        publish(f"Later {n}", f"new-{n}")

    recent = adapter.recent(a_destination(), since)

    ours = find_ours(recent, "Sports day!", 2)
    assert ours is not None and ours.external_id == POST and recent[-1] == ours
    assert len(recent) == 121
    assert not any(p.text.startswith("Last term") for p in recent)
