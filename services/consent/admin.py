"""Administrative functions for the CLI, the demo seed and ``safepost redact``: the
same use cases as the API (``use_cases``), each in its own unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from services.consent import domain, handlers, importing, use_cases
from services.consent.bootstrap import Ports
from services.consent.ports import Enroller
from shared import contracts
from shared.errors import DomainError, InvalidInputError, NotFoundError


class NoEnrollerError(DomainError):
    code = "no_enroller"
    status = 503


def add_school(ports: Ports, slug: str, name: str) -> bool:
    """Create a school unless it exists (idempotent); True if it was created."""
    if not domain.SLUG.match(slug):
        raise InvalidInputError("a school slug is 2-40 of a-z, 0-9 and -")
    if not name.strip():
        raise InvalidInputError("a school needs a name")
    return use_cases.add_school(ports.relayed_unit(), domain.School(slug, name.strip()))


def list_schools(ports: Ports) -> list[domain.School]:
    return ports.views.schools()


def enroller(ports: Ports) -> Enroller:
    if ports.enroller is None:
        raise NoEnrollerError("face enrolment is not available here")
    return ports.enroller


def decide(
    ports: Ports,
    event: contracts.FacesDetected,
    scopes: Sequence[domain.Scope] | None = None,
) -> contracts.FacesDecided:
    """Exactly the worker's decision for one photo (for ``safepost redact``): for the
    event's target accounts, or for the ``scopes`` (purpose, platform) an operator
    names on the command line."""
    if scopes is None:
        [decided] = handlers.decide_faces(
            event,
            gallery=ports.gallery,
            register=ports.register,
            names=ports.names,
            accounts=ports.accounts,
            today=ports.today,
        )
    else:
        [decided] = handlers.decide_with_scopes(
            event,
            scopes,
            gallery=ports.gallery,
            register=ports.register,
            names=ports.names,
            today=ports.today,
        )
    assert isinstance(decided, contracts.FacesDecided)
    return decided


def import_csv(
    ports: Ports, school: str, data: bytes, *, by: str, dry_run: bool = False
) -> importing.ImportReport:
    """Import pupils and consents; all or nothing. Row errors come back in the
    report (nothing applied); an unreadable file raises InvalidInputError."""
    info = ports.views.school(school)
    today = ports.today()
    try:
        rows, errors = importing.parse_with_errors(data, info, today)
    except importing.CsvFileError as exc:
        raise InvalidInputError(str(exc), code="bad_csv") from None
    if errors:
        return importing.ImportReport(rows=len(rows) + len(errors), errors=errors)
    return use_cases.import_rows(
        ports.relayed_unit(),
        school,
        rows,
        by=by,
        today=today,
        dry_run=dry_run,
        policy=ports.policy,
    )


def export_csv(ports: Ports, school: str) -> str:
    return importing.export(ports.views.export_rows(school))


def enrol(
    ports: Ports, school: str, pupil_id: str, photos: Sequence[Path], *, by: str
) -> int:
    """Encode reference photos (exactly one face each) and enrol the pupil; the
    photos are never stored. The number of encodings the pupil now has."""
    ports.views.pupil(school, pupil_id)  # NotFoundError first
    encoder = enroller(ports)
    encodings = [encoder.encode(p.read_bytes(), p.name) for p in photos]
    return use_cases.enrol(ports.relayed_unit(), school, pupil_id, encodings, by)


def show(ports: Ports, school: str, pupil_id: str) -> dict[str, Any]:
    """A pupil's roll details, consent in force and history (for the CLI)."""
    views = ports.views
    pupil = views.pupil(school, pupil_id)
    standing = views.standing(school, pupil_id)
    if standing is None:
        raise NotFoundError(f"no pupil {pupil_id} in {school}")
    bio = views.biometric(school, pupil_id)
    today = ports.today()
    return {
        "pupil_id": pupil.pupil_id,
        "name": f"{pupil.forename} {pupil.surname}",
        "class": pupil.class_name,
        "year_group": pupil.year_group,
        "on_roll": pupil.on_roll,
        "never_publish": standing.never_publish,
        "biometric_consent": bio.status if bio else None,
        "pupil_objects": bio.pupil_objects if bio else False,
        "enrolled_encodings": views.enrolled(school, pupil_id),
        "consents": {
            f"{purpose}/{platform or '*'}": {
                "status": r.status,
                "state_today": r.state_on(today),
                "expires_on": r.expires_on.isoformat() if r.expires_on else None,
                "version": r.ref,
            }
            for (purpose, platform), r in sorted(
                standing.consents.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")
            )
        },
        "history": [
            {
                "scope": f"{r.purpose}/{r.platform or '*'}",
                "version": r.version,
                "status": r.status,
                "recorded_by": r.recorded_by,
                "recorded_at": r.recorded_at.isoformat() if r.recorded_at else None,
            }
            for r in views.history(school, pupil_id)
        ],
    }


