"""The BlobStore contract on S3BlobStore against a real S3 API server (moto) on
loopback, plus S3's own promises: encryption requested on every put, areas in
separate buckets, presigned GETs fetchable over plain HTTP, public access blocked."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from shared.config import Settings
from shared.storage import S3BlobStore, open_store, s3_client
from tests.unit.shared.blob_contract import BlobStoreContract


def production_settings(endpoint: str, prefix: str) -> Settings:
    return Settings.from_env(
        "intake",
        {
            "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672//",
            "DATABASE_URL": "postgresql://postgres@127.0.0.1/x",
            "SAFEPOST_SECRET_KEY": "s" * 40,
            "S3_ENDPOINT": endpoint,
            "S3_BUCKET_PREFIX": prefix,
            "S3_ACCESS_KEY": "testing",
            "S3_SECRET_KEY": "testing",
        },
    )


@pytest.fixture()
def client(s3_endpoint: str) -> Any:
    return s3_client(s3_endpoint, "eu-west-2", "testing", "testing")


@pytest.fixture()
def bucket_store(client: Any) -> S3BlobStore:
    store = S3BlobStore(client, f"test-{uuid.uuid4().hex[:12]}")
    store.ensure_bucket()
    return store


class TestS3BlobStore(BlobStoreContract):
    @pytest.fixture()
    def store(self, bucket_store: S3BlobStore) -> S3BlobStore:
        return bucket_store


def test_every_put_asks_for_server_side_encryption(bucket_store: S3BlobStore) -> None:
    bucket_store.put("redacted/post-1/a.jpg", b"x", "image/jpeg")

    head = bucket_store.client.head_object(
        Bucket=bucket_store.bucket, Key="redacted/post-1/a.jpg"
    )

    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == "image/jpeg"


def test_a_presigned_get_is_fetchable_with_plain_http(
    bucket_store: S3BlobStore,
) -> None:
    bucket_store.put("previews/post-1/p.jpg", b"preview", "image/jpeg")

    url = bucket_store.presigned_get("previews/post-1/p.jpg", expires=60)

    assert url is not None and url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        assert response.read() == b"preview"


def test_a_blob_is_not_fetchable_without_a_signature(bucket_store: S3BlobStore) -> None:
    bucket_store.put("previews/post-1/p.jpg", b"preview")
    signed = bucket_store.presigned_get("previews/post-1/p.jpg")
    assert signed is not None

    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(signed.split("?", 1)[0], timeout=10)  # noqa: S310

    assert caught.value.code == 403


def test_new_buckets_block_public_access(bucket_store: S3BlobStore) -> None:
    block = bucket_store.client.get_public_access_block(Bucket=bucket_store.bucket)

    assert all(block["PublicAccessBlockConfiguration"].values())


def test_ensure_bucket_twice_is_harmless(bucket_store: S3BlobStore) -> None:
    bucket_store.put("redacted/post-1/a.jpg", b"kept")

    bucket_store.ensure_bucket()

    assert bucket_store.get("redacted/post-1/a.jpg") == b"kept"


def test_originals_redacted_and_previews_are_separate_buckets(s3_endpoint: str) -> None:
    settings = production_settings(s3_endpoint, f"t{uuid.uuid4().hex[:8]}")
    stores = {area: open_store(settings, area) for area in settings.s3_buckets}
    buckets = {s.bucket for s in stores.values() if isinstance(s, S3BlobStore)}

    stores["originals"].put("originals/post-1/a.jpg", b"secret original")

    assert buckets == set(settings.s3_buckets.values())
    assert len(buckets) == 3
    assert not stores["redacted"].exists("originals/post-1/a.jpg")
    assert not stores["previews"].exists("originals/post-1/a.jpg")


def test_processes_starting_together_all_get_the_bucket(client: Any) -> None:
    """Every api and worker ensures its buckets at start: when several start at once
    the ones that lose the race to create a bucket must carry on, not crash."""
    from concurrent.futures import ThreadPoolExecutor

    name = f"race-{uuid.uuid4().hex[:12]}"
    stores = [S3BlobStore(client, name) for _ in range(8)]  # eu-west-2, as MinIO

    with ThreadPoolExecutor(8) as pool:
        errors = [f.exception() for f in [pool.submit(s.ensure_bucket) for s in stores]]

    assert errors == [None] * 8
    stores[0].put("k", b"x")
    assert stores[1].get("k") == b"x"
