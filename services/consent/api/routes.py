"""The JSON API: schools, pupils, consent, never-publish, enrolment, import/export."""

from __future__ import annotations

from flask import Response, jsonify, request

from services.consent import admin, domain, use_cases
from services.consent.api import bp
from services.consent.api.bodies import (
    MAX_CSV_BYTES,
    MAX_LABELS,
    MAX_REFERENCE_PHOTOS,
    BiometricIn,
    ConsentIn,
    NeverPublishIn,
    PupilIn,
    PupilPatch,
    SchoolIn,
)
from services.consent.api.common import (
    admin_of,
    current_ports,
    grid_json,
    pupil_detail,
    pupil_json,
    record_json,
    visible,
)
from shared import auth, web
from shared.errors import ConflictError, InvalidInputError, NotFoundError

# Schools.


@bp.get("/api/schools")
@auth.login_required(*auth.ROLES)
def list_schools() -> Response:
    schools = visible(auth.current_identity())
    return jsonify(schools=[{"slug": s.slug, "name": s.name} for s in schools])


@bp.post("/api/schools")
@auth.login_required("admin")
def add_school() -> tuple[Response, int]:
    auth.require_role(auth.current_identity(), auth.TRUST_WIDE, "admin")
    body = SchoolIn.model_validate(web.json_body())
    if not use_cases.add_school(
        current_ports().relayed_unit(), domain.School(body.slug, body.name)
    ):
        raise ConflictError(f"school {body.slug} already exists", code="school_exists")
    return jsonify(slug=body.slug, name=body.name), 201


# Pupils.


@bp.get("/api/schools/<slug>/pupils")
@auth.login_required("admin")
def list_pupils(slug: str) -> Response:
    admin_of(slug)
    found = current_ports().views.pupils(
        slug,
        query=request.args.get("q", "")[:100],
        class_name=request.args.get("class"),
    )
    return jsonify(pupils=[pupil_json(p) for p in found])


@bp.post("/api/schools/<slug>/pupils")
@auth.login_required("admin")
def add_pupil(slug: str) -> tuple[Response, int]:
    auth.require_role(auth.current_identity(), slug, "admin")
    body = PupilIn.model_validate(web.json_body())
    pupil = domain.Pupil(school_slug=slug, **body.model_dump())
    use_cases.add_pupil(current_ports().relayed_unit(), pupil)
    return jsonify(pupil_json(pupil)), 201


@bp.get("/api/schools/<slug>/labels")
@auth.login_required("approver", "admin")
def pupil_labels(slug: str) -> Response:
    """Initials and class of the given pupils (``?ids=a,b``), for the approver's view of
    who is shown; unknown ids are left out. Nothing more of a pupil leaves consent."""
    auth.require_role(auth.current_identity(), slug, "approver", "admin")
    wanted = [i for i in request.args.get("ids", "").split(",") if i][:MAX_LABELS]
    views = current_ports().views
    found = {}
    for pupil_id in wanted:
        try:
            found[pupil_id] = domain.label(views.pupil(slug, pupil_id))
        except NotFoundError:
            continue
    return jsonify(labels=found)


@bp.get("/api/schools/<slug>/pupils/<pupil_id>")
@auth.login_required("admin")
def get_pupil(slug: str, pupil_id: str) -> Response:
    admin_of(slug)
    return jsonify(pupil_detail(slug, pupil_id))


@bp.patch("/api/schools/<slug>/pupils/<pupil_id>")
@auth.login_required("admin")
def update_pupil(slug: str, pupil_id: str) -> Response:
    admin_of(slug)
    body = PupilPatch.model_validate(web.json_body())
    ports = current_ports()
    current = ports.views.pupil(slug, pupil_id)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("on_roll") is False and not changes.get("left_on"):
        changes["left_on"] = current_ports().today()
    if changes.get("on_roll") is True:
        changes["left_on"] = None
    updated = domain.Pupil(**{**vars(current), **changes})
    deleted = use_cases.update_pupil(
        ports.relayed_unit(), updated, ports.today(), ports.policy
    )
    return jsonify(pupil=pupil_json(updated), encodings_deleted=deleted)


@bp.get("/api/schools/<slug>/pupils/<pupil_id>/consents")
@auth.login_required("admin")
def pupil_consents(slug: str, pupil_id: str) -> Response:
    admin_of(slug)
    views, today = current_ports().views, current_ports().today()
    views.pupil(slug, pupil_id)
    return jsonify(
        consents=[record_json(r, today) for r in views.history(slug, pupil_id)]
    )


