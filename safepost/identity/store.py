"""Staff accounts (argon2 password hashes) and their roles per school."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from shared import auth
from shared.db import UtcDateTime, make_engine, migrate, utcnow
from shared.errors import ConflictError, InvalidInputError, NotFoundError

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(36), primary_key=True),
    sa.Column("username", sa.String(80), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

user_roles = sa.Table(
    "user_roles",
    metadata,
    sa.Column(
        "user_id", sa.String(36), sa.ForeignKey("users.user_id"), primary_key=True
    ),
    sa.Column("school", sa.String(40), primary_key=True),
    sa.Column("role", sa.String(20), primary_key=True),
)

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,79}$")
SCHOOL = re.compile(r"^(\*|[a-z0-9-]{2,40})$")
MIN_PASSWORD = 12
_hasher = PasswordHasher()
# Verifying against this keeps the time of "no such user" equal to "wrong password".
_DUMMY_HASH = _hasher.hash("not-a-real-password-for-timing")


MIN_STRENGTH = 3  # zxcvbn's score, 0-4: 3 is "safely unguessable" online and offline


def check_password(password: str, personal: tuple[str, ...] = ()) -> None:
    """Local (break-glass) passwords: long, and not common or guessable — judged by
    zxcvbn against its shipped lists of common passwords, words and names, and this
    account's own username and name."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInputError(f"passwords need at least {MIN_PASSWORD} characters")
    from zxcvbn import zxcvbn

    verdict = zxcvbn(password[:100], user_inputs=[p for p in personal if p])
    if verdict["score"] < MIN_STRENGTH:
        feedback = verdict.get("feedback") or {}
        why = feedback.get("warning") or "it is too easy to guess"
        hint = " ".join(feedback.get("suggestions") or [])
        raise InvalidInputError(
            f"choose a stronger password: {why.rstrip('.')}. {hint}".strip()
        )


@dataclass(frozen=True)
class RoleGrant:
    school: str
    role: str

    @classmethod
    def parse(cls, text: str) -> RoleGrant:
        """``role@school`` (``approver@*`` is trust-wide)."""
        role, _, school = text.partition("@")
        if role not in auth.ROLES or not SCHOOL.match(school):
            raise InvalidInputError(
                f"bad role {text!r}: use ROLE@SCHOOL with ROLE one of "
                f"{', '.join(auth.ROLES)}"
            )
        return cls(school=school, role=role)


class UserStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def open(cls, database_url: str) -> UserStore:
        engine = make_engine(database_url)
        migrate(engine, Path(__file__).parent / "migrations")
        return cls(engine)

    def add(
        self, username: str, display_name: str, password: str, grants: list[RoleGrant]
    ) -> str:
        """Create a staff account; ConflictError if the username is taken."""
        if not USERNAME.match(username):
            raise InvalidInputError(
                "usernames are lower-case letters, digits and . _ -"
            )
        check_password(password, (username, display_name))
        user_id = str(uuid.uuid4())
        with self.engine.begin() as conn:
            if conn.execute(
                sa.select(users.c.user_id).where(users.c.username == username)
            ).first():
                raise ConflictError(f"user {username} already exists")
            conn.execute(
                users.insert().values(
                    user_id=user_id,
                    username=username,
                    display_name=display_name,
                    password_hash=_hasher.hash(password),
                    active=True,
                    created_at=utcnow(),
                )
            )
            for g in set(grants):
                conn.execute(
                    user_roles.insert().values(
                        user_id=user_id, school=g.school, role=g.role
                    )
                )
        return user_id

    def grant(self, username: str, grant: RoleGrant) -> None:
        with self.engine.begin() as conn:
            user_id = self._user_id(conn, username)
            exists = conn.execute(
                sa.select(user_roles).where(
                    user_roles.c.user_id == user_id,
                    user_roles.c.school == grant.school,
                    user_roles.c.role == grant.role,
                )
            ).first()
            if not exists:
                conn.execute(
                    user_roles.insert().values(
                        user_id=user_id, school=grant.school, role=grant.role
                    )
                )

    def set_password(self, username: str, password: str) -> None:
        check_password(password, (username,))
        with self.engine.begin() as conn:
            user_id = self._user_id(conn, username)
            conn.execute(
                users.update()
                .where(users.c.user_id == user_id)
                .values(password_hash=_hasher.hash(password))
            )

    def deactivate(self, username: str) -> None:
        with self.engine.begin() as conn:
            user_id = self._user_id(conn, username)
            conn.execute(
                users.update().where(users.c.user_id == user_id).values(active=False)
            )

    def exists(self, username: str) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    sa.select(users.c.user_id).where(users.c.username == username)
                ).first()
                is not None
            )

    def authenticate(self, username: str, password: str) -> auth.Identity | None:
        """The identity for valid, active credentials; None otherwise (same timing)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(users).where(users.c.username == username)
            ).first()
            roles = (
                conn.execute(
                    sa.select(user_roles.c.school, user_roles.c.role).where(
                        user_roles.c.user_id == row.user_id
                    )
                ).all()
                if row
                else []
            )
        try:
            _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or not row.active:
            return None
        if _hasher.check_needs_rehash(row.password_hash):
            self.set_password(username, password)
        return auth.Identity(
            user_id=row.user_id,
            username=row.username,
            display_name=row.display_name,
            roles=frozenset((s, r) for s, r in roles),
        )

    def list(self) -> list[dict[str, object]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(users).order_by(users.c.username)).all()
            grants = conn.execute(sa.select(user_roles)).all()
        by_user: dict[str, list[str]] = {}
        for g in grants:
            by_user.setdefault(g.user_id, []).append(f"{g.role}@{g.school}")
        return [
            {
                "username": r.username,
                "display_name": r.display_name,
                "active": r.active,
                "roles": sorted(by_user.get(r.user_id, [])),
            }
            for r in rows
        ]

    @staticmethod
    def _user_id(conn: sa.Connection, username: str) -> str:
        row = conn.execute(
            sa.select(users.c.user_id).where(users.c.username == username)
        ).first()
        if row is None:
            raise NotFoundError(f"no user {username}")
        return str(row.user_id)
