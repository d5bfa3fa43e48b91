"""Why a handler failed: a dependency that is away for now, a race, or the message.

The worker retries the first two and dead-letters only the last (``shared.bus``). A
database restart, a broker or S3 outage, a timeout or a platform that does not answer is
**transient**: the same message will succeed once the dependency is back, so it waits
(with backoff) rather than landing in a DLQ. Two workers inserting the same row at once
is a **conflict**, and so is saving a record someone else saved since it was read
(``ConcurrentUpdateError``): the loser retries a few times, reading the winner's row
afresh (every handler is idempotent). Anything else is **poison**: retrying would fail
the same way, so it goes to ``<service>.dlq`` with its cause.

Classes are recognised by name along their MRO, so this module imports none of the
libraries it knows about (SQLAlchemy, psycopg, botocore, httpx, kombu).
"""

from __future__ import annotations

import enum
from typing import Any

from shared.errors import ConcurrentUpdateError, TransientError


class Failure(enum.Enum):
    TRANSIENT = "transient"
    CONFLICT = "conflict"
    POISON = "poison"


_TRANSIENT = frozenset(
    {
        # SQLAlchemy wraps every driver error; these mean "the database is away".
        "sqlalchemy.exc.OperationalError",
        "sqlalchemy.exc.InterfaceError",
        "sqlalchemy.exc.DisconnectionError",
        "sqlalchemy.exc.TimeoutError",  # the pool had no connection in time
        "sqlalchemy.exc.PendingRollbackError",
        "psycopg.OperationalError",
        "psycopg.InterfaceError",
        "sqlite3.OperationalError",  # "database is locked"
        # S3 (botocore): nothing answered, or it answered too slowly.
        "botocore.exceptions.ConnectionError",
        "botocore.exceptions.HTTPClientError",
        "botocore.exceptions.ConnectionClosedError",
        "botocore.exceptions.ReadTimeoutError",
        # HTTP clients (platforms, identity providers) and the broker.
        "httpx.TransportError",
        "kombu.exceptions.OperationalError",
        "amqp.exceptions.ConnectionError",
        "builtins.ConnectionError",
        "builtins.TimeoutError",
    }
)
_CONFLICT = frozenset({"sqlalchemy.exc.IntegrityError"})
# What S3 says when it is overloaded or restarting (each also answers 5xx).
_S3_BUSY = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "503"}
)


def classify(exc: BaseException) -> Failure:
    """The kind of ``exc``, or of what it was explicitly raised from (``from``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = _own_kind(current)
        if kind is not Failure.POISON:
            return kind
        current = current.__cause__
    return Failure.POISON


def _own_kind(exc: BaseException) -> Failure:
    if isinstance(exc, TransientError):
        return Failure.TRANSIENT
    if isinstance(exc, ConcurrentUpdateError):
        return Failure.CONFLICT
    names = {f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__}
    if names & _TRANSIENT or getattr(exc, "connection_invalidated", False):
        return Failure.TRANSIENT
    if names & _CONFLICT:
        return Failure.CONFLICT
    if "botocore.exceptions.ClientError" in names and _s3_busy(exc):
        return Failure.TRANSIENT
    return Failure.POISON


def _s3_busy(exc: Any) -> bool:
    response = getattr(exc, "response", None) or {}
    code = str((response.get("Error") or {}).get("Code", ""))
    status = int((response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
    return code in _S3_BUSY or status >= 500
