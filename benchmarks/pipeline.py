"""The whole pipeline (issue 15 section 2): upload -> awaiting approval, and approval
-> live, with every service as its own processes over RabbitMQ, PostgreSQL and S3
(``--mode processes``: the e2e process harness, its own databases and RabbitMQ vhost,
created here and removed afterwards) and embedded (``--mode embedded``: one process,
kombu's ``memory://``, SQLite, folders).

Posts of one photo each are uploaded over HTTP by a teacher on an enrolled device,
either at a steady rate (``--rate`` photos a minute; default 70% of what one redaction
worker alone can do) or all at once (a burst), with one and then two redaction
worker processes (``--workers 1,2``). An approver approves each post as soon as it
awaits approval (polled every 0.3 s); the post goes to the school's newsroom folder
(and, with ``--platforms``, to the sandboxed Facebook, X, LinkedIn and website too).

Measured per run, from approval's own history of each post (server times):
- upload -> awaiting approval: from the start of the upload request to approval's
  ``awaiting_approval`` step; p50, p95, the first and the last post, and throughput
  (posts per minute from the first upload to the last post awaiting approval);
- approval -> live: from the approver's decision request to approval's
  ``published`` step; p50, p95;
- ratio: a burst's time to the last post awaiting approval / the time redaction
  alone needs for the same photos with as many processes (target <= 1.4: the bus,
  the database and storage add little); at a steady rate, p50 / one photo's
  redaction time alone;
- queue depths (ready messages, sampled every 0.5 s) over time, and each post's
  latency against the ideal k x (one photo's redaction time) for a burst, plotted
  to a PNG (``--plot``, default var/bench/pipeline.png);
- messages left in dead-letter queues (should be 0).
``--lanes off`` runs the redaction worker as declared but with every type on its one
queue (consent's answers then wait behind the whole backlog of uploads: the "before");
``--lanes both`` measures each on a fresh system. "Redaction alone" runs the
redaction worker's two handlers (detect, then redact) in-process on the same photo,
with as many processes as workers, before the runs.

    python benchmarks/pipeline.py [--mode processes|embedded|both] [--photos 8]
        [--rate PER_MINUTE] [--patterns steady,burst] [--workers 1,2]
        [--lanes on|off|both] [--megapixels 0] [--threads 1] [--platforms]
        [--plot var/bench/pipeline.png] [--json FILE]
    python benchmarks/pipeline.py --smoke     # tiny N, processes: what CI runs

Needs RabbitMQ (and ``rabbitmqctl``) and PostgreSQL on 127.0.0.1 for the processes
mode, and the labelled photos (``SAFEPOST_FACES_DIR``, default ../shared/data/faces).
Exit status 1 if a post never went live or anything was dead-lettered.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import requests  # noqa: E402

from safepost import demo  # noqa: E402
from shared.config import SERVICES  # noqa: E402

BIN = Path(sys.executable).parent
PHOTO = "images/29_Students_Schoolkids_Students_Schoolkids_29_146.jpg"
SCHOOL = "oakfield"
PLATFORM_SUFFIXES = ("facebook", "x", "linkedin", "website")
AMQP_ADMIN = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
PG_ADMIN = os.environ.get(
    "TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SAMPLE_SECONDS = 0.5
POLL_SECONDS = 0.3
UPLOADERS = 4  # a burst is uploaded by this many clients at once
# ``--lanes off``: the redaction worker as the service declares it, but every type on
# its one queue (the measured "before": decisions wait behind the uploads).
ONE_QUEUE_WORKER = (
    "import dataclasses; from services.redaction import worker; "
    "from shared import runner; runner.run(dataclasses.replace(worker.SPEC, lanes={}))"
)
T0 = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - T0:5.0f} s] {text}", flush=True)


# -- the photo and redaction alone ---------------------------------------------------


def make_photo(faces_dir: Path, megapixels: float) -> bytes:
    """The labelled group photo as it is (0), or resized to ``megapixels``."""
    from PIL import Image

    path = faces_dir / "detection" / PHOTO
    if not megapixels:
        return path.read_bytes()
    source = Image.open(path).convert("RGB")
    width = round((megapixels * 1e6 * 4 / 3) ** 0.5)
    out = io.BytesIO()
    source.resize((width, round(width * 3 / 4)), Image.Resampling.LANCZOS).save(
        out, "JPEG", quality=90
    )
    return out.getvalue()


def redact_alone(data: bytes, detector: Any, encoder: Any, reader: Any) -> None:
    """The redaction worker's two handlers on one photo, stores in memory."""
    from services.redaction import adapters, domain, handlers
    from shared import contracts
    from shared.storage import MemoryBlobStore

    stores = {a: MemoryBlobStore() for a in ("originals", "redacted", "previews")}
    stores["originals"].put("originals/p/x.jpg", data)
    records, limits = adapters.MemoryPhotoRecords(), domain.Limits()
    post = contracts.PostSubmitted(
        post_id="p",
        school_id="s",
        author_id="a",
        accounts=["x"],
        photos=[
            contracts.PhotoRef(
                photo_id="x",
                original_key="originals/p/x.jpg",
                sha256="0" * 64,
                bytes=len(data),
            )
        ],
    )
    handlers.detect_faces(
        post,
        originals=stores["originals"],
        detector=detector,
        encoder=encoder,
        reader=reader,
        records=records,
        limits=limits,
    )
    [done] = handlers.redact_photo(
        contracts.FacesDecided(photo_id="x", post_id="p", school_id="s"),
        originals=stores["originals"],
        redacted=stores["redacted"],
        previews=stores["previews"],
        records=records,
        limits=limits,
    )
    assert isinstance(done, contracts.PhotoRedacted)


