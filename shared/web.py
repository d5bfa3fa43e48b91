"""Flask glue shared by every service: errors as JSON, health, auth, request logs."""

from __future__ import annotations

import logging
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

from shared import auth, logs
from shared.config import Settings
from shared.errors import DomainError, UnauthenticatedError

logger = logging.getLogger(__name__)
TEMPLATES = Path(__file__).parent / "templates"

ReadyCheck = Callable[[], None]
# Requests bigger than this are refused with 413 unless the app asks for another limit.
MAX_CONTENT_LENGTH = 40 * 1024 * 1024


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
    max_content_length: int | None = None,
) -> Flask:
    """A service's app: the shared glue above plus the service's own blueprint."""
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
    loader = app.jinja_loader
    app.jinja_loader = ChoiceLoader(
        [loader, FileSystemLoader(str(TEMPLATES))]
        if loader
        else [FileSystemLoader(str(TEMPLATES))]
    )
    app.jinja_env.globals["csrf_token"] = _csrf_for_template
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


def _csrf_for_template() -> str:
    identity = g.get("identity")
    if identity is None:
        return ""
    return auth.csrf_token(current_app.config["SAFEPOST_SECRET_KEY"], identity)


def _start_request() -> None:
    g.started = time.monotonic()
    g.request_id = request.headers.get("X-Request-Id") or str(uuid.uuid4())
    g.log_context = logs.context(request_id=g.request_id)
    g.log_context.__enter__()


def _finish_request(response: Response) -> Response:
    took = (time.monotonic() - g.get("started", time.monotonic())) * 1000
    if request.path not in ("/healthz", "/readyz"):
        identity = g.get("identity")
        logger.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "ms": round(took, 1),
                "user": identity.user_id if identity else None,
            },
        )
    response.headers.setdefault("X-Request-Id", g.get("request_id", ""))
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    ctx = g.pop("log_context", None)
    if ctx is not None:
        ctx.__exit__(None, None, None)
    return response


def wants_html() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.method == "GET"


def _domain_error(exc: DomainError) -> Any:
    if isinstance(exc, UnauthenticatedError) and wants_html():
        back = request.script_root + request.full_path.rstrip("?")
        return redirect("/login?next=" + quote(back, safe="/"))
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


def _unexpected(exc: Exception) -> Any:
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
