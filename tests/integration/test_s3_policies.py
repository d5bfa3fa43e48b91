"""The compose MinIO policies (deploy/minio/policies/<service>.json) against an S3 API
server that enforces them: each service's credentials let it do what its code does and
nothing more; the redaction worker's retention sweep really deletes an original.

The server is moto in its own process with IAM access control switched on (moto's
``INITIAL_NO_AUTH_ACTION_COUNT``, set to 0 through ``/moto-api/reset-auth`` once the
buckets and users exist): a process of its own, so the session's unchecked moto server
(``s3_endpoint``) is not affected. Each service gets an IAM user whose only policy is
its JSON file, verbatim (MinIO policies are AWS IAM syntax). The stores are the apps'
own (``S3BlobStore`` over ``s3_client``), built directly: moto calls HeadBucket
``s3:HeadBucket`` where AWS and MinIO check ``s3:ListBucket``, so ``ensure_bucket`` is
not exercised here.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from services.redaction import adapters
from services.redaction.bootstrap import MIGRATIONS, Ports, sweep_originals
from shared import contracts, db
from shared.storage import S3BlobStore, s3_client
from tests.conftest import REPO, free_port, port_open
from tests.support.bus import InMemoryBus
from tests.unit.redaction.fakes import (
    NOW,
    FakeDetector,
    FakeEncoder,
    handle,
    jpeg_bytes,
)

POLICIES = REPO / "deploy" / "minio" / "policies"
SERVICES = ("intake", "redaction", "approval", "publishing")
AREAS = ("originals", "redacted", "previews")
REGION = "us-east-1"  # deploy/env/common.env
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def bucket(area: str) -> str:
    return f"safepost-{area}"


@dataclass
class Minio:
    """The enforcing S3 server and one set of keys per user."""

    endpoint: str
    keys: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)

    def store(self, user: str, area: str) -> S3BlobStore:
        access, secret = self.keys[user]
        client = s3_client(self.endpoint, REGION, access, secret)
        return S3BlobStore(client, bucket(area))


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "setup", "AWS_SECRET_ACCESS_KEY": "x"}
    env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)  # unchecked until set up
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while not port_open("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("moto server did not start")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def policy(service: str) -> str:
    return (POLICIES / f"{service}.json").read_text()


@pytest.fixture(scope="module")
def minio(server: str) -> Minio:
    """The three buckets, a user per service with its compose policy, an admin; then
    every request is authenticated and authorised."""
    import boto3

    session = boto3.Session(
        aws_access_key_id="setup", aws_secret_access_key="x", region_name=REGION
    )
    s3 = session.client("s3", endpoint_url=server)
    iam = session.client("iam", endpoint_url=server)
    for area in AREAS:
        s3.create_bucket(Bucket=bucket(area))
    found = Minio(server)
    for user, document in [(s, policy(s)) for s in SERVICES] + [
        ("admin", json.dumps(ADMIN_POLICY))
    ]:
        iam.create_user(UserName=user)
        iam.put_user_policy(UserName=user, PolicyName=user, PolicyDocument=document)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        found.keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
    enabled = requests.post(f"{server}/moto-api/reset-auth", data=b"0", timeout=10)
    enabled.raise_for_status()

    # Enforcement is on: a key no user holds is refused.
    stranger = s3_client(server, REGION, "AKIASTRANGER0000000", "x")
    with pytest.raises(ClientError) as caught:
        stranger.get_object(Bucket=bucket("previews"), Key="x")
    assert caught.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    return found


def denied(call: Any, *args: Any) -> bool:
    try:
        call(*args)
    except ClientError as exc:
        code: str = exc.response["Error"]["Code"]
        return code == "AccessDenied"
    return False


def a_key(area: str) -> str:
    return f"{area}/post-{uuid.uuid4().hex[:8]}/{uuid.uuid4().hex}.jpg"


def seeded(minio: Minio, area: str) -> str:
    key = a_key(area)
    minio.store("admin", area).put(key, b"seed", "image/jpeg")
    return key


def redaction_ports(minio: Minio, tmp_path: Path, bus: InMemoryBus) -> Ports:
    """Redaction's ports as bootstrap.real_ports wires them, on redaction's S3
    credentials and an SQLite database; fakes only for the face models."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'redaction.db'}")
    db.migrate(engine, MIGRATIONS)
    return Ports(
        originals=minio.store("redaction", "originals"),
        redacted=minio.store("redaction", "redacted"),
        previews=minio.store("redaction", "previews"),
        records=adapters.SqlPhotoRecords(engine),
        detector=FakeDetector((40, 40, 100, 100)),
        encoder=FakeEncoder(),
        unit=partial(
            adapters.RedactionUnit,
            engine,
            adapters.outbox,
            producer="redaction",
            publisher=bus,
        ),
        publisher=bus,
        now=lambda: NOW,
    )