def _alone_process(
    path: str, threads: int, count: int, barrier: Any, results: Any
) -> None:
    """One process: warm up, wait for the others, then redact ``count`` photos."""
    import logging

    from services.redaction import adapters

    logging.disable(logging.CRITICAL)  # "tesseract is not installed", once a photo
    data = Path(path).read_bytes()
    detector = adapters.CenterFaceDetector(threads=threads)
    encoder, reader = adapters.FaceRecognitionEncoder(), adapters.TesseractTextReader()
    redact_alone(data, detector, encoder, reader)
    barrier.wait()
    started = time.time()
    for _ in range(count):
        redact_alone(data, detector, encoder, reader)
    results.put((started, time.time()))


def redaction_alone(
    photo: bytes, workers: list[int], threads: int, count: int
) -> dict[int, float]:
    """Seconds per photo with each number of processes redacting side by side
    (elapsed / photos done): the pace the pipeline is held to."""
    pace = {}
    ctx = multiprocessing.get_context("spawn")
    with tempfile.NamedTemporaryFile(suffix=".jpg") as file:
        file.write(photo)
        file.flush()
        for processes in sorted({1, *workers}):
            barrier, results = ctx.Barrier(processes), ctx.Queue()
            procs = [
                ctx.Process(
                    target=_alone_process,
                    args=(file.name, threads, count, barrier, results),
                )
                for _ in range(processes)
            ]
            for proc in procs:
                proc.start()
            times = [results.get(timeout=600) for _ in procs]
            for proc in procs:
                proc.join()
            took = max(e for _, e in times) - min(s for s, _ in times)
            pace[processes] = took / (count * processes)
    return pace


# -- clients -------------------------------------------------------------------------


@dataclass
class Staff:
    """Signs in at the portal and calls the services' JSON APIs."""

    urls: dict[str, str]  # "portal" and each service -> base URL
    username: str
    password: str
    token: str = ""
    device_token: str = ""
    session: requests.Session = field(default_factory=requests.Session)

    def sign_in(self) -> Staff:
        r = self.session.post(
            f"{self.urls['portal']}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=30,
        )
        r.raise_for_status()
        self.token = r.json()["token"]
        return self

    def call(self, method: str, service: str, path: str, **kw: Any) -> Any:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Accept": "application/json",
        }
        if self.device_token:
            headers["X-Device-Token"] = self.device_token
        return requests.request(
            method, f"{self.urls[service]}{path}", headers=headers, timeout=120, **kw
        )


def approve(approver: Staff, post_id: str) -> Any:
    """Look at the post, then approve exactly what it shows (each photo's revision
    and image hash): approval refuses a decision on anything else."""
    got = approver.call("GET", "approval", f"/api/posts/{post_id}")
    seen = {
        p["photo_id"]: {"revision": p["revision"], "sha256": p["sha256"]}
        for p in (got.json().get("photos", []) if got.ok else [])
    }
    return approver.call(
        "POST",
        "approval",
        f"/api/posts/{post_id}/decision",
        json={"approve": True, "reason": "", "seen": seen},
    )


def enrol_device(it: Staff, owner: Staff) -> str:
    """IT registers and approves a laptop for ``owner``, who enrols it."""
    made = it.call(
        "POST",
        "intake",
        "/api/devices",
        json={"school": SCHOOL, "owner": owner.username, "kind": "trust", "name": "B"},
    )
    made.raise_for_status()
    device = made.json()["device_id"]
    it.call("POST", "intake", f"/api/devices/{device}/approve").raise_for_status()
    code = it.call("POST", "intake", f"/api/devices/{device}/enrolment-code")
    enrolled = owner.call("POST", "intake", "/api/enrol", json=code.json())
    enrolled.raise_for_status()
    return str(enrolled.json()["token"])