@bp.post("/api/schools/<slug>/pupils/<pupil_id>/consents")
@auth.login_required("admin")
def record_consent(slug: str, pupil_id: str) -> tuple[Response, int]:
    identity = admin_of(slug)
    body = ConsentIn.model_validate(web.json_body())
    ports = current_ports()
    today = ports.today()
    expires = body.expires_on
    if body.status == "granted" and expires is None:
        expires = domain.default_expiry(ports.views.school(slug), today)
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
    saved = use_cases.record_consent(ports.relayed_unit(), slug, record, today)
    return jsonify(record_json(saved, today)), 201


@bp.post("/api/schools/<slug>/pupils/<pupil_id>/biometric")
@auth.login_required("admin")
def record_biometric(slug: str, pupil_id: str) -> tuple[Response, int]:
    identity = admin_of(slug)
    body = BiometricIn.model_validate(web.json_body())
    deleted = use_cases.record_biometric(
        current_ports().relayed_unit(),
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
    identity = admin_of(slug)
    photos = request.files.getlist("photo")
    if not photos:
        raise InvalidInputError("send one or more reference photos as 'photo'")
    if len(photos) > MAX_REFERENCE_PHOTOS:
        raise InvalidInputError(f"at most {MAX_REFERENCE_PHOTOS} photos at a time")
    ports = current_ports()
    pupil = ports.views.pupil(slug, pupil_id)
    refusal = domain.may_enrol(pupil, ports.views.biometric(slug, pupil_id))
    if refusal is not None:
        raise ConflictError(
            f"{pupil_id} may not be enrolled: {refusal}", code="not_enrollable"
        )
    enroller = admin.enroller(ports)
    encodings = [enroller.encode(f.read(), f.filename or "photo") for f in photos]
    enrolled = use_cases.enrol(
        ports.relayed_unit(), slug, pupil_id, encodings, identity.username
    )
    return jsonify(enrolled=enrolled), 201


@bp.delete("/api/schools/<slug>/pupils/<pupil_id>/enrolment")
@auth.login_required("admin")
def forget_faces(slug: str, pupil_id: str) -> Response:
    admin_of(slug)
    deleted = use_cases.forget_faces(current_ports().relayed_unit(), slug, pupil_id)
    return jsonify(encodings_deleted=deleted)


@bp.put("/api/schools/<slug>/pupils/<pupil_id>/never-publish")
@auth.login_required("admin")
def set_never_publish(slug: str, pupil_id: str) -> Response:
    identity = admin_of(slug)
    body = NeverPublishIn.model_validate(web.json_body())
    if body.active and not body.category:
        raise InvalidInputError("say why: looked_after, adopted, at_risk, ...")
    saved = use_cases.set_never_publish(
        current_ports().relayed_unit(),
        slug,
        pupil_id,
        domain.NeverPublish(body.active, body.category, body.note),
        identity.username,
        current_ports().today(),
    )
    return jsonify(active=saved.active, version=saved.version)


@bp.get("/api/schools/<slug>/grid")
@auth.login_required("admin")
def grid(slug: str) -> Response:
    admin_of(slug)
    purpose = request.args.get("purpose", "social_media")
    rows = current_ports().views.grid(slug, request.args.get("class"))
    today = current_ports().today()
    return jsonify(
        purpose=purpose,
        platforms=["*", *domain.PLATFORMS],
        pupils=[grid_json(r, purpose, today) for r in rows],
    )


@bp.post("/api/schools/<slug>/import")
@auth.login_required("admin")
def import_csv(slug: str) -> tuple[Response, int]:
    """CSV as the body (text/csv) or a multipart ``file``; ``?dry_run=1`` changes
    nothing. 422 with per-line errors when any row is bad (nothing applied)."""
    identity = admin_of(slug)
    upload = request.files.get("file")
    data = upload.read() if upload is not None else request.get_data()
    if not data:
        raise InvalidInputError("send the CSV file")
    if len(data) > MAX_CSV_BYTES:
        raise InvalidInputError("the CSV file is too large", status=413)
    dry_run = request.args.get("dry_run", "") in ("1", "true", "yes")
    report = admin.import_csv(
        current_ports(), slug, data, by=identity.username, dry_run=dry_run
    )
    return jsonify(report.as_dict()), 422 if report.errors else 200


@bp.get("/api/schools/<slug>/export.csv")
@auth.login_required("admin")
def export_csv(slug: str) -> Response:
    admin_of(slug)
    text = admin.export_csv(current_ports(), slug)
    return Response(
        "\ufeff" + text,  # a BOM so that spreadsheets read UTF-8
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{slug}-consent.csv"'},
    )
