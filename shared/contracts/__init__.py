"""Message contracts: one module per producing service; this module is the registry.

Use as ``from shared import contracts`` then ``contracts.PostSubmitted``.
"""

from __future__ import annotations

from typing import Any

from shared.contracts import (
    approval,
    consent,
    identity,
    intake,
    publishing,
    redaction,
)
from shared.contracts.approval import *  # noqa: F403
from shared.contracts.base import (
    Command,
    Envelope,
    Event,
    Message,
    Model,
    deterministic_id,
    now,
    seal,
)
from shared.contracts.consent import *  # noqa: F403
from shared.contracts.identity import *  # noqa: F403
from shared.contracts.intake import *  # noqa: F403
from shared.contracts.publishing import *  # noqa: F403
from shared.contracts.redaction import *  # noqa: F403

# One module per producing service; each lists its messages in CONTRACTS.
PRODUCERS = (intake, redaction, consent, approval, publishing, identity)
ALL: tuple[type[Message], ...] = tuple(c for m in PRODUCERS for c in m.CONTRACTS)

_REGISTRY: dict[tuple[str, int], type[Message]] = {(m.TYPE, m.VERSION): m for m in ALL}


class UnknownMessageError(Exception):
    """The envelope names a type/version no contract describes."""


def lookup(type_: str, version: int) -> type[Message]:
    try:
        return _REGISTRY[(type_, version)]
    except KeyError:
        raise UnknownMessageError(f"no contract for {type_} v{version}") from None


def parse(envelope: Envelope) -> Message:
    """The typed message inside an envelope (raises pydantic.ValidationError if bad)."""
    return lookup(envelope.type, envelope.version).model_validate(envelope.data)


def scrub(envelope: Envelope) -> dict[str, Any]:
    """The envelope's data without biometric fields: what may be logged or kept."""
    keys = set(ALWAYS_BIOMETRIC)
    try:
        cls = lookup(envelope.type, envelope.version)
        keys |= {p.split(".")[-1] for p in cls.BIOMETRIC}
    except UnknownMessageError:
        pass
    scrubbed: dict[str, Any] = _drop(envelope.data, frozenset(keys))
    return scrubbed


# Dropped from every message whatever its declared fields: a new contract that
# forgets to declare its biometric fields must not leak encodings into logs or
# the audit trail.
ALWAYS_BIOMETRIC = ("encoding", "encodings", "face_encoding", "face_encodings")


def _drop(value: Any, keys: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _drop(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [_drop(v, keys) for v in value]
    return value


__all__ = [
    "ALL",
    "ALWAYS_BIOMETRIC",
    "Command",
    "Envelope",
    "Event",
    "Message",
    "Model",
    "UnknownMessageError",
    "deterministic_id",
    "lookup",
    "now",
    "parse",
    "scrub",
    "seal",
    *approval.__all__,
    *consent.__all__,
    *intake.__all__,
    *publishing.__all__,
    *redaction.__all__,
]
