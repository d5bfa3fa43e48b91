"""The BlobStore contract on the in-memory fake and the filesystem store, plus the
filesystem store's own promises (atomic writes, private files, areas kept apart)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shared.config import Settings
from shared.storage import FilesystemBlobStore, open_store
from shared.testing import InMemoryBlobStore
from tests.unit.shared.blob_contract import KEY, BlobStoreContract


class TestInMemoryBlobStore(BlobStoreContract):
    @pytest.fixture()
    def store(self) -> InMemoryBlobStore:
        return InMemoryBlobStore()


class TestFilesystemBlobStore(BlobStoreContract):
    @pytest.fixture()
    def store(self, tmp_path: Path) -> FilesystemBlobStore:
        return FilesystemBlobStore(tmp_path / "blobs" / "originals")


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_failed_write_keeps_the_old_value_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FilesystemBlobStore(tmp_path)
    store.put(KEY, b"the original")

    def disk_failed(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_failed)
    with pytest.raises(OSError, match="No space"):
        store.put(KEY, b"half written")

    monkeypatch.undo()
    assert store.get(KEY) == b"the original"
    assert files_under(tmp_path) == [KEY]


def test_a_write_of_bad_data_leaves_no_partial_file(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)

    with pytest.raises(TypeError):
        store.put(KEY, "text, not bytes")  # type: ignore[arg-type]

    assert not store.exists(KEY)
    assert files_under(tmp_path) == []


def test_blobs_are_private_to_the_service_user(tmp_path: Path) -> None:
    root = tmp_path / "originals"
    store = FilesystemBlobStore(root)

    store.put("originals/post-1/deep/a.jpg", b"x")

    folders = [root, *(p for p in root.rglob("*") if p.is_dir())]
    assert {stat.S_IMODE(p.stat().st_mode) for p in folders} == {0o700}
    assert stat.S_IMODE((root / "originals/post-1/deep/a.jpg").stat().st_mode) == 0o600


def test_the_embedded_areas_are_separate_folders(tmp_path: Path) -> None:
    settings = Settings.from_env("intake", {"SAFEPOST_DATA_DIR": str(tmp_path)})
    originals = open_store(settings, "originals")
    previews = open_store(settings, "previews")

    originals.put("originals/post-1/a.jpg", b"secret original")

    assert not previews.exists("originals/post-1/a.jpg")
    assert (tmp_path / "blobs" / "originals" / "originals/post-1/a.jpg").is_file()


def test_an_unknown_area_is_refused(tmp_path: Path) -> None:
    settings = Settings.from_env("intake", {"SAFEPOST_DATA_DIR": str(tmp_path)})

    with pytest.raises(ValueError, match="unknown storage area"):
        open_store(settings, "../originals")
