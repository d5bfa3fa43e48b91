"""Authentication and authorisation for every service.

Services verify a signed identity token: in an HttpOnly, SameSite cookie for pages
(with a CSRF token on every unsafe request) or as ``Authorization: Bearer`` for the
API. The portal's login issues the token (see ``safepost/identity``); an OIDC provider
can replace it by issuing the same ``Identity`` from its ID token, nothing in the
services changes.

Roles are per school: ``teacher``, ``approver``, ``it_auditor``, ``admin``; the school
``*`` means trust-wide (e.g. a COO approving for every school). No role implies another.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from shared.errors import ForbiddenError, UnauthenticatedError

ROLES = ("teacher", "approver", "it_auditor", "admin")
TRUST_WIDE = "*"
COOKIE = "safepost_session"
SESSION_SECONDS = 8 * 3600
API_TOKEN_SECONDS = 12 * 3600
_SALT = "safepost.identity.v1"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Identity:
    """Who is calling: a staff member (or later a device) and their roles per school."""

    user_id: str
    username: str
    display_name: str
    roles: frozenset[tuple[str, str]]  # (school slug or "*", role)
    session_id: str = ""
    via: str = "cookie"  # cookie | bearer

    def has(self, role: str, school: str | None = None) -> bool:
        """Whether this identity holds ``role`` for ``school`` (or anywhere if None)."""
        if school is None:
            return any(r == role for _, r in self.roles)
        return (TRUST_WIDE, role) in self.roles or (school, role) in self.roles

    def schools(self, role: str) -> set[str]:
        """Schools where the role is held; ``{"*"}`` for trust-wide."""
        return {s for s, r in self.roles if r == role}

    def sees_school(self, school: str, roles: Iterable[str]) -> bool:
        return any(self.has(r, school) for r in roles)

    def to_claims(self) -> dict[str, Any]:
        return {
            "sub": self.user_id,
            "usr": self.username,
            "name": self.display_name,
            "roles": sorted([s, r] for s, r in self.roles),
            "sid": self.session_id,
        }

    @classmethod
    def from_claims(cls, claims: dict[str, Any], via: str) -> Identity:
        return cls(
            user_id=str(claims["sub"]),
            username=str(claims["usr"]),
            display_name=str(claims.get("name", claims["usr"])),
            roles=frozenset((str(s), str(r)) for s, r in claims.get("roles", [])),
            session_id=str(claims.get("sid", "")),
            via=via,
        )


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=_SALT)


def issue_token(secret: str, identity: Identity, kind: str = "session") -> str:
    claims = identity.to_claims()
    claims["typ"] = kind
    if not claims["sid"]:
        claims["sid"] = secrets.token_urlsafe(16)
    return _serializer(secret).dumps(claims)


def verify_token(secret: str, token: str, via: str) -> Identity:
    """The identity in a token; UnauthenticatedError if forged, expired or malformed."""
    try:
        claims = _serializer(secret).loads(token)
        kind = claims.get("typ", "session")
        max_age = SESSION_SECONDS if kind == "session" else API_TOKEN_SECONDS
        claims = _serializer(secret).loads(token, max_age=max_age)
        return Identity.from_claims(claims, via)
    except SignatureExpired:
        raise UnauthenticatedError("your session has expired; sign in again") from None
    except (BadSignature, AttributeError, KeyError, TypeError, ValueError):
        raise UnauthenticatedError("invalid credentials") from None


def csrf_token(secret: str, identity: Identity) -> str:
    """The CSRF token bound to this session (an HMAC of the session id)."""
    message = f"csrf:{identity.session_id}".encode()
    mac = hmac.new(secret.encode(), message, hashlib.sha256)
    return mac.hexdigest()


def load_identity() -> None:
    """before_request: the caller's verified Identity (or None) into ``g.identity``."""
    g.identity = None
    g.auth_error = None
    secret = current_app.config["SAFEPOST_SECRET_KEY"]
    header = request.headers.get("Authorization", "")
    try:
        if header.lower().startswith("bearer "):
            g.identity = verify_token(secret, header[7:].strip(), via="bearer")
        elif COOKIE in request.cookies:
            g.identity = verify_token(secret, request.cookies[COOKIE], via="cookie")
    except UnauthenticatedError as exc:
        g.auth_error = exc


def current_identity() -> Identity:
    identity = cast(Identity | None, g.get("identity"))
    if identity is None:
        raise g.get("auth_error") or UnauthenticatedError("sign in first")
    return identity


def _check_csrf(identity: Identity) -> None:
    if identity.via != "cookie" or request.method not in UNSAFE:
        return
    sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    expected = csrf_token(current_app.config["SAFEPOST_SECRET_KEY"], identity)
    if not sent or not hmac.compare_digest(sent, expected):
        raise ForbiddenError("missing or invalid CSRF token", code="csrf_failed")


def login_required(*roles: str) -> Callable[[F], F]:
    """Route decorator: an authenticated identity with one of ``roles`` in some school.

    Whether that school is the right one is checked by the view once it knows the
    resource's school, with ``require_role``.
    """
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"unknown role {role}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            identity = current_identity()
            _check_csrf(identity)
            if roles and not any(identity.has(r) for r in roles):
                raise ForbiddenError(f"needs role: {' or '.join(roles)}")
            return view(*args, **kwargs)

        wrapper.safepost_roles = roles  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


def public(view: F) -> F:
    """Mark a route as deliberately public (health checks, login page, static files)."""
    view.safepost_public = True  # type: ignore[attr-defined]
    return view


def require_role(identity: Identity, school: str, *roles: str) -> None:
    """Raise 403 unless the identity holds one of ``roles`` for ``school``."""
    if not any(identity.has(r, school) for r in roles):
        raise ForbiddenError(f"needs role {' or '.join(roles)} for school {school}")


def visible_schools(identity: Identity, *roles: str) -> set[str] | None:
    """Schools the identity may see with these roles; None means every school."""
    schools: set[str] = set()
    for role in roles:
        schools |= identity.schools(role)
    return None if TRUST_WIDE in schools else schools
