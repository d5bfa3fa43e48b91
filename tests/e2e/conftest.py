"""The embedded system, seeded with the demo trust and served on a free port."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from werkzeug.serving import make_server

from safepost import demo, embedded


class Running(NamedTuple):
    base: str  # http://127.0.0.1:<port>
    passwords: dict[str, str]  # demo username -> password
    system: embedded.System


@pytest.fixture()
def running(tmp_path: Path) -> Iterator[Running]:
    system = embedded.build(tmp_path / "var")
    created = demo.seed(system.ports, system.data_dir / "published")
    system.start_workers()
    server = make_server("127.0.0.1", 0, system.wsgi, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Running(
            f"http://127.0.0.1:{server.server_port}",
            {u.username: u.password for u in created},
            system,
        )
    finally:
        server.shutdown()
        system.shutdown()
