"""What the fault suite runs the system on: a private RabbitMQ node, a private
PostgreSQL cluster, an S3 server behind a proxy that can refuse connections, the
platform sandboxes (counting every post they ever made and deleted) and every service
as its own processes, supervised so that a killed worker comes back.

The machine's shared RabbitMQ (5672) and PostgreSQL (5432) are never touched: other
tests and CI use them while this suite stops and restarts its own instances. Every
``start`` has a ``stop`` that the fixture calls whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import REPO, free_port

BIN = Path(sys.executable).parent


def _run(
    args: list[str], timeout: float = 120, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


RMQ_PREFIX = "safepost-faults-rmq-"
PG_PREFIX = "safepost-faults-pg-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans() -> list[str]:
    """Stop the private instances of an earlier run whose test process is gone
    (killed before its teardown ran); never one that a live run owns."""
    reaped = []
    tmp = Path(tempfile.gettempdir())
    for folder in sorted(tmp.glob(f"{RMQ_PREFIX}*")) + sorted(
        tmp.glob(f"{PG_PREFIX}*")
    ):
        try:
            owner = (folder / "owner").read_text().split()
            if _alive(int(owner[0])):
                continue
        except (OSError, ValueError, IndexError):
            continue
        if folder.name.startswith(RMQ_PREFIX) and len(owner) > 1:
            env = {**os.environ, "RABBITMQ_NODENAME": owner[1]}
            with contextlib.suppress(Exception):
                _run(["rabbitmqctl", "-q", "-n", owner[1], "stop"], timeout=60, env=env)
        elif (folder / "data" / "postmaster.pid").exists():
            bindir = postgres_bindir()
            as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
            with contextlib.suppress(Exception):
                _run(
                    [
                        *as_user,
                        f"{bindir}/pg_ctl",
                        "-D",
                        str(folder / "data"),
                        "-m",
                        "immediate",
                        "stop",
                    ],
                    timeout=60,
                )
        shutil.rmtree(folder, ignore_errors=True)
        reaped.append(folder.name)
    return reaped


# -- RabbitMQ --------------------------------------------------------------------


def rabbitmq_missing() -> str | None:
    """Why a private RabbitMQ node cannot be started here (None: it can)."""
    for tool in ("rabbitmq-server", "rabbitmqctl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


class PrivateRabbit:
    """A RabbitMQ node of our own: its own node name, AMQP and distribution ports,
    data and log folders, no plugins, no config shared with the machine's node."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=RMQ_PREFIX))
        self.node = f"safepost-faults-{secrets.token_hex(3)}@localhost"
        (self.dir / "owner").write_text(f"{os.getpid()} {self.node}\n")
        self.port = free_port()
        self.dist_port = free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"  # kombu's form
        self.pika_url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            "loopback_users.guest = true\n"
            "log.console = false\n"
        )
        (self.dir / "rabbitmq-env.conf").write_text("")  # not the machine's /etc one
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": (
                "-kernel inet_dist_use_interface {127,0,0,1}"
            ),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        if os.geteuid() == 0:  # the Debian wrapper runs the node as user rabbitmq
            shutil.chown(self.dir, "rabbitmq", "rabbitmq")
            for path in self.dir.iterdir():
                shutil.chown(path, "rabbitmq", "rabbitmq")
        self.dir.chmod(0o755)

    def ctl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return _run(
            ["rabbitmqctl", "-q", "-n", self.node, *args],
            timeout=timeout,
            env=self.env,
            cwd=self.dir,
        )

    def start(self) -> None:
        started = _run(["rabbitmq-server", "-detached"], env=self.env, cwd=self.dir)
        assert started.returncode == 0, started.stdout + started.stderr
        self.await_up(timeout=90)

    def await_up(self, timeout: float) -> None:
        def up() -> bool:
            done = self.ctl("await_startup", "--timeout", "30", timeout=40)
            return done.returncode == 0 and port_open(self.port)

        wait_until(up, f"RabbitMQ node {self.node}", timeout)

    def stop_app(self) -> None:
        done = self.ctl("stop_app")
        assert done.returncode == 0, done.stdout + done.stderr

    def start_app(self) -> None:
        done = self.ctl("start_app")
        assert done.returncode == 0, done.stdout + done.stderr
        self.await_up(timeout=60)

    def stop(self) -> None:
        """Stop the node (kill it if it will not stop) and remove its folders."""
        self.ctl("stop", timeout=60)
        pid_file = self.dir / "rabbit.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pid_file.read_text().strip())
            for _ in range(40):
                os.kill(pid, 0)
                time.sleep(0.25)
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        logs = sorted((self.dir / "log").glob("*.log"))
        if not logs:
            return ""
        return "\n".join(logs[0].read_text(errors="replace").splitlines()[-lines:])


# -- PostgreSQL ------------------------------------------------------------------


