"""Message base classes, the wire envelope and deterministic sealing.

Every message that crosses the broker is a frozen, data-only pydantic model. A producer
builds it (validated on construction); it travels inside an ``Envelope``; a consumer
parses it tolerantly (unknown fields ignored).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from shared import logs

NAMESPACE = uuid.UUID("0b5a1f3e-7c44-5d2e-9a57-5afe9057c0de")


class Model(BaseModel):
    """Frozen value with tolerant parsing (consumers ignore fields they do not know)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Message(Model):
    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "event"
    # Fields holding biometric data: never logged, never kept by audit.
    BIOMETRIC: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def routing_key(cls) -> str:
        return f"{cls.TYPE}.v{cls.VERSION}"


class Event(Message):
    """Something that happened; past tense; any number of consumers."""

    KIND: ClassVar[str] = "event"


class Command(Message):
    """Something to do; imperative; exactly one handler (the owning service)."""

    KIND: ClassVar[str] = "command"


class Envelope(Model):
    """What sits on the wire: ids for tracing and dedup around the message data."""

    id: str
    type: str
    version: int
    producer: str
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None = None
    actor: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def routing_key(self) -> str:
        return f"{self.type}.v{self.version}"


def now() -> datetime:
    return datetime.now(UTC)


def seal(
    message: Message,
    *,
    producer: str,
    cause: Envelope | None = None,
    index: int = 0,
    actor: str | None = None,
    message_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    """Wrap a message. Ids derived from the cause are deterministic (uuid5), so a
    redelivered input yields identical outgoing ids that consumers recognise."""
    if message_id is None:
        if cause is not None:
            name = f"{cause.id}:{message.TYPE}.v{message.VERSION}:{index}"
            message_id = str(uuid.uuid5(NAMESPACE, name))
        else:
            message_id = str(uuid.uuid4())
    return Envelope(
        id=message_id,
        type=message.TYPE,
        version=message.VERSION,
        producer=producer,
        occurred_at=occurred_at or now(),
        correlation_id=(
            cause.correlation_id if cause else logs.correlation_id() or message_id
        ),
        causation_id=cause.id if cause else None,
        actor=actor if actor is not None else (cause.actor if cause else None),
        data=message.model_dump(mode="json"),
    )


def deterministic_id(*parts: str) -> str:
    """A stable id from natural keys (uuid5), for idempotent creation."""
    return str(uuid.uuid5(NAMESPACE, ":".join(parts)))
