"""The admin pages: schools, pupils, the consent grid and one pupil."""

from __future__ import annotations

from flask import render_template, request, url_for

from services.consent import domain
from services.consent.api import bp
from services.consent.api.common import (
    admin_of,
    current_ports,
    grid_json,
    pupil_detail,
    visible,
)
from shared import auth
from shared.errors import InvalidInputError

# Pages.


@bp.get("/")
@auth.login_required(*auth.ROLES)
def index() -> str:
    identity = auth.current_identity()
    schools = visible(identity)
    admin_of = {s.slug for s in schools if identity.has("admin", s.slug)}
    return render_template("consent/index.html", schools=schools, admin_of=admin_of)


@bp.get("/schools/<slug>/pupils")
@auth.login_required("admin")
def pupils_page(slug: str) -> str:
    admin_of(slug)
    query = request.args.get("q", "")[:100]
    views = current_ports().views
    return render_template(
        "consent/pupils.html",
        school=views.school(slug),
        pupils=views.pupils(slug, query=query),
        classes=views.classes(slug),
        query=query,
    )


@bp.get("/schools/<slug>/grid")
@auth.login_required("admin")
def grid_page(slug: str) -> str:
    admin_of(slug)
    views, today = current_ports().views, current_ports().today()
    classes = views.classes(slug)
    chosen = request.args.get("class", classes[0] if classes else "")
    purpose = request.args.get("purpose", "social_media")
    if purpose not in domain.PURPOSES:
        raise InvalidInputError(f"unknown purpose {purpose}")
    rows = [grid_json(r, purpose, today) for r in views.grid(slug, chosen)]
    return render_template(
        "consent/grid.html",
        school=views.school(slug),
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
    admin_of(slug)
    detail = pupil_detail(slug, pupil_id)
    return render_template(
        "consent/pupil.html",
        school=current_ports().views.school(slug),
        detail=detail,
        purposes=domain.PURPOSES,
        platforms=domain.PLATFORMS,
        api=url_for("consent.get_pupil", slug=slug, pupil_id=pupil_id),
    )
