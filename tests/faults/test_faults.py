"""Issue 15 §1: N photo posts through every service as its own processes while the
broker, the database, S3 and each worker fail in turn; nothing lost, nothing live
twice, nothing stuck, every dead letter explained, the audit trail whole.

Runs on a private RabbitMQ node and a private PostgreSQL cluster started for it (the
machine's shared ones are never stopped), a moto S3 server behind a proxy that can
refuse connections, and the platform sandboxes in this process. ``FAULTS_POSTS``
(default 200) sets N; docs/faults.md lists the other knobs and how to read the table.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.config import SERVICES
from tests.conftest import REPO, free_port, unavailable
from tests.e2e.journey import SCHOOL, TRAIL, Staff, enrol_device, wait_for
from tests.faults import harness, load
from tests.faults.faults import (
    KillOnAnswer,
    Schedule,
    declare_tap,
    queue_depths,
    republish,
)

POSTS = int(os.environ.get("FAULTS_POSTS", "200"))
DEVICES = int(os.environ.get("FAULTS_DEVICES", "4"))
# Uploads are spread over this long (default: about the time redaction needs).
UPLOAD_SECONDS = float(
    os.environ.get("FAULTS_UPLOAD_SECONDS", str(max(90, POSTS * 0.9)))
)
DRAIN_SECONDS = float(os.environ.get("FAULTS_DRAIN_SECONDS", "600"))
GAP_SECONDS = float(os.environ.get("FAULTS_GAP_SECONDS", "6"))
# Accounts per post (of the four; posts showing the pupil always go to all four).
ACCOUNTS_PER_POST = int(os.environ.get("FAULTS_ACCOUNTS_PER_POST", "2"))
# Redaction workers (the one CPU-bound service; kill -9 hits the first).
REDACTION_WORKERS = int(os.environ.get("FAULTS_REDACTION_WORKERS", "2"))
# "1": the same load without any fault (a control run, to compare timings).
NO_FAULTS = os.environ.get("FAULTS_OFF") == "1"
TAP = "faults.tap"
WORKER_QUEUES = ["intake", "redaction", "consent", "approval", "publishing", "audit"]
# A dead letter a fault run may leave, with why it is not a fault of the system:
# (service, error class, text in the detail) -> explanation. Anything else fails.
EXPLAINED: dict[tuple[str, str, str], str] = {}


@dataclass
class System:
    stack: harness.Stack
    rabbit: harness.PrivateRabbit
    postgres: harness.PrivatePostgres
    proxy: harness.FlakyProxy
    boxes: Any
    ledger: harness.Ledger
    passwords: dict[str, str]
    run: str
    hooks: dict[str, KillOnAnswer] = field(default_factory=dict)


@pytest.fixture()
def system(tmp_path: Path, faces_dir: Path) -> Iterator[System]:
    if os.environ.get("FAULTS_WORK_DIR"):  # logs kept where pytest will not rotate them
        tmp_path = Path(tempfile.mkdtemp(dir=os.environ["FAULTS_WORK_DIR"]))
        print(f"logs in {tmp_path}")
    missing = harness.rabbitmq_missing() or harness.postgres_missing()
    if missing:
        unavailable(
            f"the fault suite needs a private RabbitMQ and PostgreSQL: {missing}"
        )
    from cryptography.fernet import Fernet
    from moto.server import ThreadedMotoServer

    from safepost import demo
    from safepost.sandboxes import run as sandboxes_run

    run = uuid.uuid4().hex[:6]
    for orphan in harness.reap_orphans():
        print(f"stopped the private {orphan} of an earlier run that was killed")
    rabbit = harness.PrivateRabbit()
    postgres = harness.PrivatePostgres()
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    stops: list[Any] = [rabbit.stop, postgres.stop]
    stack: harness.Stack | None = None
    try:
        rabbit.start()
        postgres.start()
        moto.start()
        stops.insert(0, moto.stop)
        proxy = harness.FlakyProxy(moto_port)
        stops.insert(0, proxy.close)
        boxes = sandboxes_run.start(demo.SCHOOLS)
        stops.insert(0, boxes.stop)
        ledger = harness.Ledger(run)
        harness.count_posts(boxes, ledger)
        hooks = {
            "x": KillOnAnswer(boxes.x, "POST", "/2/tweets"),
            "linkedin": KillOnAnswer(boxes.linkedin, "POST", "/rest/posts"),
        }
        dbs = harness.create_databases(postgres.admin_url, [*SERVICES, "identity"])
        publishing_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
        env.update({f"{n.upper()}_DATABASE_URL": url for n, url in dbs.items()})
        env.update(
            {
                "AMQP_URL": rabbit.url,
                "S3_ENDPOINT": proxy.url,
                "S3_ACCESS_KEY": "testing",
                "S3_SECRET_KEY": "testing",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "S3_BUCKET_PREFIX": f"faults-{run}",
                "SAFEPOST_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
                "SAFEPOST_DATA_DIR": str(tmp_path / "var"),
                "PUBLISH_ROOT": str(tmp_path / "published"),
                "SECURE_COOKIES": "0",
                "PYTHONPATH": str(REPO),
                "LOG_LEVEL": "INFO",
                "SAFEPOST_TOKEN_KEYS": Fernet.generate_key().decode(),
                "PUBLIC_URL": f"http://127.0.0.1:{publishing_port}",
                "OPENBLAS_NUM_THREADS": "1",
                "OMP_NUM_THREADS": "1",
                **boxes.env(),
                "PUBLISH_WAIT_SECONDS": "2",
            }
        )
        for command in (["migrate"], ["seed-demo"]):
            done = subprocess.run(
                [str(harness.BIN / "safepost"), *command],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert done.returncode == 0, (
                f"safepost {command}: {done.stdout}{done.stderr}"
            )
        harness.connect_sandbox_accounts(env, boxes, list(demo.SCHOOLS))
        creds = (tmp_path / "var" / "demo-credentials.txt").read_text().splitlines()
        passwords = {line.split("\t")[0]: line.split("\t")[1] for line in creds}
        stack = harness.Stack(tmp_path, env)
        stops.insert(0, stack.stop)
        for service in SERVICES:
            workers = REDACTION_WORKERS if service == "redaction" else 1
            for number in range(1, workers + 1):
                stack.worker(service, number)
            stack.api(
                service,
                f"services.{service}.app:create_app()",
                f"/{service}",
                publishing_port if service == "publishing" else None,
            )
        stack.api("portal", "safepost.portal:create_app()", "")

        def healthy() -> bool:
            stack.check_alive()
            for url in stack.urls.values():
                try:
                    if requests.get(f"{url}/readyz", timeout=2).status_code != 200:
                        return False
                except requests.RequestException:
                    return False
            return all(
                harness.queue_consumers(rabbit.pika_url, q) >= 1
                for q in ("redaction", "consent", "approval", "publishing", "audit")
            )

        wait_for(healthy, "every API ready and every worker consuming", timeout=240)
        declare_tap(rabbit.pika_url, TAP, keep=300)
        stack.supervise()
        yield System(
            stack, rabbit, postgres, proxy, boxes, ledger, passwords, run, hooks
        )
    except BaseException:
        if stack is not None:
            for name in stack.procs:
                print(f"--- {name} ---\n{stack.tail(name)}")
        print(f"--- rabbitmq ---\n{rabbit.log_tail()}")
        print(f"--- postgres ---\n{postgres.log_tail()}")
        raise
    finally:
        with harness.cleanup(*stops):
            pass


# setup (~2 min) + uploads + the faults' last pass + drain + checks, with room
@pytest.mark.timeout(int(360 + 2 * UPLOAD_SECONDS + DRAIN_SECONDS + 180))
def test_posts_survive_broker_database_storage_and_worker_faults(
    system: System, faces_dir: Path
) -> None:
    s = system
    started = time.monotonic()
    staff = {
        name: Staff(s.stack.urls, name, s.passwords[name]).sign_in()
        for name in (
            "admin.oakfield",
            "teacher.oakfield",
            "approver.oakfield",
            "it-auditor.oakfield",
            "trust-it",
        )
    }
    admin, approver = staff["admin.oakfield"], staff["approver.oakfield"]
    imported = admin.call(
        "POST", "consent", f"/api/schools/{SCHOOL}/import", data=load.PUPIL_CSV.encode()
    )
    assert imported.status_code == 200, imported.text
    enrolled = admin.call(
        "POST",
        "consent",
        f"/api/schools/{SCHOOL}/pupils/{load.PUPIL}/enrolment",
        files=[
            (
                "photo",
                (
                    "o.jpg",
                    (faces_dir / "identity" / "obama.jpg").read_bytes(),
                    "image/jpeg",
                ),
            )
        ],
    )
    assert enrolled.status_code == 201, enrolled.text

    devices = []
    photos = load.Photos(faces_dir)
    uploads = load.Uploads()
    interval = UPLOAD_SECONDS / max(POSTS, 1)
    t0 = time.monotonic() + 2
    for d in range(DEVICES):
        teacher = Staff(
            s.stack.urls, "teacher.oakfield", s.passwords["teacher.oakfield"]
        )
        teacher.sign_in()
        teacher.device_token = enrol_device(
            staff["trust-it"], teacher, "teacher.oakfield"
        )
        indexes = [i for i in range(POSTS) if i % DEVICES == d]
        devices.append(
            load.Device(
                teacher,
                photos,
                indexes,
                s.run,
                t0,
                interval,
                uploads,
                ACCOUNTS_PER_POST,
            )
        )
    auto = load.Approver(approver, s.run)
    withdrawn: dict[str, Any] = {}
    steps = fault_steps(s, staff, withdrawn)
    schedule = Schedule(
        steps=[] if NO_FAULTS else steps,
        once={"consent withdrawn for a shown pupil"},
        again=lambda: any(d.is_alive() for d in devices),
        t0=t0,
        gap=GAP_SECONDS,
    )
    progress = Progress(s, approver, uploads, t0)
    for device in devices:
        device.start()
    auto.start()
    schedule.start()
    progress.start()
    try:
        for device in devices:
            device.join()
        uploaded_at = time.monotonic() - t0
        schedule.join()
        faults_done_at = time.monotonic() - t0
        drained = drain(s, approver, withdrawn)
        drained_at = time.monotonic() - t0
    finally:
        schedule.stop.set()
        auto.stop.set()
        progress.stop.set()
    outcome = collect(s, staff, uploads, withdrawn)
    wall = time.monotonic() - started
    report(
        s,
        schedule,
        uploads,
        auto,
        outcome,
        drained,
        wall,
        uploaded_at,
        faults_done_at,
        drained_at,
    )

    assert not [f for f in schedule.done if f.error], "a fault could not be injected"
    assert outcome["refused"] == [], "uploads never accepted"
    assert outcome["lost"] == [], "posts lost"
    assert outcome["twice"] == [], "posts live (or made) twice on an account"
    assert outcome["stuck"] == [], "posts stuck in a non-final state"
    assert outcome["failed"] == [], "posts failed (no platform fault was injected)"
    assert outcome["unexplained_dlq"] == [], "dead letters nobody explained"
    assert outcome["verify_ok"], f"audit verify: {outcome['verify']}"
    assert outcome["untold"] == [], "posts whose story the audit trail lacks"
    if not NO_FAULTS:
        assert outcome["takedowns_expected"], "no post showing the pupil went live"
    assert outcome["takedowns_missing"] == [], "takedowns not done"


class Progress(threading.Thread):
    """Prints every ``every`` seconds: uploads, posts by status, queue depths."""

    def __init__(
        self,
        s: System,
        staff: Staff,
        uploads: load.Uploads,
        t0: float,
        every: float = 20,
    ):
        super().__init__(daemon=True, name="progress")
        self.s, self.staff, self.uploads, self.t0 = s, staff, uploads, t0
        self.every = every
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                posts = load.all_posts(self.staff, self.s.run)
                status = Counter(p["status"] for p in posts.values())
                depths = queue_depths(self.s.rabbit.pika_url, WORKER_QUEUES)
            except Exception as exc:  # noqa: BLE001 - only a progress line
                print(f"[{time.monotonic() - self.t0:5.0f} s] progress: {exc!r}")
                continue
            print(
                f"[{time.monotonic() - self.t0:5.0f} s] uploaded "
                f"{len(self.uploads.items)}; {dict(sorted(status.items()))}; "
                f"queues {depths}",
                flush=True,
            )


# -- the faults ------------------------------------------------------------------


def fault_steps(
    s: System, staff: dict[str, Staff], withdrawn: dict[str, Any]
) -> list[tuple[str, Any]]:
    stack = s.stack

    def rabbit_outage() -> str:
        s.rabbit.stop_app()
        time.sleep(10)
        s.rabbit.start_app()
        return "broker away 10 s (stop_app/start_app)"

    def kill(name: str) -> Any:
        def step() -> str:
            pid = stack.pid(name)
            stack.kill(name)
            time.sleep(2)
            stack.restart(name)
            return f"pid {pid} killed, restarted after 2 s"

        return step

    def duplicates() -> str:
        sent = republish(s.rabbit.pika_url, TAP, limit=300)
        return f"{sent} envelopes published again"

    def pg_restart() -> str:
        s.postgres.down("fast")
        time.sleep(5)
        s.postgres.up()
        return "pg_ctl stop -m fast, down 5 s, start"

    def s3_outage() -> str:
        before = s.proxy.refused
        s.proxy.outage(10)
        return f"S3 refused for 10 s ({s.proxy.refused - before} connections refused)"

    def kill_on_answer(platform: str, delay: float) -> Any:
        def step() -> str:
            name = "publishing-worker"
            hook = s.hooks[platform]
            with stack.lock:
                stack.procs[name].expected_down = True
            pid = stack.pid(name)
            hook.arm(lambda: pid, delay)
            if not hook.fired.wait(120):
                hook.disarm()
                with stack.lock:
                    stack.procs[name].expected_down = False
                raise AssertionError(f"no post was made on {platform} within 120 s")
            stack.procs[name].popen.wait(timeout=30)
            time.sleep(2)
            stack.restart(name)
            when = (
                "before its answer left"
                if delay <= 0
                else f"{delay * 1000:.0f} ms after"
            )
            return f"pid {pid} killed {when} {platform}'s create; restarted after 2 s"

        return step

    def withdraw() -> str:
        approver = staff["approver.oakfield"]

        def pupil_live() -> list[str]:
            posts = load.all_posts(approver, s.run)
            return [
                pid
                for pid, p in posts.items()
                if p["status"] == "published" and shows_pupil(approver, pid)
            ]

        live = wait_for(pupil_live, "a post showing the pupil to go live", timeout=240)
        withdrawn["at"] = time.monotonic()
        withdrawn["live_before"] = live
        r = staff["admin.oakfield"].call(
            "POST",
            "consent",
            f"/api/schools/{SCHOOL}/pupils/{load.PUPIL}/consents",
            json={"purpose": "social_media", "status": "withdrawn", "method": "online"},
        )
        assert r.status_code == 201, r.text
        return f"{len(live)} post(s) showing {load.PUPIL} were live"

    return [
        ("RabbitMQ stopped 10 s", rabbit_outage),
        ("kill -9 redaction worker", kill("redaction-worker")),
        ("duplicate deliveries", duplicates),
        ("kill -9 consent worker", kill("consent-worker")),
        ("PostgreSQL restarted", pg_restart),
        ("kill -9 approval worker", kill("approval-worker")),
        ("S3 unavailable 10 s", s3_outage),
        (
            "kill -9 publishing between X's answer and its marker",
            kill_on_answer("x", 0),
        ),
        ("consent withdrawn for a shown pupil", withdraw),
        ("kill -9 audit worker", kill("audit-worker")),
        ("kill -9 intake worker", kill("intake-worker")),
        (
            "kill -9 publishing just after LinkedIn answered",
            kill_on_answer("linkedin", 0.03),
        ),
        ("duplicate deliveries", duplicates),
    ]


_SHOWN: dict[str, bool] = {}


def shows_pupil(staff: Staff, post_id: str) -> bool:
    """Whether the post's newest rendering shows the pupil (cached once published)."""
    if post_id in _SHOWN:
        return _SHOWN[post_id]
    r = staff.call("GET", "approval", f"/api/posts/{post_id}")
    if not r.ok:
        return False
    body = r.json()
    shown = any(
        f.get("pupil_id") == load.PUPIL and not f.get("masked")
        for photo in body.get("photos", [])
        for f in photo.get("faces", [])
    )
    if body.get("status") == "published":
        _SHOWN[post_id] = shown
    return shown


