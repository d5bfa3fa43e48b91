"""Blob storage: the ``BlobStore`` port, a filesystem and an S3 implementation.

Three areas are kept apart, each its own store (own folder, own bucket): ``originals``
(only intake writes and only redaction reads), ``redacted`` (what may be published) and
``previews`` (annotated images for approvers only). Keys are deterministic, e.g.
``originals/<post_id>/<sha256>.jpg``.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Protocol

from shared.errors import NotFoundError

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
MAX_KEY_LENGTH = 512
AREAS = ("originals", "redacted", "previews")


class BlobNotFoundError(NotFoundError):
    code = "blob_not_found"


class InvalidKeyError(ValueError):
    """A key that could escape its area (``..``, absolute, odd characters)."""


def check_key(key: str) -> str:
    """``key`` if it is relative and stays inside its area; else InvalidKeyError.

    Every ``/``-separated segment starts with a letter or digit, so ``..``, ``.``,
    empty segments, absolute paths and hidden (temp) names are all refused.
    """
    if (
        not isinstance(key, str)
        or not 0 < len(key) <= MAX_KEY_LENGTH
        or not all(_SEGMENT.match(part) for part in key.split("/"))
    ):
        raise InvalidKeyError(f"invalid storage key {key!r}")
    return key


class BlobStore(Protocol):
    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        """Store ``data`` under ``key`` durably (replacing any previous value whole)."""

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; BlobNotFoundError if there are none."""

    def exists(self, key: str) -> bool:
        """Whether ``key`` holds a value."""

    def delete(self, key: str) -> None:
        """Remove ``key``; no error if it is already gone."""

    def presigned_get(self, key: str, expires: int = 300) -> str | None:
        """A short-lived URL to fetch ``key`` directly, or None if the store has none.

        Never log it: whoever holds it can read the blob until it expires.
        """


class FilesystemBlobStore:
    """A folder per area. Atomic writes: a temp file in the same folder, fsync, rename.

    Folders are 0700 and files 0600: only the service's own user can read them.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _make_folders(self, folder: Path) -> None:
        # Path.mkdir(parents=True) gives intermediate folders the umask default.
        missing = []
        while folder != self.root and not folder.is_dir():
            missing.append(folder)
            folder = folder.parent
        for path in reversed(missing):
            path.mkdir(mode=0o700, exist_ok=True)

    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        path = self._path(key)
        self._make_folders(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_folder(path.parent)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFoundError(f"no blob {key}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def presigned_get(self, key: str, expires: int = 300) -> str | None:
        check_key(key)
        return None


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable: fsync the folder that holds the new name."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MemoryBlobStore:
    """Blobs in a dict: for one-shot runs (``safepost redact``) and tests."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}

    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        self.blobs[check_key(key)] = bytes(data)
        self.content_types[key] = content_type

    def get(self, key: str) -> bytes:
        try:
            return self.blobs[check_key(key)]
        except KeyError:
            raise BlobNotFoundError(f"no blob {key}") from None

    def exists(self, key: str) -> bool:
        return check_key(key) in self.blobs

    def delete(self, key: str) -> None:
        self.blobs.pop(check_key(key), None)
        self.content_types.pop(key, None)

    def presigned_get(self, key: str, expires: int = 300) -> str | None:
        check_key(key)
        return None


class S3BlobStore:
    """One bucket per area; server-side encryption requested on every put."""

    def __init__(self, client: Any, bucket: str, *, sse: str | None = "AES256"):
        self.client = client
        self.bucket = bucket
        self.sse = sse

    def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            region = self.client.meta.region_name
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if region and region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                self.client.create_bucket(**kwargs)
            except ClientError as exc:  # another process made it first: fine
                code = (exc.response.get("Error") or {}).get("Code")
                if code != "BucketAlreadyOwnedByYou":
                    raise
            self.client.put_public_access_block(
                Bucket=self.bucket,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )

    def put(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": check_key(key),
            "Body": data,
            "ContentType": content_type,
        }
        if self.sse:
            kwargs["ServerSideEncryption"] = self.sse
        self.client.put_object(**kwargs)

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise BlobNotFoundError(f"no blob {key}") from None
            raise
        body: bytes = response["Body"].read()
        return body

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in (
                "NoSuchKey",
                "404",
                "NotFound",
            ):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def presigned_get(self, key: str, expires: int = 300) -> str | None:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": check_key(key)},
            ExpiresIn=expires,
        )
        return url


def s3_client(
    endpoint: str | None, region: str, access_key: str | None, secret_key: str | None
) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(
            retries={"max_attempts": 5, "mode": "standard"},
            s3={"addressing_style": "path"},
            signature_version="s3v4",
        ),
    )


def open_store(settings: Any, area: str) -> BlobStore:
    """The store for one area (originals, redacted, previews) from settings."""
    if area not in AREAS:
        raise ValueError(f"unknown storage area {area!r}; one of {', '.join(AREAS)}")
    if settings.uses_s3:
        client = s3_client(
            settings.s3_endpoint,
            settings.s3_region,
            settings.s3_access_key,
            settings.s3_secret_key,
        )
        store = S3BlobStore(client, settings.s3_buckets[area], sse=settings.s3_sse)
        store.ensure_bucket()
        return store
    return FilesystemBlobStore(Path(settings.data_dir) / "blobs" / area)
