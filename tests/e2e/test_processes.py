"""The production shape, without Docker.

Every service runs as its own OS processes (an API under gunicorn with its path prefix,
and a worker) over RabbitMQ, PostgreSQL (a database per service) and S3 (a moto server
on loopback).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.config import SERVICES
from tests.conftest import REPO, free_port
from tests.e2e.journey import assert_journey, run_journey, wait_for

BIN = Path(sys.executable).parent


def _create_databases(admin_url: str, names: list[str]) -> dict[str, str]:
    import sqlalchemy as sa

    from shared.db import make_engine

    engine = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    urls = {}
    with engine.connect() as conn:
        for name in names:
            db = f"safepost_e2e_{name}_{uuid.uuid4().hex[:8]}"
            conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
            urls[name] = admin_url.rsplit("/", 1)[0] + f"/{db}"
    engine.dispose()
    return urls


def _drop_databases(admin_url: str, urls: dict[str, str]) -> None:
    import sqlalchemy as sa

    from shared.db import make_engine

    engine = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for url in urls.values():
            conn.execute(
                sa.text(
                    f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'
                )
            )
    engine.dispose()


class Stack:
    def __init__(self, tmp: Path, env: dict[str, str]):
        self.tmp = tmp
        self.env = env
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.urls: dict[str, str] = {}
        self.sandboxes: Any = None

    def spawn(
        self, name: str, args: list[str], extra: dict[str, str] | None = None
    ) -> None:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            args,
            cwd=REPO,
            env={**self.env, **(extra or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append((name, proc))

    def api(
        self, service: str, factory: str, prefix: str, port: int | None = None
    ) -> None:
        port = port or free_port()
        self.spawn(
            f"{service}-api",
            [
                str(BIN / "gunicorn"),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--threads",
                "4",
                "--timeout",
                "120",
                factory,
            ],
            {"SCRIPT_NAME": prefix} if prefix else None,
        )
        self.urls[service] = f"http://127.0.0.1:{port}{prefix}"

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise AssertionError(
                    f"{name} exited ({proc.returncode}):\n{self.tail(name)}"
                )

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.tmp / f"{name}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )

    def stop(self) -> None:
        for _, proc in self.procs:
            proc.terminate()
        for _, proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _queue_consumers(amqp_url: str, queue: str) -> int:
    import pika

    params = pika.URLParameters(amqp_url)
    with pika.BlockingConnection(params) as conn:
        try:
            ok = conn.channel().queue_declare(queue=queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return 0
        return int(ok.method.consumer_count)


@pytest.fixture()
def broker(request: Any, amqp_vhost: str) -> Iterator[tuple[str, Any]]:
    """The shared RabbitMQ (a vhost of it), or, for a test that stops its broker
    (``indirect`` parameter "private"), a node of its own: other tests keep theirs."""
    if getattr(request, "param", None) != "private":
        yield amqp_vhost, None
        return
    from tests.faults.harness import PrivateRabbit

    rabbit = PrivateRabbit()
    rabbit.start()
    try:
        yield rabbit.pika_url, rabbit  # vhost "/" spelt so pika reads it too
    finally:
        rabbit.stop()


@pytest.fixture()
def stack(
    tmp_path: Path,
    broker: tuple[str, Any],
    postgres_admin_url: str,
    s3_endpoint: str,
) -> Iterator[tuple[Stack, dict[str, str]]]:
    amqp_vhost = broker[0]
    from cryptography.fernet import Fernet

    from safepost import demo
    from safepost.sandboxes import run as sandboxes_run

    boxes = sandboxes_run.start(demo.SCHOOLS)
    dbs = _create_databases(postgres_admin_url, [*SERVICES, "identity"])
    publishing_port = free_port()  # platforms fetch images from its signed links
    env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
    env.update({f"{name.upper()}_DATABASE_URL": url for name, url in dbs.items()})
    env.update(
        {
            "AMQP_URL": amqp_vhost,
            "S3_ENDPOINT": s3_endpoint,
            "S3_ACCESS_KEY": "testing",
            "S3_SECRET_KEY": "testing",
            "S3_BUCKET_PREFIX": f"e2e-{uuid.uuid4().hex[:8]}",
            "SAFEPOST_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
            "SAFEPOST_DATA_DIR": str(tmp_path / "var"),
            "PUBLISH_ROOT": str(tmp_path / "published"),
            "SECURE_COOKIES": "0",
            "PYTHONPATH": str(REPO),
            "LOG_LEVEL": "INFO",
            "SAFEPOST_TOKEN_KEYS": Fernet.generate_key().decode(),
            "PUBLIC_URL": f"http://127.0.0.1:{publishing_port}",
            # the platform sandboxes, running in this test process
            **boxes.env(),
            "PUBLISH_WAIT_SECONDS": "2",
        }
    )
    s = Stack(tmp_path, env)
    try:
        for command in (["migrate"], ["seed-demo"]):
            done = subprocess.run(
                [str(BIN / "safepost"), *command],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, (
                f"safepost {command}: {done.stdout}{done.stderr}"
            )
        _connect_sandbox_accounts(env, boxes)
        creds = (tmp_path / "var" / "demo-credentials.txt").read_text().splitlines()
        passwords = {line.split("\t")[0]: line.split("\t")[1] for line in creds}
        for service in SERVICES:
            s.spawn(
                f"{service}-worker",
                [sys.executable, "-m", f"services.{service}.worker"],
            )
            s.api(
                service,
                f"services.{service}.app:create_app()",
                f"/{service}",
                publishing_port if service == "publishing" else None,
            )
        s.api("portal", "safepost.portal:create_app()", "")

        def healthy() -> bool:
            s.check_alive()
            for url in s.urls.values():
                try:
                    if requests.get(f"{url}/readyz", timeout=2).status_code != 200:
                        return False
                except requests.RequestException:
                    return False
            return all(
                _queue_consumers(amqp_vhost, q) >= 1
                for q in ("redaction", "consent", "approval", "publishing", "audit")
            )

        wait_for(
            healthy, "every API to be ready and every worker consuming", timeout=180
        )
        s.sandboxes = boxes
        yield s, passwords
    except BaseException:
        for name, _ in s.procs:
            print(f"--- {name} ---\n{s.tail(name)}")
        raise
    finally:
        s.stop()
        boxes.stop()
        _drop_databases(postgres_admin_url, dbs)


def _connect_sandbox_accounts(env: dict[str, str], boxes: Any) -> None:
    """The demo schools' accounts on the sandboxes, connected with the tokens the
    sandboxes issued (stored encrypted in publishing's PostgreSQL database), as an
    admin's OAuth connection would have: what `make run` does embedded."""
    from safepost import demo
    from services.publishing import bootstrap as publishing
    from shared.config import Settings

    ports = publishing.real_ports(Settings.from_env("publishing", env))
    for slug in demo.SCHOOLS:
        demo.connect_platform_accounts(ports, slug, boxes)


def test_every_service_in_its_own_process_takes_a_photo_to_published_over_rabbitmq(
    stack: tuple[Stack, dict[str, str]], faces_dir: Path, tmp_path: Path
) -> None:
    s, passwords = stack
    started = time.monotonic()

    try:
        result = run_journey(s.urls, passwords, faces_dir, tmp_path / "published")
    except BaseException:
        for name, _ in s.procs:
            print(f"--- {name} ---\n{s.tail(name)}")
        raise

    assert_journey(result)
    verify = subprocess.run(
        [str(BIN / "safepost"), "audit", "verify"],
        cwd=REPO,
        env=s.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    print(
        f"\nprocesses journey: {result['seconds']:.2f} s from upload to published "
        f"({time.monotonic() - started:.1f} s with sign-ins)"
    )


def test_over_rabbitmq_a_withdrawal_takes_a_live_post_down_from_every_platform(
    stack: tuple[Stack, dict[str, str]], faces_dir: Path
) -> None:
    from tests.e2e.test_takedown import takedown_journey

    s, passwords = stack
    try:
        takedown_journey(s.urls, passwords, s.sandboxes, faces_dir)
    except BaseException:
        for name, _ in s.procs:
            print(f"--- {name} ---\n{s.tail(name)}")
        raise


@pytest.mark.parametrize("broker", ["private"], indirect=True)
def test_a_rabbitmq_restart_while_posts_go_out_loses_none_and_doubles_none(
    stack: tuple[Stack, dict[str, str]], broker: tuple[str, Any], faces_dir: Path
) -> None:
    """Issue 9 §6: RabbitMQ stops and starts while approved posts pass the final gate
    and go out to the sandboxes: each post is live exactly once on every account."""
    from tests.e2e.journey import SCHOOL, Staff, approve, enrol_device, labelled

    rabbit = broker[1]  # this test's own node: stopping it stops nobody else's
    s, passwords = stack
    boxes = s.sandboxes
    accounts = [f"{SCHOOL}-{p}" for p in ("facebook", "x", "linkedin", "website")]
    teacher = Staff(s.urls, "teacher.oakfield", passwords["teacher.oakfield"])
    approver = Staff(s.urls, "approver.oakfield", passwords["approver.oakfield"])
    trust_it = Staff(s.urls, "trust-it", passwords["trust-it"]).sign_in()
    teacher.sign_in()
    approver.sign_in()
    teacher.device_token = enrol_device(trust_it, teacher, "teacher.oakfield")
    photo, _ = labelled(faces_dir)
    captions = [f"Sports day, race {n}" for n in range(3)]
    posts = []
    for caption in captions:
        up = teacher.call(
            "POST",
            "intake",
            "/api/posts",
            data={"caption": caption, "school": SCHOOL, "accounts": ",".join(accounts)},
            files=[("photos", ("race.jpg", photo, "image/jpeg"))],
        )
        assert up.status_code == 201, up.text
        posts.append(up.json()["post_id"])

    def awaiting(post_id: str) -> bool:
        got = approver.call("GET", "approval", f"/api/posts/{post_id}")
        return bool(got.ok and got.json().get("status") == "awaiting_approval")

    for post_id in posts:
        wait_for(lambda p=post_id: awaiting(p), "the post to await approval")
    for post_id in posts:
        decided = approve(approver, post_id)
        assert decided.status_code == 200, decided.text
    rabbit.stop_app()
    try:
        time.sleep(8)
    finally:
        rabbit.start_app()

    def published() -> bool:
        states = []
        for post_id in posts:
            got = approver.call("GET", "approval", f"/api/posts/{post_id}")
            states.append(got.ok and got.json().get("status") == "published")
        return all(states)

    try:
        wait_for(published, "every post to be published after the restart", timeout=240)
    except BaseException:
        for name, _ in s.procs:
            print(f"--- {name} ---\n{s.tail(name)}")
        raise
    by_platform = boxes.by_platform()
    for platform in ("x", "linkedin", "webhook"):
        texts = [
            str(p.get("text") or p.get("caption") or "")
            for p in by_platform[platform].live()
        ]
        for caption in captions:
            assert sum(caption in t for t in texts) == 1, (platform, caption, texts)
    facebook = [str(p.get("text", "")) for p in boxes.graph.live()]
    for caption in captions:
        assert sum(caption in t for t in facebook) == 1, (caption, facebook)