@dataclass
class People:
    teacher: Staff
    approver: Staff


def people(urls: dict[str, str], passwords: dict[str, str]) -> People:
    def staff(name: str) -> Staff:
        return Staff(urls, name, passwords[name]).sign_in()

    teacher = staff(f"teacher.{SCHOOL}")
    teacher.device_token = enrol_device(staff("trust-it"), teacher)
    return People(teacher, staff(f"approver.{SCHOOL}"))


# -- the two ways of running the system ----------------------------------------------


class System:
    """What a run needs of a running system."""

    mode = ""
    lanes = True  # redaction's decisions on their own lane, as the service declares
    urls: dict[str, str]
    passwords: dict[str, str]

    def redaction_workers(self, count: int) -> None:
        raise NotImplementedError

    def depths(self) -> dict[str, int]:
        """Ready messages per queue (DLQs included)."""
        raise NotImplementedError

    def check(self) -> None:
        """Raise if a part of the system died."""


def wait_for(
    check: Callable[[], Any], what: str, timeout: float, every: float = 0.2
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Processes(System):
    """Every service's API (gunicorn) and worker as its own processes, as in
    tests/e2e/test_processes.py, on a vhost and databases of its own."""

    mode = "processes"

    def __init__(
        self, tmp: Path, env: dict[str, str], amqp_url: str, vhost: str, lanes: bool
    ):
        self.tmp = tmp
        self.lanes = lanes
        self.vhost = vhost
        self.env = env
        self.amqp_url = amqp_url
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.urls = {}
        self.passwords = {}
        self.redactors = 0
        self.queues: list[str] = []
        self._conn: Any = None
        self._lock = threading.Lock()  # one AMQP connection, several threads

    def spawn(
        self, name: str, args: list[str], extra: dict[str, str] | None = None
    ) -> None:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - lives with the process
        proc = subprocess.Popen(
            args, cwd=REPO, env={**self.env, **(extra or {})}, stdout=log, stderr=log
        )
        self.procs.append((name, proc))

    def api(self, service: str, factory: str, prefix: str, port: int) -> None:
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

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.tmp / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def check(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited ({proc.returncode}):\n{self.tail(name)}"
                )

    def stop(self) -> None:
        for _, proc in self.procs:
            proc.terminate()
        for _, proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self._conn is not None:
            with suppress(Exception):
                self._conn.release()

    def redaction_workers(self, count: int) -> None:
        while self.redactors < count:
            self.redactors += 1
            self.spawn(f"redaction-worker-{self.redactors}", self.redaction_command())
        wait_for(
            lambda: self._consumers("redaction") >= count,
            f"{count} redaction worker(s) consuming",
            timeout=120,
        )

    def redaction_command(self) -> list[str]:
        if self.lanes:
            return [sys.executable, "-m", "services.redaction.worker"]
        return [sys.executable, "-c", ONE_QUEUE_WORKER]

    def _channel(self) -> Any:
        from shared import bus

        if self._conn is None:
            self._conn = bus.connect(self.amqp_url, heartbeat=0)
        return self._conn.default_channel

    def _declare(self, queue: str) -> tuple[int, int]:
        """(ready messages, consumers) of a queue; (-1, 0) if it does not exist."""
        with self._lock:
            return self._declare_locked(queue)

    def _declare_locked(self, queue: str) -> tuple[int, int]:
        try:
            ok = self._channel().queue_declare(queue=queue, passive=True)
        except Exception:  # noqa: BLE001 - a missing queue closes the channel
            if self._conn is not None:
                with suppress(Exception):
                    self._conn.release()
            self._conn = None
            return -1, 0
        return int(ok.message_count), int(ok.consumer_count)

    def _consumers(self, queue: str) -> int:
        self.check()
        return self._declare(queue)[1]

    def discover_queues(self) -> None:
        """The vhost's queues, once (``rabbitmqctl list_queues``); sampled by AMQP."""
        done = subprocess.run(
            ["rabbitmqctl", "-q", "-p", self.vhost, "list_queues", "name"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        names = [n.strip() for n in done.stdout.splitlines()[1:] if n.strip()]
        self.queues = sorted(
            set(names) | set(SERVICES) | {f"{s}.dlq" for s in SERVICES}
        )

    def depths(self) -> dict[str, int]:
        got = {q: self._declare(q)[0] for q in self.queues}
        return {q: n for q, n in got.items() if n >= 0}


def rabbitmqctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rabbitmqctl", *args], capture_output=True, text=True, timeout=120
    )


@contextmanager
def vhost() -> Iterator[tuple[str, str]]:
    """A RabbitMQ vhost of our own (guest may use it), deleted afterwards."""
    if shutil.which("rabbitmqctl") is None:
        raise SystemExit("rabbitmqctl is needed to make this run's own vhost")
    name = f"safepost-bench-pipeline-{uuid.uuid4().hex[:10]}"
    made = rabbitmqctl("add_vhost", name)
    if made.returncode != 0:
        raise SystemExit(f"rabbitmqctl add_vhost failed: {made.stderr}")
    try:
        allowed = rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        if allowed.returncode != 0:
            raise SystemExit(f"rabbitmqctl set_permissions failed: {allowed.stderr}")
        scheme, rest = AMQP_ADMIN.split("//", 1)
        yield name, f"{scheme}//{rest.split('/', 1)[0]}/{name}"
    finally:
        rabbitmqctl("delete_vhost", name)


@contextmanager
def databases(names: list[str]) -> Iterator[dict[str, str]]:
    """A fresh PostgreSQL database per name, dropped afterwards."""
    import sqlalchemy as sa

    from shared.db import make_engine

    tag = uuid.uuid4().hex[:8]
    engine = make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    urls: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            for name in names:
                db = f"safepost_bench_pipeline_{name}_{tag}"
                conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
                urls[name] = PG_ADMIN.rsplit("/", 1)[0] + f"/{db}"
        yield urls
    finally:
        with engine.connect() as conn:
            for url in urls.values():
                db = url.rsplit("/", 1)[1]
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        engine.dispose()


@contextmanager
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@contextmanager
def sandboxes_if(wanted: bool) -> Iterator[Any]:
    if not wanted:
        yield None
        return
    from safepost.sandboxes import run as sandboxes_run

    boxes = sandboxes_run.start(demo.SCHOOLS)
    try:
        yield boxes
    finally:
        boxes.stop()


@contextmanager
def processes(
    tmp: Path, threads: int, platforms: bool, lanes: bool
) -> Iterator[Processes]:
    from cryptography.fernet import Fernet

    with (
        vhost() as (vhost_name, amqp_url),
        databases([*SERVICES, "identity"]) as dbs,
        s3_server() as s3,
        sandboxes_if(platforms) as boxes,
    ):
        publishing_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL")}
        env.update({f"{name.upper()}_DATABASE_URL": url for name, url in dbs.items()})
        env.update(
            {
                "AMQP_URL": amqp_url,
                "S3_ENDPOINT": s3,
                "S3_ACCESS_KEY": "testing",
                "S3_SECRET_KEY": "testing",
                "S3_BUCKET_PREFIX": f"bench-{uuid.uuid4().hex[:8]}",
                "SAFEPOST_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
                "SAFEPOST_DATA_DIR": str(tmp / "var"),
                "PUBLISH_ROOT": str(tmp / "published"),
                "SECURE_COOKIES": "0",
                "PYTHONPATH": str(REPO),
                "LOG_LEVEL": "INFO",
                "SAFEPOST_TOKEN_KEYS": Fernet.generate_key().decode(),
                "PUBLIC_URL": f"http://127.0.0.1:{publishing_port}",
                "PUBLISH_WAIT_SECONDS": "2",
                "REDACTION_THREADS": str(threads),
                "OPENBLAS_NUM_THREADS": "1",
                **(boxes.env() if boxes is not None else {}),
            }
        )
        system = Processes(tmp, env, amqp_url, vhost_name, lanes)
        try:
            # Each process migrates its own database as it starts (serialised by an
            # advisory lock); seed-demo migrates those it seeds, meanwhile. The
            # buckets are made first: processes starting together race to make them.
            from shared.config import Settings
            from shared.storage import AREAS, open_store

            for area in AREAS:
                open_store(Settings.from_env("redaction", env), area)
            for service in SERVICES:
                if service != "redaction":
                    system.spawn(
                        f"{service}-worker",
                        [sys.executable, "-m", f"services.{service}.worker"],
                    )
                port = publishing_port if service == "publishing" else free_port()
                system.api(
                    service, f"services.{service}.app:create_app()", f"/{service}", port
                )
            system.api("portal", "safepost.portal:create_app()", "", free_port())
            system.spawn("redaction-worker-1", system.redaction_command())
            system.redactors = 1
            done = subprocess.run(
                [str(BIN / "safepost"), "seed-demo"],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0:
                raise RuntimeError(f"safepost seed-demo: {done.stdout}{done.stderr}")
            say("processes: demo seeded")
            if boxes is not None:
                _connect_sandbox_accounts(env, boxes)
            creds = (tmp / "var" / "demo-credentials.txt").read_text().splitlines()
            system.passwords = {
                line.split("\t")[0]: line.split("\t")[1] for line in creds
            }
            system.redaction_workers(1)

            def ready() -> bool:
                system.check()
                for url in system.urls.values():
                    try:
                        if requests.get(f"{url}/readyz", timeout=2).status_code != 200:
                            return False
                    except requests.RequestException:
                        return False
                return all(
                    system._consumers(q) >= 1
                    for q in ("consent", "approval", "publishing", "audit")
                )

            wait_for(ready, "every API ready and every worker consuming", 240)
            system.discover_queues()
            yield system
        except BaseException:
            for name, _ in system.procs:
                print(f"--- {name} ---\n{system.tail(name)}", file=sys.stderr)
            raise
        finally:
            system.stop()


def _connect_sandbox_accounts(env: dict[str, str], boxes: Any) -> None:
    from services.publishing import bootstrap as publishing
    from shared.config import Settings

    ports = publishing.real_ports(Settings.from_env("publishing", env))
    demo.connect_platform_accounts(ports, SCHOOL, boxes)


class Embedded(System):
    """The embedded system (``safepost run``) in this process, served on loopback."""

    mode = "embedded"

    def __init__(self, system: Any, base: str, passwords: dict[str, str], lanes: bool):
        self.system = system
        self.lanes = lanes
        self.urls = {"portal": base, **{s: f"{base}/{s}" for s in SERVICES}}
        self.passwords = passwords
        self.extra = 0

    def redaction_workers(self, count: int) -> None:
        from safepost import embedded

        while 1 + self.extra < count:
            self.extra += 1
            spec = embedded.SPECS["redaction"]
            settings = self.system.settings["redaction"]
            worker = spec.build_worker(settings, spec.make_ports(settings))
            assert worker is not None
            self.system.workers[f"redaction#{self.extra + 1}"] = worker
            thread = threading.Thread(
                target=worker.run,
                name=f"worker-redaction-{self.extra + 1}",
                daemon=True,
            )
            thread.start()
            self.system.threads.append(thread)
            if not worker.ready.wait(60):
                raise RuntimeError("the extra redaction worker did not start")

    def depths(self) -> dict[str, int]:
        from kombu.transport import memory

        return {
            name: queue.qsize()
            for name, queue in list(memory.Channel.queues.items())
            if name.split(".")[0] in SERVICES
        }


@contextmanager
def embedded_system(
    tmp: Path, threads: int, platforms: bool, lanes: bool
) -> Iterator[Embedded]:
    from dataclasses import replace

    from werkzeug.serving import make_server

    from safepost import embedded

    declared = embedded.SPECS["redaction"]
    if not lanes:  # the measured "before": every type on redaction's one queue
        embedded.SPECS["redaction"] = replace(declared, lanes={})

    class Late:
        app: Any = None

        def __call__(self, environ: Any, start: Any) -> Any:
            return self.app(environ, start)

    late = Late()
    server = make_server("127.0.0.1", 0, late, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    with sandboxes_if(platforms) as boxes:
        env = {
            **os.environ,
            "PUBLIC_URL": base,
            "REDACTION_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS": "1",
            "LOG_LEVEL": "WARNING",
        }
        system = embedded.build(tmp / "var", env, sandboxes=boxes)
        system.sandboxes = None  # stopped by sandboxes_if
        late.app = system.wsgi
        created = demo.seed(system.ports, system.data_dir / "published", boxes)
        system.start_workers()
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            passwords = {u.username: u.password for u in created}
            yield Embedded(system, base, passwords, lanes)
        finally:
            server.shutdown()
            system.shutdown()
            embedded.SPECS["redaction"] = declared


# -- one run -------------------------------------------------------------------------


@dataclass
class Result:
    mode: str
    lanes: bool  # redaction's decisions on their own lane (as declared) or not
    workers: int
    pattern: str
    photos: int
    rate: float  # photos a minute offered (0: a burst)
    uploaded: dict[str, float] = field(default_factory=dict)  # post -> epoch s
    awaiting: dict[str, float] = field(default_factory=dict)
    decided: dict[str, float] = field(default_factory=dict)
    live: dict[str, float] = field(default_factory=dict)
    samples: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    refused: int = 0  # decisions answered other than 202 (tried again)
    not_live: dict[str, str] = field(default_factory=dict)  # post -> last status
    dead_letters: dict[str, int] = field(default_factory=dict)
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before, after
    started: float = 0.0

    @property
    def label(self) -> str:
        what = "burst" if self.pattern == "burst" else f"{self.rate:.0f}/min"
        queues = "decisions lane" if self.lanes else "one queue"
        return (
            f"{self.mode}, {queues}, {self.workers} worker(s), {what}, N={self.photos}"
        )

    def to_awaiting(self) -> list[float]:
        return [self.awaiting[p] - self.uploaded[p] for p in self.awaiting]

    def to_live(self) -> list[float]:
        return [self.live[p] - self.decided[p] for p in self.live if p in self.decided]


def pct(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


class Sampler(threading.Thread):
    def __init__(self, system: System, into: list[tuple[float, dict[str, int]]]):
        super().__init__(daemon=True, name="queue-sampler")
        self.system, self.into = system, into
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            with suppress(Exception):
                self.into.append((time.time(), self.system.depths()))
            self.done.wait(SAMPLE_SECONDS)


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def one_run(
    system: System, who: People, result: Result, photo: bytes, accounts: list[str]
) -> Result:
    """Upload ``result.photos`` posts (steady or burst), approve each as soon as it
    awaits approval, wait until every one is live (or failed), read the times."""
    n, tag = result.photos, uuid.uuid4().hex[:6]
    ids: list[str] = []
    lock = threading.Lock()
    finished = threading.Event()
    sampler = Sampler(system, result.samples)
    result.load = (os.getloadavg()[0], 0.0)
    result.started = time.time()
    sampler.start()

    def upload(number: int) -> None:
        started = time.time()
        r = who.teacher.call(
            "POST",
            "intake",
            "/api/posts",
            data={
                "caption": f"Pipeline {tag} {number}",
                "school": SCHOOL,
                "accounts": ",".join(accounts),
            },
            files=[("photos", (f"p{number}.jpg", photo, "image/jpeg"))],
        )
        if r.status_code != 201:
            raise RuntimeError(f"upload {number}: HTTP {r.status_code} {r.text}")
        with lock:
            result.uploaded[r.json()["post_id"]] = started
            ids.append(r.json()["post_id"])

    def approving() -> None:
        while not finished.is_set():
            got = who.approver.call(
                "GET", "approval", "/api/posts", params={"status": "awaiting_approval"}
            )
            if got.ok:
                with lock:
                    mine = set(result.uploaded)
                for post in got.json()["posts"]:
                    pid = post["post_id"]
                    if pid not in mine or pid in result.decided:
                        continue
                    at = time.time()
                    said = approve(who.approver, pid)  # looks, then approves it
                    if said.status_code == 200:
                        result.decided[pid] = at
                    else:
                        result.refused += 1
            finished.wait(POLL_SECONDS)

    approver = threading.Thread(target=approving, daemon=True, name="approver")
    approver.start()
    try:
        with ThreadPoolExecutor(UPLOADERS if result.pattern == "burst" else 2) as pool:
            futures = []
            start = time.time()
            for number in range(n):
                if result.pattern == "steady":
                    time.sleep(
                        max(0.0, start + number * 60 / result.rate - time.time())
                    )
                futures.append(pool.submit(upload, number))
            for future in futures:
                future.result()
        limit = 120 + n * 30
        wait_for(
            lambda: _all_final(system, who, ids),
            "every post live or failed",
            limit,
            every=1.0,
        )
        wait_for(  # audit and the rest caught up: the next run starts clean
            lambda: (
                not any(c for q, c in system.depths().items() if not q.endswith(".dlq"))
            ),
            "every queue drained",
            120,
            every=0.5,
        )
    finally:
        finished.set()
        approver.join(timeout=30)
        time.sleep(2 * SAMPLE_SECONDS)
        sampler.done.set()
        sampler.join(timeout=10)
    result.load = (result.load[0], os.getloadavg()[0])
    for pid in ids:
        detail = who.approver.call("GET", "approval", f"/api/posts/{pid}").json()
        steps: dict[str, float] = {}
        for step in detail["history"]:
            steps.setdefault(step["to"], epoch(step["at"]))
        if "awaiting_approval" in steps:
            result.awaiting[pid] = steps["awaiting_approval"]
        if detail["status"] == "published" and "published" in steps:
            result.live[pid] = steps["published"]
        else:
            result.not_live[pid] = detail["status"]
    last = result.samples[-1][1] if result.samples else {}
    result.dead_letters = {q: c for q, c in last.items() if q.endswith(".dlq") and c}
    return result


def _all_final(system: System, who: People, ids: list[str]) -> bool:
    system.check()
    pending = set(ids)
    for status in ("published", "failed", "rejected"):
        got = who.approver.call(
            "GET", "approval", "/api/posts", params={"status": status}
        )
        if got.ok:
            pending -= {p["post_id"] for p in got.json()["posts"]}
    return not pending


def warm_up(
    system: System, who: People, photo: bytes, workers: int, accounts: list[str]
) -> None:
    """One post per redaction worker through to live (models loaded), not counted."""
    one_run(
        system,
        who,
        Result(system.mode, system.lanes, workers, "burst", workers, 0.0),
        photo,
        accounts,
    )


# -- report --------------------------------------------------------------------------


def k_fit(r: Result, pace: dict[int, float]) -> float:
    """A burst: the median over k of (the k-th post's wait for the approver) / (k x
    one photo's redaction time with as many processes). About 1 when the k-th post
    reaches the approver after k photos' worth of redaction; about N/k when every
    post waits for the whole burst."""
    waits = sorted(r.to_awaiting())
    return statistics.median(
        w / (k * pace[r.workers]) for k, w in enumerate(waits, start=1)
    )


def table(results: list[Result], pace: dict[int, float]) -> str:
    head = (
        f"{'mode':<10} {'queues':<6} {'wk':>2} {'arrivals':>9} {'N':>4} "
        f"{'await/min':>9} {'p50':>6} {'p95':>6} {'first':>6} {'last':>6} "
        f"{'k-fit':>5} {'live p50':>8} {'p95':>6} {'ratio':>6} {'load':>9} {'DLQ':>4}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        waits = r.to_awaiting()
        lives = r.to_live()
        span = (max(r.awaiting.values()) - min(r.uploaded.values())) if waits else 0
        per_min = len(waits) / span * 60 if span else float("nan")
        firsts = sorted(waits)
        if r.pattern == "burst":
            ratio = span / (r.photos * pace[r.workers])
            fit = f"{k_fit(r, pace):>5.1f}"
        else:
            ratio = pct(waits, 50) / pace[1]
            fit = f"{'-':>5}"
        arrivals = "burst" if r.pattern == "burst" else f"{r.rate:.1f}/min"
        queues = "lane" if r.lanes else "one"
        lines.append(
            f"{r.mode:<10} {queues:<6} {r.workers:>2} {arrivals:>9} {r.photos:>4} "
            f"{per_min:>9.1f} {pct(waits, 50):>6.1f} {pct(waits, 95):>6.1f} "
            f"{(firsts[0] if firsts else float('nan')):>6.1f} "
            f"{(firsts[-1] if firsts else float('nan')):>6.1f} {fit} "
            f"{pct(lives, 50):>8.1f} {pct(lives, 95):>6.1f} {ratio:>5.2f}x "
            f"{r.load[0]:>4.1f}-{r.load[1]:<4.1f} {sum(r.dead_letters.values()):>4}"
        )
    return "\n".join(lines)


def plot(results: list[Result], pace: dict[int, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(results), 2, figsize=(13, 2.8 * len(results)), squeeze=False
    )
    for row, r in zip(axes, results, strict=True):
        depth, lag = row
        queues = sorted({q for _, d in r.samples for q in d if not q.endswith(".dlq")})
        times = [t - r.started for t, _ in r.samples]
        for q in queues:
            values = [d.get(q, 0) for _, d in r.samples]
            if any(values):
                depth.plot(times, values, label=q)
        depth.set_title(f"queue depth (ready) - {r.label}", fontsize=9)
        depth.set_xlabel("s since the first upload")
        depth.legend(fontsize=7, loc="upper right")
        order = sorted(r.awaiting, key=lambda p: r.awaiting[p])
        ks = list(range(1, len(order) + 1))
        lag.plot(
            ks,
            [r.awaiting[p] - r.uploaded[p] for p in order],
            "o-",
            ms=3,
            label="upload -> awaiting approval",
        )
        live = [
            r.live[p] - r.decided[p] for p in order if p in r.live and p in r.decided
        ]
        if live:
            lag.plot(ks[: len(live)], live, "s-", ms=3, label="approval -> live")
        if r.pattern == "burst":
            lag.plot(
                ks,
                [k * pace[r.workers] for k in ks],
                "k--",
                label="k x redaction alone",
            )
        lag.set_title(
            f"latency per post, in order reaching the approver - {r.label}", fontsize=9
        )
        lag.set_xlabel("k-th post")
        lag.set_ylabel("s")
        lag.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


# -- main ----------------------------------------------------------------------------


def _stop_on_sigterm() -> None:
    def raise_exit(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(f"signal {signum}")

    signal.signal(signal.SIGTERM, raise_exit)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mode", choices=("processes", "embedded", "both"), default="both")
    p.add_argument("--photos", type=int, default=8, help="posts (one photo each) a run")
    p.add_argument("--rate", type=float, help="steady arrivals, photos a minute")
    p.add_argument("--patterns", default="steady,burst")
    p.add_argument(
        "--lanes",
        choices=("on", "off", "both"),
        default="on",
        help="redaction's decisions lane as declared (on), or every type on its "
        "one queue (off: the measured before), or each in turn",
    )
    p.add_argument("--workers", default="1,2", help="redaction workers, e.g. 1,2")
    p.add_argument(
        "--megapixels",
        type=float,
        default=0.0,
        help="resize the photo (0: as it is, 1024x713)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="onnxruntime threads per redaction worker (REDACTION_THREADS)",
    )
    p.add_argument(
        "--alone",
        type=int,
        default=3,
        help="photos per process when timing redaction alone",
    )
    p.add_argument(
        "--platforms",
        action="store_true",
        help="also publish to the sandboxed Facebook, X, LinkedIn, website",
    )
    p.add_argument("--plot", type=Path, default=REPO / "var" / "bench" / "pipeline.png")
    p.add_argument("--json", type=Path, help="also write the raw times here")
    p.add_argument("--smoke", action="store_true", help="tiny N: well under 90 s")
    p.add_argument(
        "--faces-dir",
        type=Path,
        default=Path(
            os.environ.get("SAFEPOST_FACES_DIR", REPO.parent / "shared/data/faces")
        ),
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.mode, args.photos, args.patterns, args.workers = (
            "processes",
            2,
            "burst",
            "1",
        )
        args.alone = 1
    workers = [int(w) for w in args.workers.split(",")]
    patterns = [x for x in args.patterns.split(",") if x]
    modes = ["processes", "embedded"] if args.mode == "both" else [args.mode]
    accounts = [demo.folder_account(SCHOOL)]
    if args.platforms:
        accounts += [demo.platform_account(SCHOOL, s) for s in PLATFORM_SUFFIXES]
    _stop_on_sigterm()
    import logging

    logging.basicConfig(level=logging.WARNING)
    for noisy in ("werkzeug", "kombu", "services", "shared", "safepost"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    for handler in logging.getLogger().handlers:  # a machine without tesseract
        handler.addFilter(lambda r: "OCR unavailable" not in r.getMessage())
        handler.addFilter(lambda r: "tesseract is not" not in r.getMessage())

    photo = make_photo(args.faces_dir, args.megapixels)
    say(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    pace = redaction_alone(photo, workers, args.threads, args.alone)
    rate = args.rate or round(0.7 * 60 / pace[1], 1)
    say(
        "redaction alone: "
        + ", ".join(f"{w} process(es) {s:.2f} s/photo" for w, s in sorted(pace.items()))
        + f"; steady arrivals {rate:g}/min"
    )
    results: list[Result] = []
    variants = {"on": [True], "off": [False], "both": [False, True]}[args.lanes]
    for mode, lanes in [(m, v) for m in modes for v in variants]:
        with tempfile.TemporaryDirectory(prefix=f"safepost-pipeline-{mode}-") as tmp:
            started = time.monotonic()
            factory = processes if mode == "processes" else embedded_system
            with factory(Path(tmp), args.threads, args.platforms, lanes) as system:
                say(f"{mode}: started in {time.monotonic() - started:.0f} s")
                who = people(system.urls, system.passwords)
                for count in workers:
                    system.redaction_workers(count)
                    warm_up(system, who, photo, count, accounts)
                    say(f"{mode}: {count} redaction worker(s) warmed up")
                    for pattern in patterns:
                        result = Result(
                            mode,
                            lanes,
                            count,
                            pattern,
                            args.photos,
                            rate if pattern == "steady" else 0.0,
                        )
                        results.append(one_run(system, who, result, photo, accounts))
                        say(f"done: {result.label}")
                        print(table([result], pace).splitlines()[-1], flush=True)
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")
    print(
        "times in seconds; queues: redaction's decisions on their own lane or on its "
        "one queue;\nk-fit (burst): median over k of the k-th post's wait / (k x one "
        "photo's redaction alone), ~1 is the goal;\nratio: burst = time to the last "
        "awaiting approval / redaction alone for N photos; steady = p50 / one photo "
        "alone (target <= 1.4)"
    )
    print(table(results, pace))
    plot(results, pace, args.plot)
    print(f"plot: {args.plot}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1))
    bad = [r for r in results if r.not_live or r.dead_letters]
    for r in bad:
        print(f"PROBLEM in {r.label}: not live {r.not_live}; DLQs {r.dead_letters}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
