"""Administrative functions for the CLI, the demo seed and ``safepost redact``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from services.consent import domain, handlers, importing
from services.consent.adapters import NeverPublish
from services.consent.bootstrap import Ports
from shared import contracts
from shared.errors import InvalidInputError, NotFoundError


def add_school(ports: Ports, slug: str, name: str) -> bool:
    """Create a school unless it exists (idempotent); True if it was created."""
    if not domain.SLUG.match(slug):
        raise InvalidInputError("a school slug is 2-40 of a-z, 0-9 and -")
    if not name.strip():
        raise InvalidInputError("a school needs a name")
    created: bool = ports.store.add_school(domain.School(slug, name.strip()))
    return created


def list_schools(ports: Ports) -> list[domain.School]:
    schools: list[domain.School] = ports.store.schools()
    return schools


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
    info = ports.store.school(school)
    today = ports.today()
    try:
        rows, errors = importing.parse_with_errors(data, info, today)
    except importing.CsvFileError as exc:
        raise InvalidInputError(str(exc), code="bad_csv") from None
    if errors:
        return importing.ImportReport(rows=len(rows) + len(errors), errors=errors)
    report: importing.ImportReport = ports.store.apply_import(
        school, rows, by, today, dry_run
    )
    return report


def export_csv(ports: Ports, school: str) -> str:
    return importing.export(ports.store.export_rows(school))


def enrol(
    ports: Ports, school: str, pupil_id: str, photos: Sequence[Path], *, by: str
) -> int:
    """Encode reference photos (exactly one face each) and enrol the pupil; the
    photos are never stored. The number of encodings the pupil now has."""
    ports.store.pupil(school, pupil_id)  # NotFoundError first
    encodings = [ports.enroller.encode(p.read_bytes(), p.name) for p in photos]
    enrolled: int = ports.store.enrol(school, pupil_id, encodings, by)
    return enrolled


def show(ports: Ports, school: str, pupil_id: str) -> dict[str, Any]:
    """A pupil's roll details, consent in force and history (for the CLI)."""
    pupil = ports.store.pupil(school, pupil_id)
    standing = ports.store.standings(school, [pupil_id]).get(pupil_id)
    if standing is None:
        raise NotFoundError(f"no pupil {pupil_id} in {school}")
    bio = ports.store.biometric(school, pupil_id)
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
        "enrolled_encodings": ports.store.enrolled(school, pupil_id),
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
            for r in ports.store.history(school, pupil_id)
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
    store = ports.store
    today = ports.today()
    existing = {p.pupil_id for p in store.pupils(school)}
    added = 0
    for pupil_id, forename, surname, class_name, kind in DEMO_PUPILS:
        if pupil_id in existing:
            continue
        store.add_pupil(
            domain.Pupil(school, pupil_id, forename, surname, "Y5", class_name)
        )
        added += 1
        expiry = domain.default_expiry(store.school(school), today)
        status = {"expired": "granted", "withdrawn": "granted"}.get(kind, kind)
        if kind in ("never_publish", "granted_facebook_only"):
            status = "granted"
        record = domain.ConsentRecord(
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
        store.record_consent(school, record, today)
        if kind == "withdrawn":
            store.record_consent(
                school,
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
                ),
                today,
            )
        if kind == "granted_facebook_only":
            for platform in ("instagram", "x"):
                store.record_consent(
                    school,
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
                    ),
                    today,
                )
        if kind == "never_publish":
            store.set_never_publish(
                school, pupil_id, NeverPublish(True, "looked_after"), "demo", today
            )
    return added
