"""The portal: home page, sign-in and API tokens (the identity-provider stand-in).

Sign-in issues the signed identity token every service verifies (shared.auth). Served at
``/``; each service is mounted beside it under its own prefix.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
)
from pydantic import BaseModel, Field

from safepost.identity.store import UserStore
from shared import auth, web
from shared.config import Settings
from shared.db import ping
from shared.errors import DomainError, InvalidInputError, UnauthenticatedError

bp = Blueprint("portal", __name__, template_folder="templates")
LOGIN_CSRF_COOKIE = "safepost_login_csrf"
MAX_FAILURES = 10
FAILURE_WINDOW = 15 * 60


class TooManyAttemptsError(DomainError):
    code = "too_many_attempts"
    status = 429


class Throttle:
    """At most MAX_FAILURES failed sign-ins per username per window, per process."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, username: str) -> None:
        with self._lock:
            recent = self._failures[username]
            while recent and recent[0] < time.monotonic() - FAILURE_WINDOW:
                recent.popleft()
            if len(recent) >= MAX_FAILURES:
                raise TooManyAttemptsError("too many failed sign-ins; wait 15 minutes")

    def failed(self, username: str) -> None:
        with self._lock:
            self._failures[username].append(time.monotonic())

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username, None)


@dataclass(frozen=True)
class Ports:
    users: UserStore
    throttle: Throttle


class TokenRequest(BaseModel):
    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=200)


def _sign_in(username: str, password: str) -> auth.Identity:
    ports: Ports = web.ports()
    ports.throttle.check(username)
    identity = ports.users.authenticate(username, password)
    if identity is None:
        ports.throttle.failed(username)
        raise UnauthenticatedError("wrong username or password")
    ports.throttle.succeeded(username)
    return identity


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: never an open redirect."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if (
        parsed.scheme
        or parsed.netloc
        or not target.startswith("/")
        or target.startswith("//")
    ):
        return "/"
    return target


@bp.get("/")
@auth.public
def home() -> Any:
    return render_template("portal/home.html")


@bp.get("/login")
@auth.public
def login_form() -> Any:
    token = secrets.token_urlsafe(24)
    response = make_response(
        render_template(
            "portal/login.html",
            login_csrf=token,
            next=_safe_next(request.args.get("next")),
            error=None,
        )
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=current_app.config["SAFEPOST_SECURE_COOKIES"],
        max_age=1800,
    )
    return response


@bp.post("/login")
@auth.public
def login() -> Any:
    sent = request.form.get("login_csrf", "")
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    next_url = _safe_next(request.form.get("next"))
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        return render_template(
            "portal/login.html",
            login_csrf=expected,
            next=next_url,
            error="Your sign-in form expired; please try again.",
        ), 400
    try:
        identity = _sign_in(
            request.form.get("username", "").strip().lower(),
            request.form.get("password", ""),
        )
    except (UnauthenticatedError, TooManyAttemptsError) as exc:
        return render_template(
            "portal/login.html", login_csrf=expected, next=next_url, error=exc.message
        ), exc.status
    token = auth.issue_token(current_app.config["SAFEPOST_SECRET_KEY"], identity)
    response = redirect(next_url)
    response.set_cookie(
        auth.COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        path="/",
        secure=current_app.config["SAFEPOST_SECURE_COOKIES"],
        max_age=auth.SESSION_SECONDS,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@bp.route("/logout", methods=["GET", "POST"])
@auth.public
def logout() -> Any:
    response = redirect("/login")
    response.delete_cookie(auth.COOKIE, path="/")
    return response


@bp.post("/auth/token")
@auth.public
def api_token() -> Any:
    """Exchange a username and password for a bearer token for the API."""
    body = TokenRequest.model_validate(web.json_body())
    identity = _sign_in(body.username.strip().lower(), body.password)
    token = auth.issue_token(
        current_app.config["SAFEPOST_SECRET_KEY"], identity, kind="api"
    )
    return jsonify(token=token, token_type="Bearer", expires_in=auth.API_TOKEN_SECONDS)


@bp.get("/auth/me")
@auth.login_required()
def me() -> Any:
    identity = auth.current_identity()
    return jsonify(
        user_id=identity.user_id,
        username=identity.username,
        display_name=identity.display_name,
        roles=sorted(f"{r}@{s}" for s, r in identity.roles),
    )


def real_ports(settings: Settings) -> Ports:
    return Ports(users=UserStore.open(settings.database_url), throttle=Throttle())


def create_app(ports: Ports | None = None, settings: Settings | None = None) -> Flask:
    settings = settings or Settings.from_env("identity")
    ports = ports or real_ports(settings)
    app = web.create_app(
        "portal",
        secret_key=settings.secret_key,
        ports=ports,
        ready_checks={"database": lambda: ping(ports.users.engine)},
        secure_cookies=settings.secure_cookies,
    )
    app.register_blueprint(bp)
    app.jinja_env.globals["roles_of"] = _roles_of
    return app


def _roles_of() -> set[str]:
    identity = g.get("identity")
    return {r for _, r in identity.roles} if identity else set()


__all__ = ["InvalidInputError", "Ports", "Throttle", "create_app", "real_ports"]
