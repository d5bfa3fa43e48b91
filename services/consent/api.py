"""Consent's HTTP API and pages: schools, pupils, consent, never-publish, enrolment.

Everything about pupils is for the school's admins only (``admin`` for that school or
trust-wide); the never-publish flag too: there is no separate designated-safeguarding
role, so admin is the restricted role. Writes go straight to the SQL store, each in one
transaction with its ``ConsentChanged`` envelope in the outbox (see
docs/architecture.md "Consent" for why not a command to the worker).
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from flask import Blueprint, Response, jsonify, render_template, request, url_for
from pydantic import BaseModel, ConfigDict, Field

from services.consent import admin, domain
from services.consent.adapters import NeverPublish
from services.consent.bootstrap import Ports
from shared import auth, web
from shared.errors import ConflictError, InvalidInputError, NotFoundError

bp = Blueprint("consent", __name__, template_folder="templates")

MAX_REFERENCE_PHOTOS = 5
MAX_CSV_BYTES = 30 * 1024 * 1024
MAX_LABELS = 100  # faces in one post worth labelling at once

Status = Literal["granted", "refused", "withdrawn", "not_returned"]


class SchoolIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    slug: str = Field(pattern=r"^[a-z0-9-]{2,40}$")
    name: str = Field(min_length=1, max_length=200)


class PupilIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    pupil_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._/-]+$")
    forename: str = Field(min_length=1, max_length=100)
    surname: str = Field(min_length=1, max_length=100)
    preferred_name: str = Field(default="", max_length=100)
    year_group: str = Field(default="", max_length=20)
    class_name: str = Field(default="", max_length=40)
    on_roll: bool = True
    left_on: date | None = None


class PupilPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    forename: str | None = Field(default=None, min_length=1, max_length=100)
    surname: str | None = Field(default=None, min_length=1, max_length=100)
    preferred_name: str | None = Field(default=None, max_length=100)
    year_group: str | None = Field(default=None, max_length=20)
    class_name: str | None = Field(default=None, max_length=40)
    on_roll: bool | None = None
    left_on: date | None = None


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    purpose: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    platform: str | None = Field(default=None, pattern=r"^[a-z0-9_]{1,40}$")
    status: Status
    given_by: str = Field(default="", max_length=200)
    relationship: str = Field(default="", max_length=40)
    method: Literal["paper", "online", "mis_import", ""] = ""
    evidence_ref: str = Field(default="", max_length=200)
    expires_on: date | None = None


class BiometricIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: Status
    pupil_objects: bool = False
    given_by: str = Field(default="", max_length=200)
    relationship: str = Field(default="", max_length=40)
    method: Literal["paper", "online", "mis_import", ""] = ""
    evidence_ref: str = Field(default="", max_length=200)


class NeverPublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    active: bool
    category: Literal[
        "looked_after", "adopted", "at_risk", "court_order", "other", ""
    ] = ""
    note: str = Field(default="", max_length=500)


def _ports() -> Ports:
    ports: Ports = web.ports()
    return ports


def _visible(identity: auth.Identity) -> list[domain.School]:
    every = _ports().store.schools()
    allowed = auth.visible_schools(identity, *auth.ROLES)
    return [s for s in every if allowed is None or s.slug in allowed]


def _admin_of(slug: str) -> auth.Identity:
    """The caller, if an admin of this school (403 otherwise), and the school exists
    (404 otherwise, asked only after the role check so nothing leaks)."""
    identity = auth.current_identity()
    auth.require_role(identity, slug, "admin")
    _ports().store.school(slug)
    return identity


def _pupil_json(p: domain.Pupil) -> dict[str, Any]:
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


def _record_json(r: domain.ConsentRecord, today: date) -> dict[str, Any]:
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


def _grid_json(row: dict[str, Any], purpose: str, today: date) -> dict[str, Any]:
    standing: domain.Standing = row["standing"]
    cells = {}
    for platform in ("*", *domain.PLATFORMS):
        platforms = [] if platform == "*" else [platform]
        verdict = domain.photo_verdict(standing, purpose, platforms, [today])
        cells[platform] = "yes" if verdict.show else verdict.reason
    bio = row["biometric"]
    return {
        **_pupil_json(row["pupil"]),
        "cells": cells,
        "never_publish": standing.never_publish,
        "biometric": bio.status if bio else None,
        "pupil_objects": bio.pupil_objects if bio else False,
        "enrolled": row["enrolled"],
    }


# Schools.


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
    if not _ports().store.add_school(domain.School(body.slug, body.name)):
        raise ConflictError(f"school {body.slug} already exists", code="school_exists")
    return jsonify(slug=body.slug, name=body.name), 201


# Pupils.


@bp.get("/api/schools/<slug>/pupils")
@auth.login_required("admin")
def list_pupils(slug: str) -> Response:
    _admin_of(slug)
    found = _ports().store.pupils(
        slug,
        query=request.args.get("q", "")[:100],
        class_name=request.args.get("class"),
    )
    return jsonify(pupils=[_pupil_json(p) for p in found])


@bp.post("/api/schools/<slug>/pupils")
@auth.login_required("admin")
def add_pupil(slug: str) -> tuple[Response, int]:
    auth.require_role(auth.current_identity(), slug, "admin")
    body = PupilIn.model_validate(web.json_body())
    pupil = domain.Pupil(school_slug=slug, **body.model_dump())
    _ports().store.add_pupil(pupil)
    return jsonify(_pupil_json(pupil)), 201


@bp.get("/api/schools/<slug>/labels")
@auth.login_required("approver", "admin")
def pupil_labels(slug: str) -> Response:
    """Initials and class of the given pupils (``?ids=a,b``), for the approver's view of
    who is shown; unknown ids are left out. Nothing more of a pupil leaves consent."""
    auth.require_role(auth.current_identity(), slug, "approver", "admin")
    wanted = [i for i in request.args.get("ids", "").split(",") if i][:MAX_LABELS]
    store = _ports().store
    found = {}
    for pupil_id in wanted:
        try:
            found[pupil_id] = domain.label(store.pupil(slug, pupil_id))
        except NotFoundError:
            continue
    return jsonify(labels=found)


@bp.get("/api/schools/<slug>/pupils/<pupil_id>")
@auth.login_required("admin")
def get_pupil(slug: str, pupil_id: str) -> Response:
    _admin_of(slug)
    return jsonify(_pupil_detail(slug, pupil_id))


def _pupil_detail(slug: str, pupil_id: str) -> dict[str, Any]:
    store, today = _ports().store, _ports().today()
    pupil = store.pupil(slug, pupil_id)
    standing = store.standings(slug, [pupil_id])[pupil_id]
    bio = store.biometric(slug, pupil_id)
    flags = store.never_publish_history(slug, pupil_id)
    return {
        "pupil": _pupil_json(pupil),
        "consents": [_record_json(r, today) for r in standing.consents.values()],
        "history": [_record_json(r, today) for r in store.history(slug, pupil_id)],
        "biometric": {
            "status": bio.status if bio else None,
            "pupil_objects": bio.pupil_objects if bio else False,
            "enrolled": store.enrolled(slug, pupil_id),
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


@bp.patch("/api/schools/<slug>/pupils/<pupil_id>")
@auth.login_required("admin")
def update_pupil(slug: str, pupil_id: str) -> Response:
    identity = _admin_of(slug)
    body = PupilPatch.model_validate(web.json_body())
    store = _ports().store
    current = store.pupil(slug, pupil_id)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("on_roll") is False and not changes.get("left_on"):
        changes["left_on"] = _ports().today()
    if changes.get("on_roll") is True:
        changes["left_on"] = None
    updated = domain.Pupil(**{**vars(current), **changes})
    deleted = store.update_pupil(updated, identity.username, _ports().today())
    return jsonify(pupil=_pupil_json(updated), encodings_deleted=deleted)


@bp.get("/api/schools/<slug>/pupils/<pupil_id>/consents")
@auth.login_required("admin")
def pupil_consents(slug: str, pupil_id: str) -> Response:
    _admin_of(slug)
    store, today = _ports().store, _ports().today()
    store.pupil(slug, pupil_id)
    return jsonify(
        consents=[_record_json(r, today) for r in store.history(slug, pupil_id)]
    )


@bp.post("/api/schools/<slug>/pupils/<pupil_id>/consents")
@auth.login_required("admin")
def record_consent(slug: str, pupil_id: str) -> tuple[Response, int]:
    identity = _admin_of(slug)
    body = ConsentIn.model_validate(web.json_body())
    store, today = _ports().store, _ports().today()
    expires = body.expires_on
    if body.status == "granted" and expires is None:
        expires = domain.default_expiry(store.school(slug), today)
    record = domain.ConsentRecord(
        pupil_id=pupil_id,
        purpose=body.purpose,
        platform=body.platform,
        status=body.status,
        version=0,
        expires_on=expires,
        given_by=body.given_by,
        relationship=body.relationship,
        method=body.method,
        evidence_ref=body.evidence_ref,
        recorded_by=identity.username,
    )
    saved = store.record_consent(slug, record, today)
    return jsonify(_record_json(saved, today)), 201


@bp.post("/api/schools/<slug>/pupils/<pupil_id>/biometric")
@auth.login_required("admin")
def record_biometric(slug: str, pupil_id: str) -> tuple[Response, int]:
    identity = _admin_of(slug)
    body = BiometricIn.model_validate(web.json_body())
    deleted = _ports().store.record_biometric(
        slug,
        domain.BiometricConsent(pupil_id, body.status, body.pupil_objects),
        identity.username,
        given_by=body.given_by,
        relationship=body.relationship,
        method=body.method,
        evidence_ref=body.evidence_ref,
    )
    return jsonify(status=body.status, encodings_deleted=deleted), 201


@bp.post("/api/schools/<slug>/pupils/<pupil_id>/enrolment")
@auth.login_required("admin")
def enrol(slug: str, pupil_id: str) -> tuple[Response, int]:
    """Reference photos (multipart ``photo``) -> encodings; the photos are not kept."""
    identity = _admin_of(slug)
    photos = request.files.getlist("photo")
    if not photos:
        raise InvalidInputError("send one or more reference photos as 'photo'")
    if len(photos) > MAX_REFERENCE_PHOTOS:
        raise InvalidInputError(f"at most {MAX_REFERENCE_PHOTOS} photos at a time")
    store = _ports().store
    pupil = store.pupil(slug, pupil_id)
    refusal = domain.may_enrol(pupil, store.biometric(slug, pupil_id))
    if refusal is not None:
        raise ConflictError(
            f"{pupil_id} may not be enrolled: {refusal}", code="not_enrollable"
        )
    encodings = [
        _ports().enroller.encode(f.read(), f.filename or "photo") for f in photos
    ]
    enrolled = store.enrol(slug, pupil_id, encodings, identity.username)
    return jsonify(enrolled=enrolled), 201


@bp.delete("/api/schools/<slug>/pupils/<pupil_id>/enrolment")
@auth.login_required("admin")
def forget_faces(slug: str, pupil_id: str) -> Response:
    _admin_of(slug)
    _ports().store.pupil(slug, pupil_id)
    return jsonify(encodings_deleted=_ports().store.forget_faces(slug, pupil_id))


@bp.put("/api/schools/<slug>/pupils/<pupil_id>/never-publish")
@auth.login_required("admin")
def set_never_publish(slug: str, pupil_id: str) -> Response:
    identity = _admin_of(slug)
    body = NeverPublishIn.model_validate(web.json_body())
    if body.active and not body.category:
        raise InvalidInputError("say why: looked_after, adopted, at_risk, ...")
    saved = _ports().store.set_never_publish(
        slug,
        pupil_id,
        NeverPublish(body.active, body.category, body.note),
        identity.username,
        _ports().today(),
    )
    return jsonify(active=saved.active, version=saved.version)


@bp.get("/api/schools/<slug>/grid")
@auth.login_required("admin")
def grid(slug: str) -> Response:
    _admin_of(slug)
    purpose = request.args.get("purpose", "social_media")
    rows = _ports().store.grid(slug, request.args.get("class"))
    today = _ports().today()
    return jsonify(
        purpose=purpose,
        platforms=["*", *domain.PLATFORMS],
        pupils=[_grid_json(r, purpose, today) for r in rows],
    )


@bp.post("/api/schools/<slug>/import")
@auth.login_required("admin")
def import_csv(slug: str) -> tuple[Response, int]:
    """CSV as the body (text/csv) or a multipart ``file``; ``?dry_run=1`` changes
    nothing. 422 with per-line errors when any row is bad (nothing applied)."""
    identity = _admin_of(slug)
    upload = request.files.get("file")
    data = upload.read() if upload is not None else request.get_data()
    if not data:
        raise InvalidInputError("send the CSV file")
    if len(data) > MAX_CSV_BYTES:
        raise InvalidInputError("the CSV file is too large", status=413)
    dry_run = request.args.get("dry_run", "") in ("1", "true", "yes")
    report = admin.import_csv(
        _ports(), slug, data, by=identity.username, dry_run=dry_run
    )
    return jsonify(report.as_dict()), 422 if report.errors else 200


@bp.get("/api/schools/<slug>/export.csv")
@auth.login_required("admin")
def export_csv(slug: str) -> Response:
    _admin_of(slug)
    text = admin.export_csv(_ports(), slug)
    return Response(
        "\ufeff" + text,  # a BOM so that spreadsheets read UTF-8
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{slug}-consent.csv"'},
    )


# Pages.


@bp.get("/")
@auth.login_required(*auth.ROLES)
def index() -> str:
    identity = auth.current_identity()
    schools = _visible(identity)
    admin_of = {s.slug for s in schools if identity.has("admin", s.slug)}
    return render_template("consent/index.html", schools=schools, admin_of=admin_of)


@bp.get("/schools/<slug>/pupils")
@auth.login_required("admin")
def pupils_page(slug: str) -> str:
    _admin_of(slug)
    query = request.args.get("q", "")[:100]
    store = _ports().store
    return render_template(
        "consent/pupils.html",
        school=store.school(slug),
        pupils=store.pupils(slug, query=query),
        classes=store.classes(slug),
        query=query,
    )


@bp.get("/schools/<slug>/grid")
@auth.login_required("admin")
def grid_page(slug: str) -> str:
    _admin_of(slug)
    store, today = _ports().store, _ports().today()
    classes = store.classes(slug)
    chosen = request.args.get("class", classes[0] if classes else "")
    purpose = request.args.get("purpose", "social_media")
    if purpose not in domain.PURPOSES:
        raise InvalidInputError(f"unknown purpose {purpose}")
    rows = [_grid_json(r, purpose, today) for r in store.grid(slug, chosen)]
    return render_template(
        "consent/grid.html",
        school=store.school(slug),
        classes=classes,
        chosen=chosen,
        purpose=purpose,
        purposes=domain.PURPOSES,
        platforms=["*", *domain.PLATFORMS],
        rows=rows,
    )


@bp.get("/schools/<slug>/pupils/<pupil_id>")
@auth.login_required("admin")
def pupil_page(slug: str, pupil_id: str) -> str:
    _admin_of(slug)
    detail = _pupil_detail(slug, pupil_id)
    return render_template(
        "consent/pupil.html",
        school=_ports().store.school(slug),
        detail=detail,
        purposes=domain.PURPOSES,
        platforms=domain.PLATFORMS,
        api=url_for("consent.get_pupil", slug=slug, pupil_id=pupil_id),
    )
