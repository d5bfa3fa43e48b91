"""Flask glue shared by every service: errors as JSON, health, auth, request logs,
metrics."""

from __future__ import annotations

import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Flask, Response, current_app, g, jsonify, redirect, request
from jinja2 import ChoiceLoader, FileSystemLoader
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from shared import auth, failures, logs, metrics
from shared.config import Settings
from shared.errors import DomainError, UnauthenticatedError

logger = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "templates"

ReadyCheck = Callable[[], None]
# Requests bigger than this are refused with 413 unless the app asks for another limit.
MAX_CONTENT_LENGTH = 40 * 1024 * 1024
# Paths neither logged nor counted: probes and scrapes, every few seconds.
QUIET_PATHS = ("/healthz", "/readyz", "/metrics")
# An id a caller may hand us (X-Correlation-Id, X-Request-Id): it goes into log lines
# and into the messages a request sends, so anything else is replaced by a new one.
_CALLER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}")


def create_app(
    name: str,
    *,
    secret_key: str,
    ports: Any,
    ready_checks: Mapping[str, ReadyCheck] | None = None,
    max_content_length: int | None = MAX_CONTENT_LENGTH,
    secure_cookies: bool = False,
) -> Flask:
    """A Flask app with the project's error handling, health routes and auth loading.

    Request bodies are capped (``max_content_length``, 40 MiB by default): a bigger one
    is answered 413 before it is read.
    """
    app = Flask(name)
    app.config.update(
        SAFEPOST_SECRET_KEY=secret_key,
        SECRET_KEY=secret_key,
        SAFEPOST_SECURE_COOKIES=secure_cookies,
        MAX_CONTENT_LENGTH=max_content_length,
        JSON_SORT_KEYS=False,
    )
    app.extensions["ports"] = ports
    app.extensions["ready_checks"] = dict(ready_checks or {})
    install(app)
    return app


def service_app(
    name: str,
    blueprint: Blueprint,
    *,
    settings: Settings,
    ports: Any,
    ready_checks: Mapping[str, ReadyCheck] | None = None,
    max_content_length: int | None = MAX_CONTENT_LENGTH,
) -> Flask:
    """A service's app: the shared glue above plus the service's own blueprint.
    Bodies are capped like every app's (intake asks for room for its photos)."""
    app = create_app(
        name,
        secret_key=settings.secret_key,
        ports=ports,
        ready_checks=ready_checks,
        max_content_length=max_content_length,
        secure_cookies=settings.secure_cookies,
    )
    app.register_blueprint(blueprint)
    return app


def install(app: Flask) -> None:
    # Who may scrape /metrics: its bearer token (METRICS_TOKEN), else internal callers.
    app.config.setdefault("SAFEPOST_METRICS_TOKEN", metrics.token_from_env())
    loader = app.jinja_loader
    app.jinja_loader = ChoiceLoader(
        [loader, FileSystemLoader(str(TEMPLATES))]
        if loader
        else [FileSystemLoader(str(TEMPLATES))]
    )
    app.jinja_env.globals["csrf_token"] = _csrf_for_template
    app.jinja_env.globals["csp_nonce"] = lambda: g.get("csp_nonce", "")
    app.jinja_env.globals["identity"] = lambda: g.get("identity")
    app.before_request(_start_request)
    app.before_request(auth.load_identity)
    app.after_request(_finish_request)
    app.register_error_handler(DomainError, _domain_error)
    app.register_error_handler(ValidationError, _validation_error)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    app.add_url_rule("/healthz", "healthz", auth.public(healthz))
    app.add_url_rule("/readyz", "readyz", auth.public(readyz))
    app.add_url_rule("/metrics", "metrics", metrics_view)


def ports() -> Any:
    return current_app.extensions["ports"]


def healthz() -> Response:
    return jsonify(status="ok")


def readyz() -> tuple[Response, int]:
    failed = {}
    for name, check in current_app.extensions["ready_checks"].items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - report, never crash a probe
            failed[name] = type(exc).__name__
            logger.warning("ready check %s failed: %s", name, type(exc).__name__)
    if failed:
        return jsonify(status="unavailable", failed=failed), 503
    return jsonify(status="ready"), 200


def metrics_view() -> Any:
    """Prometheus text format; see ``shared.metrics.refusal`` for who may read it."""
    refused = metrics.refusal(
        token=current_app.config.get("SAFEPOST_METRICS_TOKEN"),
        authorization=request.headers.get("Authorization", ""),
        remote_addr=request.remote_addr,
        forwarded=any(h in request.headers for h in metrics.FORWARDED_HEADERS),
    )
    if refused is not None:
        status, why = refused
        code = "unauthenticated" if status == 401 else "forbidden"
        response = jsonify(error=code, message=why)
        if status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response, status
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


# Needs no staff identity (the identity layer lets it through), but has its own guard:
# the metrics token, or an internal address. tests/unit/test_route_auth.py knows it.
auth.public(metrics_view)
metrics_view.safepost_guard = "metrics"  # type: ignore[attr-defined]


