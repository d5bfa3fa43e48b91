"""Sign-in throttling shared by every portal process (the identity database).

Failures are counted per client address, per account and per *known browser* (one
that signed in to that account before: a signed cookie). Past a threshold each key
backs off exponentially — 1 s, 2 s, 4 s ... up to 15 minutes — and a quiet quarter of
an hour forgets it. Nothing ever locks the right password out for good, and the owner
signing in from a browser they used before is judged by that browser's failures, not
by what a stranger did to their account (ten wrong passwords used to lock anyone out,
the COO included, for 15 minutes). Addresses get a higher threshold: a school's staff
share one address behind its router.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from shared.db import UtcDateTime, utcnow
from shared.errors import DomainError

FORGET_AFTER = timedelta(minutes=15)
MAX_BACKOFF = timedelta(minutes=15)
THRESHOLDS = {"user": 5, "device": 5, "addr": 30}

metadata = sa.MetaData()
failures = sa.Table(
    "sign_in_failures",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failed_at", UtcDateTime, nullable=False),
    sa.Column("blocked_until", UtcDateTime, nullable=True),
)


class TooManyAttemptsError(DomainError):
    code = "too_many_attempts"
    status = 429

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Attempt:
    """Who is trying: the account, the client's address and, if the browser signed
    in to this account before, its id."""

    username: str
    address: str
    device: str | None = None

    def counted(self) -> list[str]:
        account = f"device:{self.device}" if self.device else f"user:{self.username}"
        return [account, f"addr:{self.address}"]


def backoff(failed: int, threshold: int) -> timedelta:
    """How long a key waits after its ``failed``-th failure (none below threshold)."""
    if failed < threshold:
        return timedelta(0)
    return min(timedelta(seconds=2 ** (failed - threshold)), MAX_BACKOFF)


class SqlThrottle:
    def __init__(self, engine: Engine, now: Callable[[], datetime] = utcnow):
        self.engine = engine
        self.now = now

    def check(self, attempt: Attempt) -> None:
        """Raise ``TooManyAttemptsError`` (with the seconds to wait) while blocked."""
        now = self.now()
        query = sa.select(failures.c.blocked_until).where(
            failures.c.key.in_(attempt.counted()), failures.c.blocked_until > now
        )
        with self.engine.connect() as conn:
            until = max(conn.execute(query).scalars().all(), default=None)
        if until is not None:
            wait = max(1, int((until - now).total_seconds() + 0.999))
            raise TooManyAttemptsError(
                f"too many failed sign-ins; try again in {_words(wait)}", wait
            )

    def failed(self, attempt: Attempt) -> None:
        now = self.now()
        with self.engine.begin() as conn:
            for key in attempt.counted():
                self._count(conn, key, now)

    def succeeded(self, attempt: Attempt) -> None:
        """The account (and this browser) start afresh; the address does not."""
        with self.engine.begin() as conn:
            conn.execute(
                failures.delete().where(
                    failures.c.key.in_(
                        [k for k in attempt.counted() if not k.startswith("addr:")]
                        + [f"user:{attempt.username}"]
                    )
                )
            )

    def _count(self, conn: sa.Connection, key: str, now: datetime) -> None:
        row = conn.execute(
            failures.select().where(failures.c.key == key).with_for_update()
        ).first()
        if row is None or now - row.last_failed_at > FORGET_AFTER:
            count = 1
        else:
            count = row.failures + 1
        wait = backoff(count, THRESHOLDS[key.split(":", 1)[0]])
        values = {
            "failures": count,
            "last_failed_at": now,
            "blocked_until": now + wait if wait else None,
        }
        if row is None:
            conn.execute(failures.insert().values(key=key, **values))
        else:
            conn.execute(
                failures.update().where(failures.c.key == key).values(**values)
            )


def _words(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{(seconds + 59) // 60} minutes"


__all__: Sequence[str] = ("Attempt", "SqlThrottle", "TooManyAttemptsError", "backoff")