def postgres_bindir() -> Path | None:
    """The newest PostgreSQL server binaries on this machine (initdb, pg_ctl)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: (
            int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def postgres_missing() -> str | None:
    bindir = postgres_bindir()
    if bindir is None or not (bindir / "initdb").exists():
        return "PostgreSQL's initdb/pg_ctl are not installed"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "runuser is missing (initdb refuses to run as root)"
    return None


class PrivatePostgres:
    """A PostgreSQL cluster of our own (initdb into a temporary folder, its own port
    and socket folder, trust auth on loopback), run as the postgres OS user when we
    are root since PostgreSQL refuses root."""

    def __init__(self) -> None:
        bindir = postgres_bindir()
        assert bindir is not None
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix=PG_PREFIX))
        (self.dir / "owner").write_text(f"{os.getpid()}\n")
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.sock.mkdir()
        self.port = free_port()
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            for path in (self.dir, self.sock):
                shutil.chown(path, "postgres", "postgres")
        self.dir.chmod(0o755)
        self.options = (
            f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 "
            "-c max_connections=300 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off"
        )

    def pg_ctl(
        self, *args: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return _run(
            [*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), *args],
            timeout=timeout,
        )

    def start(self) -> None:
        made = _run(
            [
                *self.as_user,
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            timeout=180,
        )
        assert made.returncode == 0, made.stdout + made.stderr
        self.up()

    def up(self) -> None:
        done = self.pg_ctl(
            "-l",
            str(self.dir / "postgres.log"),
            "-w",
            "-t",
            "60",
            "-o",
            self.options,
            "start",
        )
        assert done.returncode == 0, done.stdout + done.stderr + self.log_tail()

    def down(self, mode: str = "fast") -> None:
        done = self.pg_ctl("-w", "-t", "60", "-m", mode, "stop")
        assert done.returncode == 0, done.stdout + done.stderr

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.pg_ctl("-w", "-t", "30", "-m", "immediate", "stop", timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        path = self.dir / "postgres.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def create_databases(admin_url: str, names: list[str]) -> dict[str, str]:
    """One database per service (and identity), as in production."""
    import sqlalchemy as sa

    from shared.db import make_engine

    engine = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    urls = {}
    with engine.connect() as conn:
        for name in names:
            db = f"safepost_faults_{name}_{uuid.uuid4().hex[:6]}"
            conn.execute(sa.text(f'CREATE DATABASE "{db}"'))
            urls[name] = admin_url.rsplit("/", 1)[0] + f"/{db}"
    engine.dispose()
    return urls


# -- S3 behind a proxy that can go away ------------------------------------------


class FlakyProxy:
    """A loopback TCP proxy in front of the S3 server. ``outage(seconds)`` makes it
    drop every open connection and refuse new ones (accept, then close at once) for
    that long, as a stopped server would look, without losing the server's data."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.down = threading.Event()
        self.closing = threading.Event()
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.refused = 0
        self.thread = threading.Thread(
            target=self._accept, daemon=True, name="s3-proxy"
        )
        self.thread.start()

    def _accept(self) -> None:
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down.is_set():
                self.refused += 1
                with contextlib.suppress(OSError):
                    client.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0"
                    )
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self.lock:
                self.open.discard(src)
                self.open.discard(dst)

    def outage(self, seconds: float) -> None:
        self.down.set()
        with self.lock:
            live = list(self.open)
        for s in live:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        try:
            time.sleep(seconds)
        finally:
            self.down.clear()

    def close(self) -> None:
        self.closing.set()
        self.listener.close()


# -- the platform sandboxes, counted ---------------------------------------------

TOKEN = re.compile(r"\[(F\d{5})-([0-9a-f]{6})\]")