def _csrf_for_template() -> str:
    identity = g.get("identity")
    if identity is None:
        return ""
    return auth.csrf_token(current_app.config["SAFEPOST_SECRET_KEY"], identity)


def caller_id(value: str | None) -> str | None:
    """An id from a request header, if it is a plausible one (else None)."""
    value = (value or "").strip()
    return value if _CALLER_ID.fullmatch(value) else None


def _start_request() -> None:
    """Ids for the request's log lines: its own (``X-Request-Id`` or a new one) and
    the correlation id (``X-Correlation-Id``, else the request id) that the messages
    it sends carry on through every service."""
    g.started = time.monotonic()
    g.csp_nonce = secrets.token_urlsafe(16)  # the page's own scripts carry it
    g.request_id = caller_id(request.headers.get("X-Request-Id")) or str(uuid.uuid4())
    g.correlation_id = (
        caller_id(request.headers.get("X-Correlation-Id")) or g.request_id
    )
    g.log_context = logs.context(
        request_id=g.request_id, correlation_id=g.correlation_id
    )
    g.log_context.__enter__()


def _finish_request(response: Response) -> Response:
    took = time.monotonic() - g.get("started", time.monotonic())
    if request.path not in QUIET_PATHS:
        identity = g.get("identity")
        logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "ms": round(took * 1000, 1),
                "user": identity.user_id if identity else None,
            },
        )
        metrics.http_request(
            current_app.name,
            request.endpoint or "unmatched",
            request.method,
            response.status_code,
            took,
        )
    response.headers.setdefault("X-Request-Id", g.get("request_id", ""))
    response.headers.setdefault("X-Correlation-Id", g.get("correlation_id", ""))
    for name, value in security_headers(g.get("csp_nonce", "")).items():
        response.headers.setdefault(name, value)
    if current_app.config.get("SAFEPOST_SECURE_COOKIES"):  # served over HTTPS
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    if not (request.endpoint or "").endswith("static"):
        # pages and answers hold pupils' data: never kept by a browser or a proxy
        response.headers.setdefault("Cache-Control", "no-store")
    ctx = g.pop("log_context", None)
    if ctx is not None:
        ctx.__exit__(None, None, None)
    return response


HSTS = "max-age=31536000; includeSubDomains"


def security_headers(nonce: str) -> dict[str, str]:
    """Every answer's: no script but our own files and the page's nonce'd ones, no
    framing, no plug-ins, no other site's forms; only what the pages use."""
    script = f"script-src 'self' 'nonce-{nonce}'" if nonce else "script-src 'self'"
    return {
        "Content-Security-Policy": "; ".join(
            (
                "default-src 'self'",
                script,
                "style-src 'self' 'unsafe-inline'",
                "img-src 'self' data: blob:",
                "connect-src 'self'",
                "object-src 'none'",
                "base-uri 'none'",
                "form-action 'self'",
                "frame-ancestors 'none'",
            )
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Permissions-Policy": (
            "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"
        ),
    }


def wants_html() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.method == "GET"


def _domain_error(exc: DomainError) -> Any:
    if isinstance(exc, UnauthenticatedError) and wants_html():
        back = request.script_root + request.full_path.rstrip("?")
        return redirect("/login?next=" + quote(back, safe="/"))
    if exc.status == 503:  # something is away: say when to try again
        return jsonify(exc.to_json()), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return jsonify(exc.to_json()), exc.status


def _validation_error(exc: ValidationError) -> Any:
    problems = [
        {"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]}
        for e in exc.errors()
    ]
    return jsonify(
        error="invalid_input", message="the request is not valid", problems=problems
    ), 400


def _too_large(exc: RequestEntityTooLarge) -> Any:
    return jsonify(error="payload_too_large", message="the upload is too large"), 413


def _http_error(exc: HTTPException) -> Any:
    code = (exc.name or "error").lower().replace(" ", "_")
    return jsonify(error=code, message=exc.description), exc.code or 500


RETRY_AFTER_SECONDS = 5


def _unexpected(exc: Exception) -> Any:
    """A 503 with Retry-After when a dependency is away (the request may simply be
    sent again), else a 500; both logged with the traceback."""
    if failures.classify(exc) is failures.Failure.TRANSIENT:
        logger.warning(
            "a dependency is unavailable: %s", type(exc).__name__, exc_info=exc
        )
        retry = getattr(exc, "retry_after", RETRY_AFTER_SECONDS)
        body = jsonify(
            error="unavailable",
            message="a service this needs is unavailable just now; nothing was "
            f"changed, please try again in {retry} seconds",
        )
        return body, 503, {"Retry-After": str(retry)}
    logger.exception("unhandled error")
    body = jsonify(error="internal_error", message="something went wrong; it is logged")
    return body, 500


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 saying it is not one."""
    from shared.errors import InvalidInputError

    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInputError("the body must be a JSON object")
    return body