DEMO_PUPILS = (
    # pupil id, forename, surname, class, what the demo shows
    ("DEMO001", "Ada", "Lovelace", "5B", "granted"),
    ("DEMO002", "Alan", "Turing", "5B", "refused"),
    ("DEMO003", "Grace", "Hopper", "5B", "withdrawn"),
    ("DEMO004", "Katherine", "Johnson", "5B", "expired"),
    ("DEMO005", "Tim", "Berners-Lee", "5B", "not_returned"),
    ("DEMO006", "Mary", "Somerville", "5B", "never_publish"),
    ("DEMO007", "Charles", "Babbage", "6A", "granted_facebook_only"),
)


def seed_demo_pupils(ports: Ports, school: str) -> int:
    """A handful of demo pupils with varied consent (idempotent); the number added."""
    today = ports.today()
    existing = {p.pupil_id for p in ports.views.pupils(school)}
    expiry = domain.default_expiry(ports.views.school(school), today)
    added = 0
    for pupil_id, forename, surname, class_name, kind in DEMO_PUPILS:
        if pupil_id in existing:
            continue
        use_cases.add_pupil(
            ports.relayed_unit(),
            domain.Pupil(school, pupil_id, forename, surname, "Y5", class_name),
        )
        added += 1
        for record in _demo_consents(pupil_id, kind, expiry, today):
            use_cases.record_consent(ports.relayed_unit(), school, record, today)
        if kind == "never_publish":
            use_cases.set_never_publish(
                ports.relayed_unit(),
                school,
                pupil_id,
                domain.NeverPublish(True, "looked_after"),
                "demo",
                today,
            )
    return added


def _demo_consents(
    pupil_id: str, kind: str, expiry: date, today: date
) -> list[domain.ConsentRecord]:
    status = {"expired": "granted", "withdrawn": "granted"}.get(kind, kind)
    if kind in ("never_publish", "granted_facebook_only"):
        status = "granted"
    records = [
        domain.ConsentRecord(
            pupil_id=pupil_id,
            purpose="social_media",
            platform=None,
            status=status,
            version=0,
            expires_on=today - timedelta(days=1) if kind == "expired" else expiry,
            given_by="Demo parent",
            relationship="parent",
            method="paper",
            evidence_ref=f"demo-form-{pupil_id}",
            recorded_by="demo",
        )
    ]
    if kind == "withdrawn":
        records.append(
            domain.ConsentRecord(
                pupil_id,
                "social_media",
                None,
                "withdrawn",
                0,
                given_by="Demo parent",
                relationship="parent",
                method="online",
                recorded_by="demo",
            )
        )
    if kind == "granted_facebook_only":
        records += [
            domain.ConsentRecord(
                pupil_id,
                "social_media",
                platform,
                "refused",
                0,
                expires_on=expiry,
                given_by="Demo parent",
                relationship="parent",
                method="paper",
                recorded_by="demo",
            )
            for platform in ("instagram", "x")
        ]
    return records
