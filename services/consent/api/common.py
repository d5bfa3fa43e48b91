"""What the API's routes and the pages share: the caller's schools, the admin check
and the JSON shapes of pupils, consent records and grid rows."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.consent import domain
from services.consent.bootstrap import Ports
from shared import auth, web


def current_ports() -> Ports:
    ports: Ports = web.ports()
    return ports


def visible(identity: auth.Identity) -> list[domain.School]:
    every = current_ports().views.schools()
    allowed = auth.visible_schools(identity, *auth.ROLES)
    return [s for s in every if allowed is None or s.slug in allowed]


def admin_of(slug: str) -> auth.Identity:
    """The caller, if an admin of this school (403 otherwise), and the school exists
    (404 otherwise, asked only after the role check so nothing leaks)."""
    identity = auth.current_identity()
    auth.require_role(identity, slug, "admin")
    current_ports().views.school(slug)
    return identity


def pupil_json(p: domain.Pupil) -> dict[str, Any]:
    return {
        "pupil_id": p.pupil_id,
        "forename": p.forename,
        "surname": p.surname,
        "preferred_name": p.preferred_name,
        "year_group": p.year_group,
        "class_name": p.class_name,
        "on_roll": p.on_roll,
        "left_on": p.left_on.isoformat() if p.left_on else None,
    }


def record_json(r: domain.ConsentRecord, today: date) -> dict[str, Any]:
    return {
        "id": r.record_id,
        "purpose": r.purpose,
        "platform": r.platform,
        "status": r.status,
        "state_today": r.state_on(today),
        "version": r.version,
        "ref": r.ref,
        "expires_on": r.expires_on.isoformat() if r.expires_on else None,
        "given_by": r.given_by,
        "relationship": r.relationship,
        "method": r.method,
        "evidence_ref": r.evidence_ref,
        "recorded_by": r.recorded_by,
        "recorded_at": r.recorded_at.isoformat() if r.recorded_at else None,
    }


def grid_json(row: domain.GridRow, purpose: str, today: date) -> dict[str, Any]:
    standing = row.standing
    cells = {}
    for platform in ("*", *domain.PLATFORMS):
        platforms = [] if platform == "*" else [platform]
        verdict = domain.photo_verdict(standing, purpose, platforms, [today])
        cells[platform] = "yes" if verdict.show else verdict.reason
    bio = row.biometric
    return {
        **pupil_json(row.pupil),
        "cells": cells,
        "never_publish": standing.never_publish,
        "biometric": bio.status if bio else None,
        "pupil_objects": bio.pupil_objects if bio else False,
        "enrolled": row.enrolled,
    }


def pupil_detail(slug: str, pupil_id: str) -> dict[str, Any]:
    views, today = current_ports().views, current_ports().today()
    pupil = views.pupil(slug, pupil_id)
    standing = views.standing(slug, pupil_id) or domain.Standing(pupil_id)
    bio = views.biometric(slug, pupil_id)
    flags = views.never_publish_history(slug, pupil_id)
    return {
        "pupil": pupil_json(pupil),
        "consents": [record_json(r, today) for r in standing.consents.values()],
        "history": [record_json(r, today) for r in views.history(slug, pupil_id)],
        "biometric": {
            "status": bio.status if bio else None,
            "pupil_objects": bio.pupil_objects if bio else False,
            "enrolled": views.enrolled(slug, pupil_id),
        },
        "never_publish": {
            "active": standing.never_publish,
            "history": [
                {
                    "active": f.active,
                    "category": f.category,
                    "note": f.note,
                    "version": f.version,
                    "recorded_by": f.recorded_by,
                    "recorded_at": f.recorded_at.isoformat() if f.recorded_at else None,
                }
                for f in flags
            ],
        },
    }