@dataclass
class Ledger:
    """Every post a sandbox made and deleted, by (platform, post token)."""

    run: str
    made: Counter[tuple[str, str]] = field(default_factory=Counter)
    deleted: Counter[tuple[str, str]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def token(self, post: dict[str, Any]) -> str | None:
        found = TOKEN.search(str(post.get("text") or post.get("caption") or ""))
        return found.group(1) if found and found.group(2) == self.run else None


def count_posts(boxes: Any, ledger: Ledger) -> None:
    """Record every post each sandbox keeps or forgets (by platform and token)."""
    for sandbox in (boxes.graph, boxes.x, boxes.linkedin, boxes.webhook):
        posts = sandbox.state.posts

        def keep(
            post_id: str,
            post: dict[str, Any],
            _keep: Any = sandbox.keep,
            _name: str = sandbox.name,
        ) -> None:
            _keep(post_id, post)
            token = ledger.token(post)
            if token:
                with ledger.lock:
                    ledger.made[(str(post.get("platform") or _name), token)] += 1

        def forget(
            post_id: str,
            _forget: Any = sandbox.forget,
            _posts: dict[str, Any] = posts,
            _name: str = sandbox.name,
        ) -> bool:
            post = dict(_posts.get(post_id) or {})
            gone = bool(_forget(post_id))
            token = ledger.token(post)
            if gone and token:
                with ledger.lock:
                    ledger.deleted[(str(post.get("platform") or _name), token)] += 1
            return gone

        sandbox.keep = keep  # type: ignore[method-assign]
        sandbox.forget = forget  # type: ignore[method-assign]


def live_posts(boxes: Any, ledger: Ledger) -> Counter[tuple[str, str]]:
    """(platform, token) -> how many copies are live now."""
    live: Counter[tuple[str, str]] = Counter()
    for sandbox in (boxes.graph, boxes.x, boxes.linkedin, boxes.webhook):
        for post in sandbox.live():
            token = ledger.token(post)
            if token:
                live[(str(post.get("platform") or sandbox.name), token)] += 1
    return live


# -- every service as its own processes, supervised -------------------------------


@dataclass
class Proc:
    name: str
    args: list[str]
    extra: dict[str, str]
    popen: subprocess.Popen[bytes]
    expected_down: bool = False
    started: float = field(default_factory=time.monotonic)
    starts: int = 1
    unexpected_exits: list[str] = field(default_factory=list)


class Stack:
    """The services' APIs (gunicorn, one worker process each) and workers. A
    supervisor thread restarts any process that exits: a kill -9 by a fault step,
    or an unexpected exit (recorded, with the tail of its log)."""

    def __init__(self, tmp: Path, env: dict[str, str]):
        self.tmp = tmp
        self.env = env
        self.procs: dict[str, Proc] = {}
        self.urls: dict[str, str] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.supervisor: threading.Thread | None = None

    def _popen(
        self, name: str, args: list[str], extra: dict[str, str]
    ) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        try:
            return subprocess.Popen(
                args,
                cwd=REPO,
                env={**self.env, **extra},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()

    def spawn(
        self, name: str, args: list[str], extra: dict[str, str] | None = None
    ) -> None:
        extra = extra or {}
        self.procs[name] = Proc(name, args, extra, self._popen(name, args, extra))

    def worker(self, service: str, number: int = 1) -> None:
        name = f"{service}-worker" + (f"-{number}" if number > 1 else "")
        self.spawn(name, [sys.executable, "-m", f"services.{service}.worker"])

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
                "8",
                "--timeout",
                "120",
                factory,
            ],
            {"SCRIPT_NAME": prefix} if prefix else None,
        )
        self.urls[service] = f"http://127.0.0.1:{port}{prefix}"

    def pid(self, name: str) -> int:
        return int(self.procs[name].popen.pid)

    def kill(self, name: str) -> None:
        """kill -9 the process; it stays down until ``restart``."""
        with self.lock:
            proc = self.procs[name]
            proc.expected_down = True
            proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait(timeout=30)

    def restart(self, name: str) -> None:
        with self.lock:
            proc = self.procs[name]
            assert proc.popen.poll() is not None, f"{name} is still running"
            proc.popen = self._popen(name, proc.args, proc.extra)
            proc.started = time.monotonic()
            proc.starts += 1
            proc.expected_down = False

    def supervise(self, delay: float = 1.0) -> None:
        def loop() -> None:
            while not self.stopping.wait(delay):
                with self.lock:
                    for proc in self.procs.values():
                        code = proc.popen.poll()
                        if code is None or proc.expected_down or self.stopping.is_set():
                            continue
                        up = time.monotonic() - proc.started
                        proc.unexpected_exits.append(
                            f"exit {code} at {time.strftime('%H:%M:%S')} after "
                            f"{up:.0f} s up: "
                            + self.tail(proc.name, 3).replace("\n", " | ")
                        )
                        proc.popen = self._popen(proc.name, proc.args, proc.extra)
                        proc.started = time.monotonic()
                        proc.starts += 1

        self.supervisor = threading.Thread(target=loop, daemon=True, name="supervisor")
        self.supervisor.start()

    def check_alive(self) -> None:
        for proc in self.procs.values():
            if proc.popen.poll() is not None:
                code = proc.popen.returncode
                raise AssertionError(
                    f"{proc.name} exited ({code}):\n{self.tail(proc.name)}"
                )

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.tmp / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            procs = [p.popen for p in self.procs.values()]
        for popen in procs:
            if popen.poll() is None:
                popen.terminate()
        for popen in procs:
            try:
                popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(timeout=15)


def queue_consumers(amqp_url: str, queue: str) -> int:
    import pika

    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as conn:
        try:
            ok = conn.channel().queue_declare(queue=queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return 0
        return int(ok.method.consumer_count)


def connect_sandbox_accounts(
    env: dict[str, str], boxes: Any, schools: list[str]
) -> None:
    """The demo schools' accounts on the sandboxes, connected with the tokens the
    sandboxes issued (stored sealed in publishing's database)."""
    from safepost import demo
    from services.publishing import bootstrap as publishing
    from shared.config import Settings

    ports = publishing.real_ports(Settings.from_env("publishing", env))
    for slug in schools:
        demo.connect_platform_accounts(ports, slug, boxes)


@contextlib.contextmanager
def cleanup(*stops: Callable[[], None]) -> Iterator[None]:
    """Run every stop (in order) whatever happens; errors are printed, not raised
    over the test's own failure."""
    try:
        yield
    finally:
        for stop in stops:
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 - teardown must go on
                print(f"teardown: {stop!r} failed: {exc!r}")
