"""The BlobStore contract: one suite, run against the fake and every real adapter.

Subclass ``BlobStoreContract`` and give it a ``store`` fixture; pytest collects the
subclass (named ``Test...``), never this base.
"""

from __future__ import annotations

import urllib.request

import pytest

from shared.storage import BlobNotFoundError, BlobStore, InvalidKeyError

KEY = "originals/post-1/0a1b2c.jpg"
ESCAPING_KEYS = [
    "../x",
    "originals/../../etc/passwd",
    "/etc/passwd",
    "originals//x.jpg",
    "originals/./x.jpg",
    "originals/x.jpg/",
    "originals/.tmp-x",
    "",
    "originals\\..\\x",
    "a" * 513,
]


class BlobStoreContract:
    def test_a_stored_blob_reads_back_byte_for_byte(self, store: BlobStore) -> None:
        data = bytes(range(256)) * 10

        store.put(KEY, data, "image/jpeg")

        assert store.get(KEY) == data
        assert store.exists(KEY)

    def test_a_second_put_replaces_the_whole_value(self, store: BlobStore) -> None:
        store.put(KEY, b"a much longer first value")

        store.put(KEY, b"short")

        assert store.get(KEY) == b"short"

    def test_an_empty_blob_is_a_blob(self, store: BlobStore) -> None:
        store.put(KEY, b"")

        assert store.get(KEY) == b""
        assert store.exists(KEY)

    def test_a_missing_key_is_not_found(self, store: BlobStore) -> None:
        with pytest.raises(BlobNotFoundError) as caught:
            store.get("originals/post-1/missing.jpg")

        assert caught.value.status == 404
        assert not store.exists("originals/post-1/missing.jpg")

    def test_a_folder_is_not_a_blob(self, store: BlobStore) -> None:
        store.put(KEY, b"x")

        assert not store.exists("originals/post-1")
        with pytest.raises(BlobNotFoundError):
            store.get("originals/post-1")

    def test_delete_removes_and_is_idempotent(self, store: BlobStore) -> None:
        store.put(KEY, b"x")

        store.delete(KEY)
        store.delete(KEY)

        assert not store.exists(KEY)
        with pytest.raises(BlobNotFoundError):
            store.get(KEY)

    def test_keys_are_independent(self, store: BlobStore) -> None:
        store.put("redacted/post-1/a.jpg", b"a")
        store.put("redacted/post-1/b.jpg", b"b")

        store.delete("redacted/post-1/a.jpg")

        assert store.get("redacted/post-1/b.jpg") == b"b"

    @pytest.mark.parametrize("key", ESCAPING_KEYS)
    def test_a_key_that_could_escape_its_area_is_refused(
        self, store: BlobStore, key: str
    ) -> None:
        with pytest.raises(InvalidKeyError):
            store.put(key, b"x")
        with pytest.raises(InvalidKeyError):
            store.get(key)
        with pytest.raises(InvalidKeyError):
            store.exists(key)
        with pytest.raises(InvalidKeyError):
            store.delete(key)
        with pytest.raises(InvalidKeyError):
            store.presigned_get(key)

    def test_a_presigned_url_if_any_serves_the_blob(self, store: BlobStore) -> None:
        store.put("previews/post-1/p.jpg", b"preview bytes", "image/jpeg")

        url = store.presigned_get("previews/post-1/p.jpg", expires=60)

        if url is not None:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
                assert response.read() == b"preview bytes"
