"""Consent's HTTP API and pages: schools, pupils and their consent records.

In this skeleton the writes (add a school, add a pupil) go straight through the ports:
they are single-row inserts with no message to send. Consent changes will go through
the worker as commands when they arrive.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, jsonify, render_template
from pydantic import BaseModel, ConfigDict, Field

from services.consent import domain
from services.consent.bootstrap import Ports
from shared import auth, web
from shared.errors import ConflictError, NotFoundError

bp = Blueprint("consent", __name__, template_folder="templates")


class SchoolIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    slug: str = Field(pattern=r"^[a-z0-9-]{2,40}$")
    name: str = Field(min_length=1, max_length=200)


class PupilIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    pupil_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._/-]+$")
    forename: str = Field(min_length=1, max_length=100)
    surname: str = Field(min_length=1, max_length=100)
    year_group: str = Field(default="", max_length=20)
    class_name: str = Field(default="", max_length=40)
    on_roll: bool = True
    left_on: date | None = None


def _ports() -> Ports:
    ports: Ports = web.ports()
    return ports


def _visible(identity: auth.Identity) -> list[domain.School]:
    every = _ports().schools.schools()
    allowed = auth.visible_schools(identity, *auth.ROLES)
    return [s for s in every if allowed is None or s.slug in allowed]


def _known_school(slug: str) -> None:
    if not any(s.slug == slug for s in _ports().schools.schools()):
        raise NotFoundError(f"no school {slug}")


def _pupil_json(p: domain.Pupil) -> dict[str, Any]:
    return {
        "pupil_id": p.pupil_id,
        "forename": p.forename,
        "surname": p.surname,
        "year_group": p.year_group,
        "class_name": p.class_name,
        "on_roll": p.on_roll,
        "left_on": p.left_on.isoformat() if p.left_on else None,
    }


@bp.get("/api/schools")
@auth.login_required(*auth.ROLES)
def list_schools() -> Response:
    schools = _visible(auth.current_identity())
    return jsonify(schools=[{"slug": s.slug, "name": s.name} for s in schools])


@bp.post("/api/schools")
@auth.login_required("admin")
def add_school() -> tuple[Response, int]:
    auth.require_role(auth.current_identity(), auth.TRUST_WIDE, "admin")
    body = SchoolIn.model_validate(web.json_body())
    if not _ports().schools.add_school(domain.School(body.slug, body.name)):
        raise ConflictError(f"school {body.slug} already exists", code="school_exists")
    return jsonify(slug=body.slug, name=body.name), 201


@bp.get("/api/schools/<slug>/pupils")
@auth.login_required("admin")
def list_pupils(slug: str) -> Response:
    auth.require_role(auth.current_identity(), slug, "admin")
    _known_school(slug)
    return jsonify(pupils=[_pupil_json(p) for p in _ports().pupils.pupils(slug)])


@bp.post("/api/schools/<slug>/pupils")
@auth.login_required("admin")
def add_pupil(slug: str) -> tuple[Response, int]:
    auth.require_role(auth.current_identity(), slug, "admin")
    body = PupilIn.model_validate(web.json_body())
    pupil = domain.Pupil(school_slug=slug, **body.model_dump())
    _ports().pupils.add_pupil(pupil)
    return jsonify(_pupil_json(pupil)), 201


@bp.get("/api/schools/<slug>/pupils/<pupil_id>/consents")
@auth.login_required("admin")
def pupil_consents(slug: str, pupil_id: str) -> Response:
    auth.require_role(auth.current_identity(), slug, "admin")
    if not any(p.pupil_id == pupil_id for p in _ports().pupils.pupils(slug)):
        raise NotFoundError(f"no pupil {pupil_id} in {slug}")
    records = _ports().register.history(slug, pupil_id)
    return jsonify(consents=[_jsonable(r) for r in records])


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in record.items()
    }


@bp.get("/")
@auth.login_required(*auth.ROLES)
def index() -> str:
    identity = auth.current_identity()
    schools = _visible(identity)
    roll = {
        s.slug: _ports().pupils.pupils(s.slug)
        for s in schools
        if identity.has("admin", s.slug)
    }
    return render_template("consent/index.html", schools=schools, roll=roll)
