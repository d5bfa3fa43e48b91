"""Message contracts: one module per producing service; this module is the registry.

Use as ``from shared import contracts`` then ``contracts.PostSubmitted``.
"""

from __future__ import annotations

from typing import Any

from shared.contracts.approval import (
    ApprovedImage,
    PostApproved,
    PostRejected,
    RecordDecision,
)
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
from shared.contracts.consent import FaceDecision, FacesDecided
from shared.contracts.intake import PhotoRef, PostSubmitted
from shared.contracts.publishing import PostPublished, PublishFailed
from shared.contracts.redaction import (
    Box,
    DetectedFace,
    FaceReport,
    FacesDetected,
    PhotoRedacted,
    PhotoRefused,
)

ALL: tuple[type[Message], ...] = (
    PostSubmitted,
    FacesDetected,
    PhotoRedacted,
    PhotoRefused,
    FacesDecided,
    RecordDecision,
    PostApproved,
    PostRejected,
    PostPublished,
    PublishFailed,
)

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
    "ApprovedImage",
    "Box",
    "Command",
    "DetectedFace",
    "Envelope",
    "Event",
    "FaceDecision",
    "FaceReport",
    "FacesDecided",
    "FacesDetected",
    "Message",
    "Model",
    "PhotoRedacted",
    "PhotoRef",
    "PhotoRefused",
    "PostApproved",
    "PostPublished",
    "PostRejected",
    "PostSubmitted",
    "PublishFailed",
    "RecordDecision",
    "UnknownMessageError",
    "deterministic_id",
    "lookup",
    "now",
    "parse",
    "scrub",
    "seal",
]
