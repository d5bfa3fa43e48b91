"""The embedded system, seeded with the demo trust and served on a free port, with the
platform sandboxes running and the demo schools' platform accounts pointing at them
(as ``make run`` does)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from werkzeug.serving import make_server

from safepost import demo, embedded
from safepost.sandboxes import run as sandboxes_run


class Running(NamedTuple):
    base: str  # http://127.0.0.1:<port>
    passwords: dict[str, str]  # demo username -> password
    system: embedded.System  # system.sandboxes: the platform sandboxes


class _Late:
    """A WSGI app whose target is set once the system is built: the server's port
    must be known first (it is the system's public URL)."""

    app: Callable[..., Iterable[bytes]] | None = None

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> Any:
        assert self.app is not None
        return self.app(environ, start)


@pytest.fixture()
def publishing_env() -> dict[str, str]:
    """Extra settings for the system (a test module may override this fixture, e.g.
    with short ``PUBLISH_RETRY_SECONDS``)."""
    return {}


@pytest.fixture()
def running(tmp_path: Path, publishing_env: dict[str, str]) -> Iterator[Running]:
    sandboxes = sandboxes_run.start(demo.SCHOOLS)
    late = _Late()
    server = make_server("127.0.0.1", 0, late, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    env = {**os.environ, "PUBLIC_URL": base, **publishing_env}
    try:
        system = embedded.build(tmp_path / "var", env, sandboxes=sandboxes)
    except BaseException:
        sandboxes.stop()
        server.server_close()
        raise
    late.app = system.wsgi
    created = demo.seed(system.ports, system.data_dir / "published", sandboxes)
    system.start_workers()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Running(base, {u.username: u.password for u in created}, system)
    finally:
        server.shutdown()
        system.shutdown()
