"""The audit trail's rules: what a record holds, how records chain, how to verify.

Pure: no I/O. Each record carries the hash of the one before it; the hash covers the
record's sequence number, that previous hash and every field, so altering, inserting
or removing a record breaks the chain at (or right after) that record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
# Biometric keys are dropped wherever they appear, whatever the message type says.
BIOMETRIC_KEYS = frozenset({"encoding", "encodings", "embedding", "embeddings"})
ACTOR_FIELDS = ("approver_id", "approved_by", "rejected_by", "author_id")


@dataclass(frozen=True)
class Entry:
    """One message as audit keeps it (no biometric data), before it joins the chain."""

    message_id: str
    type: str
    version: int
    producer: str
    occurred_at: datetime
    recorded_at: datetime
    correlation_id: str
    causation_id: str | None
    actor: str | None
    school_id: str | None
    post_id: str | None
    photo_id: str | None
    pupil_ids: tuple[str, ...]
    device_id: str | None
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Record(Entry):
    """An entry in the chain: its place, the previous record's hash and its own."""

    seq: int
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None
    head_seq: int = 0
    head_hash: str = GENESIS


@dataclass(frozen=True)
class Query:
    """Filters for searching the trail; ``schools`` None means every school."""

    schools: frozenset[str] | None = None
    school: str | None = None
    post: str | None = None
    photo: str | None = None
    actor: str | None = None
    type: str | None = None
    pupil: str | None = None
    device: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: int = 0
    limit: int = 100


def without_biometrics(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: without_biometrics(v)
            for k, v in value.items()
            if k not in BIOMETRIC_KEYS
        }
    if isinstance(value, list | tuple):
        return [without_biometrics(v) for v in value]
    return value


def entry_for(
    *,
    message_id: str,
    type: str,
    version: int,
    producer: str,
    occurred_at: datetime,
    recorded_at: datetime,
    correlation_id: str,
    causation_id: str | None,
    actor: str | None,
    data: Mapping[str, Any],
) -> Entry:
    """The entry for one message, with the ids it mentions lifted out of its data."""
    data = without_biometrics(data)
    return Entry(
        message_id=message_id,
        type=type,
        version=version,
        producer=producer,
        occurred_at=_utc(occurred_at),
        recorded_at=_utc(recorded_at),
        correlation_id=correlation_id,
        causation_id=causation_id,
        actor=actor or _first_str(data, ACTOR_FIELDS),
        school_id=_str(data.get("school_id")),
        post_id=_str(data.get("post_id")),
        photo_id=_str(data.get("photo_id")) or _only_photo(data),
        pupil_ids=pupil_ids(data),
        device_id=_str(data.get("device_id")),
        data=data,
    )


def pupil_ids(data: Mapping[str, Any]) -> tuple[str, ...]:
    """Pupils named by a message (ids only): its ``pupil_id`` or ``pupils``, and the
    ``pupil_id`` of its ``faces``, ``decisions``, ``shown`` and ``stale`` items and of
    the ``shown`` faces of its ``images`` (an approved post)."""
    found: set[str] = set()

    def add(value: Any) -> None:
        if isinstance(value, str) and value:
            found.add(value)

    def each(items: Any) -> list[Mapping[str, Any]]:
        return (
            [i for i in items if isinstance(i, Mapping)]
            if isinstance(items, list)
            else []
        )

    add(data.get("pupil_id"))
    for pupil in (
        data.get("pupils") or [] if isinstance(data.get("pupils"), list) else []
    ):
        add(pupil)
    for key in ("faces", "decisions", "shown", "stale"):
        for item in each(data.get(key)):
            add(item.get("pupil_id"))
    for image in each(data.get("images")):
        for face in each(image.get("shown")):
            add(face.get("pupil_id"))
    return tuple(sorted(found))


def _utc(moment: datetime) -> datetime:
    """Aware UTC (a producer's naive time is taken as UTC rather than refused)."""
    return (
        moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_str(data: Mapping[str, Any], keys: Iterable[str]) -> str | None:
    return next((v for k in keys if (v := _str(data.get(k)))), None)


def _only_photo(data: Mapping[str, Any]) -> str | None:
    photos = data.get("photos")
    if isinstance(photos, list) and len(photos) == 1 and isinstance(photos[0], Mapping):
        return _str(photos[0].get("photo_id"))
    return None


def canonical(entry: Entry, seq: int, prev_hash: str) -> bytes:
    """What a record's hash covers: seq, prev_hash and every field, as sorted JSON."""
    body: dict[str, Any] = {f.name: getattr(entry, f.name) for f in fields(Entry)}
    body.update(
        seq=seq,
        prev_hash=prev_hash,
        pupil_ids=list(entry.pupil_ids),
        occurred_at=_iso(entry.occurred_at),
        recorded_at=_iso(entry.recorded_at),
    )
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def chain(entry: Entry, seq: int, prev_hash: str) -> Record:
    """``entry`` as record ``seq``, after the record whose hash is ``prev_hash``."""
    digest = hashlib.sha256(canonical(entry, seq, prev_hash)).hexdigest()
    values = {f.name: getattr(entry, f.name) for f in fields(Entry)}
    return Record(**values, seq=seq, prev_hash=prev_hash, hash=digest)


def record_hash(record: Record) -> str:
    return hashlib.sha256(canonical(record, record.seq, record.prev_hash)).hexdigest()


def verify(records: Iterable[Record]) -> VerifyResult:
    """Check the chain in seq order; report the first altered, inserted or lost one."""
    expected_seq, prev_hash, checked = 1, GENESIS, 0
    for record in records:
        if record.seq != expected_seq:
            return _bad(
                checked,
                expected_seq,
                "record missing (removed): the sequence "
                f"jumps from {expected_seq - 1} to {record.seq}",
            )
        if record.prev_hash != prev_hash:
            return _bad(
                checked,
                record.seq,
                "does not follow the previous record: "
                "a record before it was removed, inserted or altered",
            )
        if record_hash(record) != record.hash:
            return _bad(checked, record.seq, "contents do not match the hash: altered")
        checked += 1
        expected_seq, prev_hash = record.seq + 1, record.hash
    return VerifyResult(
        ok=True, checked=checked, head_seq=expected_seq - 1, head_hash=prev_hash
    )


def _bad(checked: int, seq: int, reason: str) -> VerifyResult:
    return VerifyResult(ok=False, checked=checked, first_bad_seq=seq, reason=reason)
