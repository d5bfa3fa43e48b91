"""What every platform sandbox shares: a Flask app on loopback that keeps the posts it
received, answers with injected faults when told to, and adds simulated latency.

A sandbox implements only the subset of a platform's documented API that our adapter
uses, and checks the shape of every request (paths, auth header, parameters, bodies),
answering as the platform documents when a request is wrong. It is for ``make run``
(a newcomer sees a post go "live") and for tests (adapters talk to it over real HTTP).

Control routes (no auth, loopback only), the same on every sandbox:

- ``GET  /_sandbox/posts``  every live post as JSON (``{"posts": [...]}``);
- ``POST /_sandbox/faults`` ``{"fault": NAME, "match": "POST /path-regex", "times": N}``
  makes the next N matching requests answer with that fault; NAME is one of
  ``FAULTS``; each sandbox renders it in its platform's documented error format;
- ``POST /_sandbox/reset``  forget posts and faults;
- ``GET  /``               an HTML page listing the live posts with their images.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, make_server

# Faults a test (or a person trying things) can inject:
# expired_token: the platform's "token expired/revoked" answer (401 / Graph 190)
# rate_limited:  429 (or Graph's 4/17/32/613) with the platform's reset header
# server_error:  500 with the platform's error body (ambiguous on a create)
# timeout:       the answer never comes in time (the sandbox sleeps, then answers
#                normally: the call may have succeeded, as on the real platform)
# drop_after:    the request is carried out, then the connection is dropped
# malformed:     200 with a body that is not the documented JSON
# refuse:        the platform refuses the content (400 with its own message)
FAULTS = (
    "expired_token",
    "rate_limited",
    "server_error",
    "timeout",
    "drop_after",
    "malformed",
    "refuse",
)


@dataclass
class Fault:
    name: str
    method: str
    path: re.Pattern[str]
    times: int


@dataclass
class SandboxState:
    """Posts and faults of one sandbox; every access under ``lock``."""

    posts: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path)
    lock: threading.RLock = field(default_factory=threading.RLock)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self) -> int:
        with self.lock:
            return next(self.ids)


class Sandbox:
    """Base of a platform sandbox. Subclasses add their API routes to ``self.app``
    and call ``self.fault()`` first in each: a non-None name means answer with it."""

    name = "sandbox"
    timeout_seconds = 12.0  # how long a "timeout" fault holds the answer

    def __init__(self, latency: tuple[float, float] = (0.0, 0.0)):
        self.latency = latency
        self.state = SandboxState()
        self.app = Flask(f"sandbox-{self.name}")
        self.base_url = ""  # set by serve()
        self._install_control_routes()
        self.app.before_request(self._before)

    # -- faults and latency ------------------------------------------------------

    def inject(self, fault: str, match: str = ".*", times: int = 1) -> None:
        """The next ``times`` requests matching ``match`` ("METHOD /regex" or
        "/regex") answer with ``fault``."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault}; one of {', '.join(FAULTS)}")
        method, _, path = match.partition(" ") if " " in match else ("*", "", match)
        with self.state.lock:
            self.state.faults.append(
                Fault(fault, method.upper(), re.compile(path), times)
            )

    def fault(self) -> str | None:
        """The fault this request must answer with, if one was injected."""
        with self.state.lock:
            for f in self.state.faults:
                if f.times <= 0:
                    continue
                if f.method not in ("*", request.method):
                    continue
                if not f.path.search(request.path):
                    continue
                f.times -= 1
                return f.name
        return None

    def _before(self) -> None:
        if request.path.startswith("/_sandbox") or request.path == "/":
            return
        with self.state.lock:
            self.state.requests.append((request.method, request.path))
        low, high = self.latency
        if high > 0:
            time.sleep(random.uniform(low, high))  # noqa: S311 - simulated latency

    def hold(self) -> None:
        """For the ``timeout`` fault: hold the answer past any client's timeout."""
        time.sleep(self.timeout_seconds)

    # -- posts ---------------------------------------------------------------------

    def keep(self, post_id: str, post: dict[str, Any]) -> None:
        with self.state.lock:
            self.state.posts[post_id] = post

    def forget(self, post_id: str) -> bool:
        with self.state.lock:
            return self.state.posts.pop(post_id, None) is not None

    def live(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [dict(p, id=k) for k, p in self.state.posts.items()]

    # -- control routes -----------------------------------------------------------

    def _install_control_routes(self) -> None:
        app = self.app

        @app.get("/_sandbox/posts")
        def _posts() -> Any:
            return jsonify(posts=self.live())

        @app.post("/_sandbox/faults")
        def _faults() -> Any:
            body = request.get_json(force=True, silent=True) or {}
            try:
                self.inject(
                    str(body.get("fault", "")),
                    str(body.get("match", ".*")),
                    int(body.get("times", 1)),
                )
            except ValueError as exc:
                return jsonify(error=str(exc)), 400
            return jsonify(ok=True)

        @app.post("/_sandbox/reset")
        def _reset() -> Any:
            with self.state.lock:
                self.state.posts.clear()
                self.state.faults.clear()
                self.state.requests.clear()
            return jsonify(ok=True)

    # -- serving ------------------------------------------------------------------

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Running:
        """Serve on loopback in a daemon thread; ``Running.stop()`` ends it."""
        server = make_server(host, port, self.app, threaded=True)
        self.base_url = f"http://{host}:{server.server_port}"
        thread = threading.Thread(
            target=server.serve_forever, name=f"sandbox-{self.name}", daemon=True
        )
        thread.start()
        return Running(self, server, thread)


@dataclass
class Running:
    sandbox: Sandbox
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.sandbox.base_url

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


def page(
    title: str, posts: list[dict[str, Any]], render: Callable[[dict[str, Any]], str]
) -> Response:
    """A plain HTML page listing live posts (each rendered by ``render``, which must
    escape what it shows)."""
    from html import escape

    items = "\n".join(f"<article>{render(p)}</article>" for p in posts) or (
        "<p>No posts yet.</p>"
    )
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:1rem auto;"
        "padding:0 1rem}article{border:1px solid #ccc;border-radius:8px;padding:1rem;"
        "margin:1rem 0}img{max-width:100%;height:auto}</style>"
        f"<h1>{escape(title)}</h1><p>A local sandbox, not the real platform.</p>"
        f"{items}</html>"
    )
    return Response(body, mimetype="text/html")
