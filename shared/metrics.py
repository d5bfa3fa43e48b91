"""Prometheus metrics for every API and worker (``prometheus_client``).

What is counted (each series labelled by the service that counts it, so the embedded
mode's one registry holds every service's series side by side):

- ``safepost_messages_total{service,type,outcome}`` and
  ``safepost_handler_seconds{service,type}``: each message a worker handled, with its
  outcome (``ok``, ``retried``, ``dead_lettered``, ``requeued``) and how long it took;
- ``safepost_message_lag_seconds{service,type}``: from the envelope's creation to the
  start of its handling (time spent queued, plus clock skew between hosts);
- ``safepost_publish_attempts_total{platform,outcome}``: each call to a platform to
  create a post (``ok`` or the kind of the platform's error);
- ``safepost_takedown_seconds{platform}``: from the consent change (or the request)
  to one copy being gone from the platform;
- ``safepost_http_requests_total{service,endpoint,method,status}`` and
  ``safepost_http_request_seconds{service,endpoint,method}``: the APIs' requests
  (``shared.web`` records them and serves ``GET /metrics``).

Who may read them: with ``METRICS_TOKEN`` set, only a scrape that sends it as
``Authorization: Bearer <token>`` (compared in constant time); without it, only a
scrape from a loopback or private address that did not come through a proxy (no
``Forwarded``/``X-Forwarded-For``/``X-Real-IP`` header: the nginx in front of the APIs
sets them, so ``/metrics`` is never readable from outside through it).

Processes: each process exports its own registry. Under gunicorn with several worker
processes that means a scrape sees one process's counts, unless
``PROMETHEUS_MULTIPROC_DIR`` names an empty, writable folder (set before the process
starts, emptied on every start): then every process writes its values there and any of
them answers with the sum (``prometheus_client``'s multiprocess mode).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

logger = logging.getLogger(__name__)

# No ``*_created`` series beside each counter and histogram: they double a scrape.
disable_created_metrics()  # type: ignore[no-untyped-call]

OUTCOMES = ("ok", "retried", "dead_lettered", "requeued")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
TOKEN_ENV = "METRICS_TOKEN"
PORT_ENV = "METRICS_PORT"
# The classic text format every Prometheus reads (our names need no UTF-8 escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Headers a reverse proxy adds: a request carrying one came from outside through it.
FORWARDED_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# 1 ms .. 60 s: a consent decision takes milliseconds, a redaction seconds.
HANDLER_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
)  # fmt: skip
# Queued time: milliseconds when idle, minutes in a burst, hours with a consumer down.
LAG_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
# A deletion takes seconds; a retried or manual one hours.
TAKEDOWN_BUCKETS = (
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    7200.0, 21600.0, 43200.0, 86400.0, 172800.0,
)  # fmt: skip
HTTP_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip

MESSAGES = Counter(
    "safepost_messages",
    "Messages a worker handled, by outcome",
    ["service", "type", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "safepost_handler_seconds",
    "Time a worker spent on one message",
    ["service", "type"],
    buckets=HANDLER_BUCKETS,
)
MESSAGE_LAG = Histogram(
    "safepost_message_lag_seconds",
    "From an envelope's creation to the start of its handling",
    ["service", "type"],
    buckets=LAG_BUCKETS,
)
PUBLISH_ATTEMPTS = Counter(
    "safepost_publish_attempts",
    "Calls to a platform to create a post, by outcome",
    ["platform", "outcome"],
)
TAKEDOWN_SECONDS = Histogram(
    "safepost_takedown_seconds",
    "From the consent change (or the request) to one copy gone from its platform",
    ["platform"],
    buckets=TAKEDOWN_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "safepost_http_requests",
    "HTTP requests an API answered",
    ["service", "endpoint", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "safepost_http_request_seconds",
    "Time an API took to answer",
    ["service", "endpoint", "method"],
    buckets=HTTP_BUCKETS,
)

# The names a scrape shows (a counter gets ``_total``, a histogram ``_bucket`` etc.).
SERIES = (
    "safepost_messages_total",
    "safepost_handler_seconds",
    "safepost_message_lag_seconds",
    "safepost_publish_attempts_total",
    "safepost_takedown_seconds",
    "safepost_http_requests_total",
    "safepost_http_request_seconds",
)


# --- what the services call ------------------------------------------------------


def message_handled(service: str, type: str, outcome: str, seconds: float) -> None:
    """One message handled by ``service``'s worker; ``outcome`` is one of OUTCOMES."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown message outcome {outcome!r}")
    MESSAGES.labels(service, type, outcome).inc()
    HANDLER_SECONDS.labels(service, type).observe(max(0.0, seconds))


def message_lag(service: str, type: str, seconds: float) -> None:
    """How long a message waited between its creation and its handling."""
    MESSAGE_LAG.labels(service, type).observe(max(0.0, seconds))


