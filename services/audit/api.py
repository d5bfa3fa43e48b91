"""Audit's HTTP API and page: search, export and verify the trail.

Only IT auditors and administrators see the trail, and only for their schools; a
trust-wide role sees every record (including those of no school).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, render_template, request

from services.audit import domain
from services.audit.bootstrap import Ports
from services.audit.ports import AuditLog
from shared import auth, web
from shared.errors import ForbiddenError, InvalidInputError

bp = Blueprint("audit", __name__, template_folder="templates")

ROLES = ("it_auditor", "admin")
MAX_LIMIT = 1000
EXPORT_BATCH = 1000
FILTERS = ("school", "post", "photo", "actor", "type", "pupil", "device")
CSV_COLUMNS = (
    "seq",
    "message_id",
    "type",
    "version",
    "producer",
    "occurred_at",
    "recorded_at",
    "correlation_id",
    "causation_id",
    "actor",
    "school_id",
    "post_id",
    "photo_id",
    "pupil_ids",
    "device_id",
    "data",
    "prev_hash",
    "hash",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _ports() -> Ports:
    ports: Ports = web.ports()
    return ports


def query_from_request(identity: auth.Identity) -> domain.Query:
    """The caller's filters, confined to the schools they may see."""
    args = request.args
    values: dict[str, Any] = {k: args.get(k) or None for k in FILTERS}
    visible = auth.visible_schools(identity, *ROLES)
    if values["school"] and visible is not None and values["school"] not in visible:
        raise ForbiddenError(f"no audit role for school {values['school']}")
    return domain.Query(
        schools=None if visible is None else frozenset(visible),
        since=_moment(args.get("since"), "since"),
        until=_moment(args.get("until"), "until"),
        after=_int(args.get("after"), "after", 0, 0),
        limit=_int(args.get("limit"), "limit", 100, 1, MAX_LIMIT),
        **values,
    )


def _moment(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(f"{name} must be an ISO 8601 date or time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _int(
    text: str | None, name: str, default: int, low: int, high: int | None = None
) -> int:
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidInputError(f"{name} must be a whole number") from None
    if value < low or (high is not None and value > high):
        raise InvalidInputError(f"{name} must be between {low} and {high or 'any'}")
    return value


def record_json(record: domain.Record) -> dict[str, Any]:
    out = asdict(record)
    out["occurred_at"] = record.occurred_at.isoformat()
    out["recorded_at"] = record.recorded_at.isoformat()
    out["pupil_ids"] = list(record.pupil_ids)
    return out


@bp.get("/api/events")
@auth.login_required(*ROLES)
def events() -> Response:
    query = query_from_request(auth.current_identity())
    records = _ports().log.search(query)
    more = len(records) == query.limit
    return jsonify(
        events=[record_json(r) for r in records],
        next_after=records[-1].seq if more else None,
    )


@bp.get("/api/export")
@auth.login_required(*ROLES)
def export() -> Response:
    kind = request.args.get("format", "jsonl")
    if kind not in ("jsonl", "csv"):
        raise InvalidInputError("format must be jsonl or csv")
    query = replace(query_from_request(auth.current_identity()), limit=EXPORT_BATCH)
    log = _ports().log
    lines = _jsonl(log, query) if kind == "jsonl" else _csv(log, query)
    mimetype = "application/x-ndjson" if kind == "jsonl" else "text/csv"
    response = Response(lines, mimetype=mimetype)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="audit-{stamp}.{kind}"'
    )
    return response


def _all(log: AuditLog, query: domain.Query) -> Iterator[domain.Record]:
    while True:  # runs while streaming, after the view returned: no request context
        batch = log.search(query)
        yield from batch
        if len(batch) < query.limit:
            return
        query = replace(query, after=batch[-1].seq)


def _jsonl(log: AuditLog, query: domain.Query) -> Iterator[str]:
    for record in _all(log, query):
        yield json.dumps(record_json(record), sort_keys=True) + "\n"


def _csv(log: AuditLog, query: domain.Query) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for record in _all(log, query):
        row = record_json(record)
        writer.writerow([csv_cell(row[c]) for c in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    if isinstance(value, list | dict):
        value = json.dumps(value, sort_keys=True)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


@bp.get("/api/verify")
@auth.login_required(*ROLES)
def verify() -> Response:
    auth.require_role(auth.current_identity(), auth.TRUST_WIDE, *ROLES)
    return jsonify(asdict(domain.verify(_ports().log.chain())))


@bp.get("/")
@auth.login_required(*ROLES)
def index() -> str:
    identity = auth.current_identity()
    query = query_from_request(identity)
    records = _ports().log.search(query)
    return render_template(
        "audit/index.html",
        records=records,
        args=request.args,
        filters=FILTERS,
        chosen={
            k: v
            for k, v in request.args.items()
            if v and k in (*FILTERS, "since", "until")
        },
        next_after=records[-1].seq if len(records) == query.limit else None,
        trust_wide=auth.visible_schools(identity, *ROLES) is None,
    )