# -- drain and outcome -----------------------------------------------------------


def drain(s: System, approver: Staff, withdrawn: dict[str, Any]) -> bool:
    """Wait until every post is final, every takedown done and every queue empty."""

    def settled() -> bool:
        try:
            posts = load.all_posts(approver, s.run)
        except requests.RequestException:
            return False
        if any(p["status"] not in load.FINAL for p in posts.values()):
            return False
        for post_id in withdrawn.get("live_before", []):
            if set(load.states(posts[post_id]).values()) != {"taken_down"}:
                return False
        try:
            depths = queue_depths(s.rabbit.pika_url, WORKER_QUEUES)
        except Exception:  # noqa: BLE001 - the broker may be coming back
            return False
        return all(v <= 0 for v in depths.values())

    deadline = time.monotonic() + DRAIN_SECONDS
    while time.monotonic() < deadline:
        if settled():
            time.sleep(3)  # what is in flight reaches audit
            return settled()
        time.sleep(2)
    return False


def collect(
    s: System, staff: dict[str, Staff], uploads: load.Uploads, withdrawn: dict[str, Any]
) -> dict[str, Any]:
    from shared import dlq

    approver = staff["approver.oakfield"]
    posts = load.all_posts(approver, s.run)
    by_token = {p["caption"][1:7]: p for p in posts.values()}
    out: dict[str, Any] = {"posts": len(posts), "uploads": len(uploads.items)}
    out["refused"] = [u.index for u in uploads.items.values() if u.post_id is None]
    out["resumed"] = [u.index for u in uploads.items.values() if u.resumed]
    ids = {u.post_id for u in uploads.items.values() if u.post_id}
    live = harness.live_posts(s.boxes, s.ledger)
    platforms = ("facebook", "instagram", "x", "linkedin")
    account_of = {p: f"{SCHOOL}-{p}" for p in platforms}
    lost, twice, stuck, failed = [], [], [], []
    status = Counter(p["status"] for p in posts.values())
    for post_id in sorted(ids - set(posts)):
        lost.append(f"{post_id}: receipt given, approval never heard of it")
    for tok, post in sorted(by_token.items()):
        if post["status"] not in load.FINAL:
            stuck.append(
                f"{tok} {post['post_id']}: {post['status']} {load.states(post)}"
            )
        if post["status"] == "failed":
            failed.append(f"{tok}: {post['reason']}")
        targets = load.states(post)
        for platform in platforms:
            made = s.ledger.made[(platform, tok)]
            if made > 1 or live[(platform, tok)] > 1:
                twice.append(
                    f"{tok} on {platform}: made {made}, live {live[(platform, tok)]}"
                )
            if account_of[platform] not in post["accounts"]:
                if made:
                    twice.append(f"{tok} made on {platform}, which it did not target")
                continue
            state = targets.get(account_of[platform], "")
            if post["status"] == "published" and made == 0:
                lost.append(f"{tok}: published, never made on {platform} ({state})")
            if (
                post["status"] == "published"
                and state != "taken_down"
                and not live[(platform, tok)]
            ):
                lost.append(f"{tok}: published, not live on {platform} ({state})")
    out.update(lost=lost, twice=twice, stuck=stuck, failed=failed, status=status)

    expected = list(withdrawn.get("live_before", []))
    missing = []
    for post_id in expected:
        post = posts[post_id]
        tok = post["caption"][1:7]
        states = load.states(post)
        for platform in platforms:
            if (
                states.get(account_of[platform]) != "taken_down"
                or live[(platform, tok)]
            ):
                missing.append(
                    f"{tok} on {platform}: {states.get(account_of[platform])}, "
                    f"live {live[(platform, tok)]}"
                )
    # a post showing the pupil that went live after the withdrawal would be a leak
    for tok, post in by_token.items():
        if post["post_id"] in expected or post["status"] != "published":
            continue
        if int(tok[1:]) % 10 == 3 and shows_pupil(approver, post["post_id"]):
            missing.append(f"{tok}: live showing {load.PUPIL} after the withdrawal")
    out.update(takedowns_expected=expected, takedowns_missing=missing)

    dead = []
    for service in WORKER_QUEUES:
        try:
            found = dlq.messages(s.rabbit.url, service)
        except Exception as exc:  # noqa: BLE001 - a service without a DLQ
            if "NOT_FOUND" in str(exc) or "404" in str(exc):
                continue
            raise
        for m in found:
            detail = _generic(str(m["detail"]).splitlines()[0] if m["detail"] else "")
            dead.append((service, str(m["type"]), str(m["error"]), detail))
    out["dlq"] = dead
    out["unexplained_dlq"] = [
        d
        for d in dead
        if not any(d[0] == k[0] and d[2] == k[1] and k[2] in d[3] for k in EXPLAINED)
    ]

    verify = subprocess.run(
        [str(harness.BIN / "safepost"), "audit", "verify"],
        cwd=REPO,
        env=s.stack.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out["verify"] = (verify.stdout + verify.stderr).strip()[-400:]
    out["verify_ok"] = verify.returncode == 0
    records = load.audit_records(staff["it-auditor.oakfield"])
    out["audit_records"] = len(records)
    story: dict[str, set[str]] = {}
    downs: dict[str, set[str]] = {}
    for r in records:
        if r.get("post_id"):
            story.setdefault(r["post_id"], set()).add(r["type"])
            data = r.get("data") or {}
            if r["type"] == "delivery.updated" and data.get("state") == "taken_down":
                downs.setdefault(r["post_id"], set()).add(str(data.get("account_id")))
    untold = []
    for post_id, post in posts.items():
        tok = post["caption"][1:7]
        if post["status"] == "published":
            lacking = TRAIL - story.get(post_id, set())
            if lacking:
                untold.append(f"{tok}: no {', '.join(sorted(lacking))}")
    for post_id in expected:
        if downs.get(post_id, set()) != set(account_of.values()):
            untold.append(
                f"{posts[post_id]['caption'][1:7]}: taken down on "
                f"{sorted(downs.get(post_id, set()))} per the trail"
            )
    out["untold"] = untold
    out["exits"] = {
        p.name: p.unexpected_exits for p in s.stack.procs.values() if p.unexpected_exits
    }
    return out


def _generic(detail: str) -> str:
    """A dead letter's detail without what differs per message (URLs, ids, ports),
    so that the table groups them by cause."""
    detail = re.sub(r'"?https?://[^\s"]*"?', "<url>", detail)
    detail = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "<id>", detail)
    return re.sub(r"port \d+", "port <n>", detail)[:160]


