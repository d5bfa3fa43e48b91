"""Shared fixtures: real RabbitMQ, PostgreSQL and an S3 API server (moto) on loopback.

Tests needing RabbitMQ or PostgreSQL skip with the reason when absent, and fail instead
when REQUIRE_SERVICES=1 (what CI sets). Tests needing the labelled photos skip when
../shared/data/faces is absent (never copy them into the repo: licences).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FACES = Path(
    os.environ.get("SAFEPOST_FACES_DIR", REPO.parent / "shared" / "data" / "faces")
)
AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
PG_ADMIN_URL = os.environ.get(
    "TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def require_services() -> bool:
    return os.environ.get("REQUIRE_SERVICES") == "1"


def unavailable(reason: str) -> None:
    if require_services():
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def amqp_url() -> str:
    if not port_open("127.0.0.1", 5672):
        unavailable("RabbitMQ is not running on 127.0.0.1:5672")
    return AMQP_URL


@pytest.fixture()
def amqp_vhost(amqp_url: str) -> Iterator[str]:
    """A fresh RabbitMQ vhost for one test (created and deleted through rabbitmqctl),
    falling back to the default vhost with unique names if rabbitmqctl is not usable."""
    import shutil
    import subprocess

    ctl = shutil.which("rabbitmqctl")
    name = f"safepost-test-{uuid.uuid4().hex[:10]}"
    if ctl is None:
        yield amqp_url
        return
    made = subprocess.run([ctl, "add_vhost", name], capture_output=True, timeout=60)
    if made.returncode != 0:
        yield amqp_url
        return
    subprocess.run(
        [ctl, "set_permissions", "-p", name, "guest", ".*", ".*", ".*"],
        capture_output=True,
        timeout=60,
        check=True,
    )
    try:
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        subprocess.run([ctl, "delete_vhost", name], capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    if not port_open("127.0.0.1", 5432):
        unavailable("PostgreSQL is not running on 127.0.0.1:5432")
    return PG_ADMIN_URL


@pytest.fixture()
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy as sa

    from shared.db import make_engine

    name = f"safepost_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 API server (moto) listening on loopback for this test session."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not (FACES / "detection" / "annotations.json").exists():
        pytest.skip(f"labelled photos not found at {FACES} (the kit's data/faces)")
    return FACES


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """A headless Debian Chromium driven by Playwright (one per test session)."""
    from tests.browser import chromium_path, launch

    if chromium_path() is None:
        unavailable("Debian's chromium is not installed (`make test` installs it)")
    with launch() as b:
        yield b


@pytest.fixture(autouse=True)
def _fresh_memory_broker() -> None:
    """kombu's memory:// broker is process-wide: every test starts with an empty one, so
    queues and bindings left by an earlier test (e.g. the embedded system) cannot
    capture another test's messages."""
    from shared.testing import reset_memory_broker

    reset_memory_broker()
