"""JSON log lines with service, correlation and message ids from a context variable."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "safepost_log_context", default=MappingProxyType({})
)
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


@contextmanager
def context(**values: str | None) -> Iterator[None]:
    """Add ids (correlation_id, message_id, type, request_id) to log lines inside."""
    merged = {**_context.get(), **{k: v for k, v in values.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def current() -> dict[str, str]:
    return dict(_context.get())


def correlation_id() -> str | None:
    """The correlation id of the request or message being handled here, if any: what
    a message sent from here (with no incoming message as its cause) carries on."""
    return _context.get().get("correlation_id")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "service": getattr(record, "service", None) or self.service,
            "logger": record.name,
            "msg": record.getMessage(),
            **_context.get(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(service: str, level: str = "INFO") -> None:
    """Entrypoints only: JSON lines on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO: a token in a query string (Graph's
    # /debug_token) must never reach the logs.
    noisy_loggers = ("botocore", "boto3", "urllib3", "amqp", "kombu", "werkzeug", "PIL")
    for noisy in (*noisy_loggers, "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