def publish_attempt(platform: str, outcome: str) -> None:
    """One call to ``platform`` to create a post: ``ok`` or the error's kind."""
    PUBLISH_ATTEMPTS.labels(platform, outcome).inc()


def takedown_seconds(platform: str, seconds: float) -> None:
    """One copy gone from ``platform``, ``seconds`` after the takedown began."""
    TAKEDOWN_SECONDS.labels(platform).observe(max(0.0, seconds))


def http_request(
    service: str, endpoint: str, method: str, status: int, seconds: float
) -> None:
    """One answered HTTP request (``shared.web`` calls this for every API)."""
    method = method if method in METHODS else "other"
    HTTP_REQUESTS.labels(service, endpoint, method, str(status)).inc()
    HTTP_SECONDS.labels(service, endpoint, method).observe(max(0.0, seconds))


# --- exposition ------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def registry() -> CollectorRegistry:
    """What a scrape reads: this process's registry, or in the multiprocess mode
    every process's values summed from ``PROMETHEUS_MULTIPROC_DIR``."""
    if multiprocess_dir() is None:
        return REGISTRY
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected)  # type: ignore[no-untyped-call]
    return collected


def exposition() -> tuple[bytes, str]:
    """The Prometheus text format of every metric, and its content type."""
    return generate_latest(registry()), CONTENT_TYPE


def token_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """``METRICS_TOKEN``; empty counts as unset."""
    value = (os.environ if env is None else env).get(TOKEN_ENV, "").strip()
    return value or None


def refusal(
    *,
    token: str | None,
    authorization: str,
    remote_addr: str | None,
    forwarded: bool,
) -> tuple[int, str] | None:
    """None if this scrape may read the metrics; else the status and why not.

    With a token: only ``Authorization: Bearer <token>``, from anywhere. Without one:
    only from a loopback or private address, and not through a proxy.
    """
    if token is not None:
        scheme, _, given = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return 401, "the metrics need the metrics bearer token"
        return None
    if forwarded:
        return 403, "the metrics are not served through a proxy"
    if not internal_address(remote_addr):
        return 403, "the metrics are served to internal addresses only"
    return None


def internal_address(addr: str | None) -> bool:
    """A loopback or private (RFC 1918, ULA, link-local) address."""
    try:
        ip = ipaddress.ip_address((addr or "").strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_private


# --- a worker's own endpoint ------------------------------------------------------

_server: WSGIServer | None = None
_server_lock = threading.Lock()

StartResponse = Callable[..., Any]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every few seconds would drown the worker's own lines."""


def metrics_app(token: str | None) -> Callable[[dict[str, Any], StartResponse], Any]:
    """A WSGI app serving ``GET /metrics`` behind the same rule as the APIs'."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") not in ("/metrics", "/metrics/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        forwarded = any(
            "HTTP_" + h.upper().replace("-", "_") in environ for h in FORWARDED_HEADERS
        )
        refused = refusal(
            token=token,
            authorization=environ.get("HTTP_AUTHORIZATION", ""),
            remote_addr=environ.get("REMOTE_ADDR"),
            forwarded=forwarded,
        )
        if refused is not None:
            status, why = refused
            headers = [("Content-Type", "text/plain; charset=utf-8")]
            if status == 401:
                headers.append(("WWW-Authenticate", "Bearer"))
            reason = "Unauthorized" if status == 401 else "Forbidden"
            start_response(f"{status} {reason}", headers)
            return [why.encode() + b"\n"]
        body, content_type = exposition()
        start_response("200 OK", [("Content-Type", content_type)])
        return [body]

    return app


def start_worker_server(port: int | None) -> None:
    """Serve ``/metrics`` on 0.0.0.0:``port`` from a daemon thread (a worker process
    has no web app of its own). None: nothing. Idempotent: a second call does
    nothing. A port already taken is logged as a warning, never raised: metrics must
    not stop a worker."""
    global _server
    if port is None:
        return
    with _server_lock:
        if _server is not None:
            return
        try:
            server = make_server(
                "0.0.0.0",
                port,
                metrics_app(token_from_env()),
                server_class=_ThreadingServer,
                handler_class=_QuietHandler,
            )
        except OSError as exc:
            logger.warning("metrics not served: port %s: %s", port, exc)
            return
        _server = server
    threading.Thread(
        target=server.serve_forever, name="metrics-server", daemon=True
    ).start()
    logger.info("metrics served on port %s at /metrics", server.server_port)


def port_from_env(env: Mapping[str, str] | None = None) -> int | None:
    """``METRICS_PORT`` (e.g. 9100), or None when unset or not a port number."""
    raw = (os.environ if env is None else env).get(PORT_ENV, "").strip()
    if not raw:
        return None
    try:
        port = int(raw)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        logger.warning("%s=%r is not a port: metrics not served", PORT_ENV, raw)
        return None
    return port
