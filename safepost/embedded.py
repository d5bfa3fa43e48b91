"""The embedded system: every service in one process.

Each service's Flask app is mounted under its own prefix (werkzeug's
DispatcherMiddleware) beside the portal at ``/``; each service's worker runs as a thread
on kombu's ``memory://`` transport; SQLite and a local folder hold the data
(``SAFEPOST_DATA_DIR``, default ``./var``). What the memory transport cannot
do is listed in docs/architecture.md.

The platform sandboxes (``safepost.sandboxes.run``), when given, are started before
the services: their addresses reach publishing through its settings (API bases, web
URLs, the sandbox apps' OAuth settings), and they stop with the system.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.middleware.dispatcher import DispatcherMiddleware

from safepost import portal
from services.approval import app as approval_app
from services.approval import worker as approval_worker
from services.audit import app as audit_app
from services.audit import worker as audit_worker
from services.consent import app as consent_app
from services.consent import worker as consent_worker
from services.intake import app as intake_app
from services.intake import worker as intake_worker
from services.publishing import app as publishing_app
from services.publishing import worker as publishing_worker
from services.redaction import app as redaction_app
from services.redaction import worker as redaction_worker
from shared import bus
from shared.config import SERVICES, Settings
from shared.runner import ServiceSpec

if TYPE_CHECKING:
    from safepost.sandboxes.run import Sandboxes

logger = logging.getLogger(__name__)


# Every service, declared once (``services/<svc>/worker.py``), and its Flask app.
SPECS: dict[str, ServiceSpec[Any]] = {
    spec.name: spec
    for spec in (
        intake_worker.SPEC,
        consent_worker.SPEC,
        redaction_worker.SPEC,
        approval_worker.SPEC,
        publishing_worker.SPEC,
        audit_worker.SPEC,
    )
}
APPS: dict[str, Callable[[Any, Settings], Any]] = {
    "intake": intake_app.create_app,
    "consent": consent_app.create_app,
    "redaction": redaction_app.create_app,
    "approval": approval_app.create_app,
    "publishing": publishing_app.create_app,
    "audit": audit_app.create_app,
}


@dataclass
class System:
    """A running (or ready to run) embedded system."""

    data_dir: Path
    settings: dict[str, Settings]
    ports: dict[str, Any]
    apps: dict[str, Any]
    wsgi: Any
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    workers: dict[str, bus.Worker] = field(default_factory=dict)
    sandboxes: Sandboxes | None = None  # the platform sandboxes publishing talks to

    def start_workers(self, timeout: float = 30.0) -> None:
        """One worker thread per service; once every queue is declared (so nothing
        a background task publishes can miss a consumer), their background tasks."""
        for service in SERVICES:
            worker = SPECS[service].build_worker(
                self.settings[service], self.ports[service]
            )
            if worker is None:  # consumes nothing: only background tasks
                continue
            self.workers[service] = worker
            thread = threading.Thread(
                target=_run,
                args=(worker, self.stop),
                name=f"worker-{service}",
                daemon=True,
            )
            thread.start()
            self.threads.append(thread)
        for service, worker in self.workers.items():
            if not worker.ready.wait(timeout):
                raise RuntimeError(f"the {service} worker did not start")
        for service in SERVICES:
            for task in SPECS[service].tasks(self.ports[service]):
                t = threading.Thread(
                    target=task, args=(self.stop,), name=f"task-{service}", daemon=True
                )
                t.start()
                self.threads.append(t)

    def shutdown(self) -> None:
        self.stop.set()
        for worker in self.workers.values():
            worker.should_stop = True
        for thread in self.threads:
            thread.join(timeout=10)
        if self.sandboxes is not None:
            self.sandboxes.stop()


def _run(worker: bus.Worker, stop: threading.Event) -> None:
    def watch() -> None:
        stop.wait()
        worker.should_stop = True

    threading.Thread(target=watch, daemon=True).start()
    try:
        worker.run()
    except Exception:  # noqa: BLE001 - a dead worker thread must be loud, not silent
        logger.exception("worker %s stopped with an error", worker.service)


def build(
    data_dir: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    sandboxes: Sandboxes | None = None,
) -> System:
    """Settings, ports (databases migrated) and apps for every service, embedded;
    with ``sandboxes`` (already serving), publishing talks to them. Set
    ``PUBLIC_URL`` in ``env`` to the address the system is served at: Instagram's
    sandbox fetches images from its signed media links."""
    env = dict(os.environ if env is None else env)
    for key in ("AMQP_URL", "DATABASE_URL", "S3_ENDPOINT"):
        env.pop(key, None)  # the embedded system never talks to production services
    if sandboxes is not None:
        env.update(sandboxes.env())
    if data_dir is not None:
        env["SAFEPOST_DATA_DIR"] = str(data_dir)
    settings = {svc: Settings.from_env(svc, env) for svc in (*SERVICES, "identity")}
    root = settings["identity"].data_dir
    ports: dict[str, Any] = {}
    apps: dict[str, Any] = {}
    for service in SERVICES:
        ports[service] = SPECS[service].make_ports(settings[service])
        apps[service] = APPS[service](ports[service], settings[service])
    ports["identity"] = portal.real_ports(settings["identity"])
    apps["identity"] = portal.create_app(ports["identity"], settings["identity"])
    wsgi = DispatcherMiddleware(apps["identity"], {f"/{s}": apps[s] for s in SERVICES})
    return System(
        data_dir=root,
        settings=settings,
        ports=ports,
        apps=apps,
        wsgi=wsgi,
        sandboxes=sandboxes,
    )


def serve(system: System, host: str = "127.0.0.1", port: int = 8000) -> None:
    from werkzeug.serving import run_simple

    system.start_workers()
    try:
        run_simple(
            host,
            port,
            system.wsgi,
            threaded=True,
            use_reloader=False,
            use_debugger=False,
        )
    finally:
        system.shutdown()