def report(
    s: System,
    schedule: Schedule,
    uploads: load.Uploads,
    auto: load.Approver,
    out: dict[str, Any],
    drained: bool,
    wall: float,
    uploaded_at: float,
    faults_done_at: float,
    drained_at: float,
) -> None:
    lines = [
        "",
        f"FAULT RUN {s.run}{' (CONTROL: NO FAULTS)' if NO_FAULTS else ''}: "
        f"{POSTS} posts from {DEVICES} devices, {ACCOUNTS_PER_POST} of "
        f"{len(load.ACCOUNTS)} accounts each, {REDACTION_WORKERS} redaction worker(s); "
        f"wall {wall:.0f} s (uploads done at "
        f"{uploaded_at:.0f} s, faults at {faults_done_at:.0f} s, drained at "
        f"{drained_at:.0f} s{'' if drained else ', DRAIN TIMED OUT'})",
        "",
        f"{'t (s)':>7}  {'took':>5}  fault / outcome",
    ]
    for f in schedule.done:
        lines.append(f"{f.at:7.1f}  {f.seconds:5.1f}  {f.name}: {f.error or f.note}")
    status = ", ".join(f"{k} {v}" for k, v in sorted(out["status"].items()))
    rows = [
        ("uploads accepted", f"{len(uploads.items) - len(out['refused'])}/{POSTS}"),
        ("uploads resumed after a lost answer", str(len(out["resumed"]))),
        (
            "upload answers",
            ", ".join(f"{k}x{v}" for k, v in sorted(uploads.answers.items())),
        ),
        ("approval decisions sent", f"{auto.decisions} ({dict(auto.answers)})"),
        ("posts by status", status),
        ("posts lost", str(len(out["lost"]))),
        ("posts live/made twice on an account", str(len(out["twice"]))),
        ("posts stuck non-final after drain", str(len(out["stuck"]))),
        ("posts failed", str(len(out["failed"]))),
        ("messages left in DLQs", str(len(out["dlq"]))),
        ("  of which unexplained", str(len(out["unexplained_dlq"]))),
        ("audit verify", "ok" if out["verify_ok"] else "FAILED"),
        ("audit records", str(out["audit_records"])),
        ("posts whose story the trail lacks", str(len(out["untold"]))),
        (
            "takedowns (pupil's posts live at withdrawal)",
            f"{len(out['takedowns_expected']) * 4 - len(out['takedowns_missing'])}"
            f"/{len(out['takedowns_expected']) * 4} done",
        ),
        ("unexpected process exits", str(sum(len(v) for v in out["exits"].values()))),
    ]
    lines += ["", *(f"  {k:<46} {v}" for k, v in rows)]
    for title, items in (
        ("LOST", out["lost"]),
        ("TWICE", out["twice"]),
        ("STUCK", out["stuck"]),
        ("FAILED", out["failed"]),
        ("TAKEDOWNS MISSING", out["takedowns_missing"]),
        ("STORY MISSING", out["untold"]),
    ):
        if items:
            lines.append(f"\n{title} ({len(items)}):")
            lines += [f"  {i}" for i in items[:40]]
    if out["dlq"]:
        lines.append(f"\nDLQ ({len(out['dlq'])}): service, type, error, detail")
        for (service, kind, error, detail), n in sorted(Counter(out["dlq"]).items()):
            why = next(
                (
                    v
                    for k, v in EXPLAINED.items()
                    if k[0] == service and k[1] == error and k[2] in detail
                ),
                "UNEXPLAINED",
            )
            lines.append(
                f"  {n:3d} x {service:<10} {kind:<26} {error:<24} {detail}  [{why}]"
            )
    for name, exits in out["exits"].items():
        lines.append(f"\n{name} exited unexpectedly:")
        lines += [f"  {e[:300]}" for e in exits]
    text = "\n".join(lines)
    print(text)
    path = os.environ.get("FAULTS_REPORT")
    if path:
        Path(path).write_text(text + "\n")
    sys.stdout.flush()
