"""Domain errors with a stable code and HTTP status, rendered as JSON at the edge."""

from __future__ import annotations


class DomainError(Exception):
    """A broken rule or bad request that the caller can understand and fix."""

    code: str = "domain_error"
    status: int = 409

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None
    ):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def to_json(self) -> dict[str, str]:
        return {"error": self.code, "message": self.message}


class InvalidInputError(DomainError):
    code = "invalid_input"
    status = 400


class NotFoundError(DomainError):
    code = "not_found"
    status = 404


class ConflictError(DomainError):
    code = "conflict"
    status = 409


class ConcurrentUpdateError(ConflictError):
    """Someone else saved the same record since it was read: read it again and redo.

    A worker retries the message (``shared.failures``: a conflict); an API answers 409.
    """

    code = "changed_meanwhile"


class UnauthenticatedError(DomainError):
    code = "unauthenticated"
    status = 401


class ForbiddenError(DomainError):
    code = "forbidden"
    status = 403


class PayloadTooLargeError(DomainError):
    code = "payload_too_large"
    status = 413


class UnsupportedMediaError(DomainError):
    code = "unsupported_media"
    status = 415


class ConfigError(Exception):
    """Settings are missing or invalid; raised at start-up, never at request time."""


class TransientError(Exception):
    """A dependency (database, broker, object store, a platform) is unavailable now.

    Not the caller's fault and not the message's: an API answers 503 with Retry-After,
    a worker retries the message later (``shared.failures``).
    """

    def __init__(self, message: str, *, retry_after: int = 5):
        super().__init__(message)
        self.retry_after = retry_after
