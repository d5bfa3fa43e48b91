"""The portal: home page, sign-in and API tokens (the identity-provider stand-in).

Sign-in issues the signed identity token every service verifies (shared.auth). Served at
``/``; each service is mounted beside it under its own prefix.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import sqlalchemy as sa
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
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel, Field

from safepost.identity.store import USERNAME, UserStore
from safepost.identity.throttle import Attempt, SqlThrottle, TooManyAttemptsError
from shared import auth, contracts, web
from shared.bus import KombuPublisher, Publisher
from shared.config import Settings
from shared.db import SqlOutbox, outbox_add, outbox_table, ping, utcnow
from shared.errors import InvalidInputError, UnauthenticatedError
from shared.outbox import relay

bp = Blueprint("portal", __name__, template_folder="templates")
LOGIN_CSRF_COOKIE = "safepost_login_csrf"
KNOWN_BROWSER_COOKIE = "safepost_known_browser"
KNOWN_BROWSER_DAYS = 90
_outbox = outbox_table(sa.MetaData())


@dataclass(frozen=True)
class Ports:
    users: UserStore
    throttle: SqlThrottle
    outbox: SqlOutbox  # what the portal tells the trail (failed sign-ins)
    publisher: Publisher | None = None


class TokenRequest(BaseModel):
    username: str = Field(min_length=1, max_length=80)
    password: str = Field(min_length=1, max_length=200)


def _sign_in(username: str, password: str, via: str) -> auth.Identity:
    """Check the password, unless this browser, account or address must wait; every
    refusal goes to the trail."""
    ports: Ports = web.ports()
    attempt = Attempt(username, request.remote_addr or "?", _known_browser(username))
    try:
        ports.throttle.check(attempt)
    except TooManyAttemptsError:
        _tell_trail(ports, attempt, "throttled", via)
        raise
    identity = ports.users.authenticate(username, password)
    if identity is None:
        ports.throttle.failed(attempt)
        _tell_trail(ports, attempt, "wrong", via)
        raise UnauthenticatedError("wrong username or password")
    ports.throttle.succeeded(attempt)
    g.known_browser = attempt.device or secrets.token_urlsafe(12)
    return identity


def _known_browser(username: str) -> str | None:
    """This browser's id if it signed in to ``username`` before (a signed cookie)."""
    raw = request.cookies.get(KNOWN_BROWSER_COOKIE)
    if not raw:
        return None
    signer = URLSafeTimedSerializer(
        current_app.config["SAFEPOST_SECRET_KEY"], salt="known-browser"
    )
    try:
        seen = signer.loads(raw, max_age=KNOWN_BROWSER_DAYS * 86400)
    except BadSignature:
        return None
    if not isinstance(seen, dict) or seen.get("u") != username:
        return None
    device = seen.get("d")
    return device if isinstance(device, str) else None


def _remember_browser(response: Any, username: str) -> None:
    signer = URLSafeTimedSerializer(
        current_app.config["SAFEPOST_SECRET_KEY"], salt="known-browser"
    )
    response.set_cookie(
        KNOWN_BROWSER_COOKIE,
        signer.dumps({"u": username, "d": g.known_browser}),
        httponly=True,
        samesite="Strict",
        secure=current_app.config["SAFEPOST_SECURE_COOKIES"],
        max_age=KNOWN_BROWSER_DAYS * 86400,
    )


def _tell_trail(ports: Ports, attempt: Attempt, reason: str, via: str) -> None:
    """``identity.sign_in_failed`` through the outbox (sent now if the broker takes
    it, else with the next one)."""
    typed = attempt.username if USERNAME.match(attempt.username) else "(not a username)"
    event = contracts.seal(
        contracts.SignInFailed(
            username=typed, address=attempt.address[:64], reason=reason, via=via
        ),
        producer="identity",
        actor=typed,
    )
    with ports.users.engine.begin() as conn:
        outbox_add(conn, ports.outbox.table, [event], utcnow())
    if ports.publisher is not None:
        relay(ports.outbox, ports.publisher)


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
    username = request.form.get("username", "").strip().lower()[:80]
    try:
        identity = _sign_in(username, request.form.get("password", ""), "page")
    except (UnauthenticatedError, TooManyAttemptsError) as exc:
        page = render_template(
            "portal/login.html", login_csrf=expected, next=next_url, error=exc.message
        )
        headers = {"Retry-After": str(getattr(exc, "retry_after", 0))}
        return page, exc.status, headers if exc.status == 429 else {}
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
    _remember_browser(response, username)
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
    try:
        identity = _sign_in(body.username.strip().lower(), body.password, "api")
    except TooManyAttemptsError as exc:
        answer = jsonify(exc.to_json())
        return answer, 429, {"Retry-After": str(exc.retry_after)}
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
    users = UserStore.open(settings.database_url)
    return Ports(
        users=users,
        throttle=SqlThrottle(users.engine),
        outbox=SqlOutbox(users.engine, _outbox, utcnow),
        publisher=KombuPublisher(settings.amqp_url),
    )


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


__all__ = ["InvalidInputError", "Ports", "create_app", "real_ports"]