def test_redaction_reads_originals_writes_its_copies_and_sweeps_expired_originals(
    minio: Minio, tmp_path: Path
) -> None:
    bus = InMemoryBus()
    ports = redaction_ports(minio, tmp_path, bus)
    photo = jpeg_bytes()
    key = f"originals/post-1/{uuid.uuid4().hex}.jpg"
    minio.store("intake", "originals").put(key, photo, "image/jpeg")
    submitted = contracts.PostSubmitted(
        post_id="post-1",
        school_id="hill",
        author_id="teacher-1",
        accounts=["hill-facebook"],
        photos=[
            contracts.PhotoRef(
                photo_id="post-1-photo-0",
                original_key=key,
                sha256=hashlib.sha256(photo).hexdigest(),
                bytes=len(photo),
            )
        ],
    )
    [detected] = handle(submitted, ports)
    [redacted] = handle(
        contracts.FacesDecided(
            photo_id="post-1-photo-0",
            post_id="post-1",
            school_id="hill",
            decisions=[
                contracts.FaceDecision(index=0, show=False, reason="no_consent")
            ],
        ),
        ports,
    )
    handle(
        contracts.PostPublished(
            post_id="post-1",
            school_id="hill",
            account="hill-facebook",
            target="folder",
            location="/x",
        ),
        ports,
    )

    assert isinstance(detected, contracts.FacesDetected)
    assert isinstance(redacted, contracts.PhotoRedacted)
    admin_redacted = minio.store("admin", "redacted")
    assert admin_redacted.get(redacted.redacted_key).startswith(b"\xff\xd8")
    assert minio.store("admin", "previews").exists(redacted.preview_key)
    assert sweep_originals(ports) == 0  # still within retention
    assert minio.store("admin", "originals").exists(key)

    later = Ports(**{**ports.__dict__, "now": lambda: NOW + timedelta(days=31)})
    assert sweep_originals(later) == 1

    assert not minio.store("admin", "originals").exists(key)
    record = ports.records.find("post-1-photo-0")
    assert record is not None and record.original_deleted
    [gone] = bus.messages(contracts.OriginalDeleted)
    assert isinstance(gone, contracts.OriginalDeleted) and gone.original_key == key


def test_redaction_cannot_write_originals(minio: Minio) -> None:
    originals = minio.store("redaction", "originals")

    assert denied(originals.put, a_key("originals"), b"forged")


def test_intake_puts_reads_and_deletes_originals_but_reads_nothing_else(
    minio: Minio,
) -> None:
    originals = minio.store("intake", "originals")
    key = a_key("originals")

    originals.put(key, b"photo", "image/jpeg")
    assert originals.get(key) == b"photo"
    originals.delete(key)
    assert not originals.exists(key)
    for area in ("redacted", "previews"):
        store = minio.store("intake", area)
        assert denied(store.get, seeded(minio, area))
        assert denied(store.put, a_key(area), b"x")


def test_approval_reads_previews_only(minio: Minio) -> None:
    key = seeded(minio, "previews")
    store = minio.store("approval", "previews")
    assert store.get(key) == b"seed"
    assert denied(store.put, a_key("previews"), b"x")
    assert denied(store.delete, key)
    for area in ("originals", "redacted"):  # its code opens only previews
        assert denied(minio.store("approval", area).get, seeded(minio, area))


def test_publishing_reads_redacted_copies_only(minio: Minio) -> None:
    key = seeded(minio, "redacted")
    redacted = minio.store("publishing", "redacted")

    assert redacted.get(key) == b"seed"
    assert denied(redacted.put, a_key("redacted"), b"x")
    assert denied(redacted.delete, key)
    # Safeguarding: an original never leaves the originals store, nor a preview.
    assert denied(
        minio.store("publishing", "originals").get, seeded(minio, "originals")
    )
    assert denied(minio.store("publishing", "previews").get, seeded(minio, "previews"))
